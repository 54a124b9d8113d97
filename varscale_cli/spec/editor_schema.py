"""The schema `varscale schema` prints for editors: ``spec_schema.json`` with the initializer
names, their parameters and choices, and the dtypes as enums, generated from the registry.

The loader keeps validating with the plain schema (`schema_check.schema`), and then the
initializer and dtype checks of `resolve`: their one-line messages ("did you mean", the
allowed parameters, which dtypes an initializer can produce) say more than a JSON Schema
error could, and they stay the loader's messages. An editor gets the richer schema so that
``he_normall``, ``std:``, ``mode: fanin`` and ``dtype: float8`` are underlined as typed.

Everything here derives from the code that accepts a spec: names from
`initializers.names` and `initializers.KERAS_CLASSES`, parameters from each class's
``__init__`` signature, dtypes from the spec's own dtype table, and the choices from the
constants the classes check against (`CHOICES`, which the tests hold to the classes).
"""

from __future__ import annotations

import inspect
from typing import Any

from ..core.initializers import (
    ALIASES,
    CLASSES,
    CONTRIB_MODES,
    DISTRIBUTIONS,
    KERAS_CLASSES,
    MODES,
    NONLINEARITIES,
    PRESETS,
    names,
)
from .resolve import _SPEC_DTYPES, EMBEDDED_KEYS
from .schema_check import schema

__all__ = ["CHOICES", "editor_schema"]

#: (initializer, parameter) -> the values it accepts and whether case is ignored (the class
#: lower-cases the value before checking it).
CHOICES: dict[tuple[str, str], tuple[tuple[str, ...], bool]] = {
    ("variance_scaling", "mode"): (MODES, False),
    ("variance_scaling", "distribution"): (DISTRIBUTIONS, True),
    ("variance_scaling_initializer", "mode"): (CONTRIB_MODES, False),
    ("torch.kaiming_normal", "mode"): (("fan_in", "fan_out"), True),
    ("torch.kaiming_uniform", "mode"): (("fan_in", "fan_out"), True),
    ("torch.kaiming_normal", "nonlinearity"): (NONLINEARITIES, False),
    ("torch.kaiming_uniform", "nonlinearity"): (NONLINEARITIES, False),
}

#: The TF ``get_config()`` dict of a VarianceScaling: its keys without a ``name``.
TF_CONFIG_KEYS = ("scale", "mode", "distribution", "seed", "dtype", "corrected")

_REF = {"layout": "#/$defs/layout", "dtype": "#/$defs/dtype"}
_AXES = "#/$defs/axes"


def _ignore_case(value: str) -> str:
    """A regex matching ``value`` in any case (JSON Schema regexes have no flags)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else ("\\" + c if not c.isalnum() else c) for c in value)


def _choice(values: tuple[str, ...], ignore_case: bool) -> dict[str, Any]:
    if not ignore_case:
        return {"enum": list(values)}
    # The enum first, for completion; any casing of it is valid.
    return {"anyOf": [{"enum": list(values)}, {"type": "string", "pattern": "^(" + "|".join(map(_ignore_case, values)) + ")$"}]}


def _parameter(owner: str, name: str, default: Any) -> dict[str, Any]:
    if (owner, name) in CHOICES:
        values, ignore_case = CHOICES[owner, name]
        node = _choice(values, ignore_case)
    elif name == "seed":
        node = {"type": ["integer", "null"], "minimum": 0}
    elif name == "dtype":
        node = {"$ref": _REF["dtype"]}
    elif name in ("input_axes", "output_axes"):  # Keras 3: a list of axes, or null
        node = {"type": ["array", "null"], "items": {"type": "integer"}}
    elif isinstance(default, bool):
        node = {"type": "boolean"}
    elif isinstance(default, int | float):
        node = {"type": "number"}
    else:
        node = {"type": "string"}
    if default is not inspect.Parameter.empty and name not in ("seed", "dtype"):
        node["default"] = default
    return node


def _parameters(name: str) -> dict[str, dict[str, Any]]:
    """The parameters ``initializers.get(name, ...)`` accepts, with their schemas."""
    canonical = ALIASES.get(name, name)
    if canonical in PRESETS:
        return {
            p: _parameter(name, p, None) for p in ("seed", "dtype", "input_axes", "output_axes")
        }
    params = inspect.signature(CLASSES[canonical].__init__).parameters
    return {
        p: _parameter(canonical, p, spec.default)
        for p, spec in params.items()
        if p not in ("self", "preset")
    }


def _embedded() -> dict[str, Any]:
    """Keys an initializer mapping may carry for its tensor (`resolve.EMBEDDED_KEYS`)."""
    return {k: {"$ref": _REF.get(k, _AXES)} for k in EMBEDDED_KEYS}


def _initializer() -> dict[str, Any]:
    by_name = []
    for name in names():
        props = {"name": {"const": name}, **_parameters(name), **_embedded()}
        by_name.append({
            "if": {"properties": {"name": {"const": name}}, "required": ["name"]},
            "then": {"properties": props, "additionalProperties": False},
        })
    tf_config = {
        "properties": {
            **{k: v for k, v in _parameters("variance_scaling").items() if k in TF_CONFIG_KEYS},
            **_embedded(),
        },
        "additionalProperties": False,
    }
    keras = {
        "properties": {
            "module": {"type": "string"},
            "class_name": {"enum": sorted(KERAS_CLASSES)},
            "config": {"type": ["object", "null"]},
            "registered_name": {"type": ["string", "null"]},
            **_embedded(),
        },
        "additionalProperties": False,
    }
    return {
        "description": (
            "A preset or initializer name, a mapping with `name` and its parameters, a TF "
            "get_config() dict or a Keras serialize() dict (see `varscale presets`). layout, "
            "dtype and axes may be embedded in a mapping."
        ),
        # if/then/else, not anyOf: an editor then reports the one error that matters
        # ("'he_normall' is not one of ...", "'std' was unexpected"), not "no branch matched".
        "if": {"type": "string"},
        "then": {"enum": names()},
        "else": {
            "type": "object",
            "minProperties": 1,
            "if": {"required": ["name"]},
            "then": {"properties": {"name": {"enum": names()}}, "allOf": by_name},
            "else": {"if": {"required": ["class_name"]}, "then": keras, "else": tf_config},
        },
    }


def editor_schema() -> dict[str, Any]:
    """The spec's JSON Schema with enums and per-initializer parameter schemas (a fresh copy)."""
    doc = schema()
    doc["description"] = (
        "Tensor names and shapes, and how to initialise them (docs/spec.md). Generated by "
        "`varscale schema` from varscale's initializer registry and dtype table. varscale also "
        "rejects floats such as 3.0 where an integer is required."
    )
    defs = doc["$defs"]
    # The spellings the spec's dtype table knows, less those no initializer can produce
    # (complex today): the loader would refuse them for every tensor.
    producible = {d for d in set(_SPEC_DTYPES.values()) if any(c().supports_dtype(d) for c in CLASSES.values())}
    defs["dtype"] = {
        "description": defs["dtype"]["description"],
        "enum": sorted(alias for alias, name in _SPEC_DTYPES.items() if name in producible),
    }
    defs["initializer"] = _initializer()
    return doc
