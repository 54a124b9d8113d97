"""Pass 3, schema: ``spec_schema.json`` (JSON Schema Draft 2020-12) checks the structure of the
cleaned document; the first error in document order is reported with its path, e.g.
``tensors.dense/kernel.shape[1]``, in varscale's wording where jsonschema's says less.

The layout enum is not written in the file: it is filled in from `varscale_cli.core.fans.LAYOUTS`
whenever the schema is loaded, so the layout list has a single definition.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..core.fans import LAYOUTS
from ..errors import SpecError, UnsupportedDtype
from .conforms import conforms
from .messages import Ctx, closest, render_path, show, show_limit

if TYPE_CHECKING:
    import jsonschema


def schema() -> dict[str, Any]:
    """The spec's JSON Schema (Draft 2020-12): ``spec_schema.json`` with the layout enum.

    Returns a fresh copy on every call, so callers may modify it.
    """
    doc: dict[str, Any] = json.loads(_schema_text())
    doc["$defs"]["layout"]["enum"] = list(LAYOUTS)
    return doc


@cache
def _schema_text() -> str:
    return resources.files(__package__).joinpath("spec_schema.json").read_text("utf-8")


def _is_strict_int(checker: Any, instance: Any) -> bool:
    # jsonschema counts 3.0 as an integer (JSON has one number type); a dim of 3.0 is a typo
    # here, and bools are ints in Python but never integers in a spec.
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _inlined() -> dict[str, Any]:
    return _inline_refs(schema())


@cache
def _validator() -> jsonschema.protocols.Validator:
    # Imported here, only when a spec does not conform: see conforms.py for what it costs.
    import jsonschema

    base = jsonschema.Draft202012Validator
    cls = jsonschema.validators.extend(
        base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_strict_int)
    )
    return cls(_inlined())


def _inline_refs(doc: dict[str, Any]) -> dict[str, Any]:
    """The schema with every local ``$ref`` replaced by its target: jsonschema resolves each
    ``$ref`` anew for every value it checks, which made it 2/3 of the load time of a large spec.
    The shipped file keeps its ``$ref``s (editors show the names of the definitions)."""
    defs = doc.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: inline(v) for k, v in node.items() if k not in ("$ref", "$defs")}
        ref = node.get("$ref")
        if ref is not None:
            target = inline(defs[ref.removeprefix("#/$defs/")])
            assert not set(target) & set(out), f"$ref {ref} beside keywords it also sets"
            out.update(target)
        return out

    return inline(doc)


#: Among errors at the same path, the most useful first: a misspelt key explains a "missing"
#: one, and a wrong type explains any other complaint about the value.
_PRIORITY = {"additionalProperties": 0, "type": 1, "required": 2}


def check_schema(doc: dict[str, Any], ctx: Ctx) -> None:
    """Raise the first schema error in document order, if any."""
    if conforms(doc, _inlined()):
        return
    errors = list(_validator().iter_errors(doc))
    if not errors:
        return
    order = _doc_order(doc)
    err = min(errors, key=lambda e: (order(e.absolute_path), _PRIORITY.get(str(e.validator), 9)))
    path = list(err.absolute_path)
    where = render_path(path)
    if len(path) >= 2 and path[0] == "tensors" and isinstance(path[1], int):
        name = (
            doc["tensors"][path[1]].get("name")
            if isinstance(doc["tensors"][path[1]], dict)
            else None
        )
        if isinstance(name, str):
            where += f" (tensor {show(name)})"
    cls = UnsupportedDtype if path and path[-1] == "dtype" else SpecError
    raise ctx.error(_schema_message(err), where, cls=cls)


def _doc_order(doc: Any) -> Callable[[Iterable[Any]], tuple[int, ...]]:
    """A sort key putting schema error paths in the order they appear in the file."""
    index: dict[int, dict[str, int]] = {}

    def key(path: Iterable[Any]) -> tuple[int, ...]:
        out = []
        node = doc
        for p in path:
            if isinstance(node, dict):
                idx = index.setdefault(id(node), {k: i for i, k in enumerate(node)})
                out.append(idx[p])
            else:
                out.append(p)
            node = node[p]
        return tuple(out)

    return key


def _schema_message(err: jsonschema.ValidationError) -> str:
    """jsonschema's message, reworded where ours says more (allowed keys, did-you-mean)."""
    # The stubs allow an unset field; errors from iter_errors always have them all set.
    v = err.validator if isinstance(err.validator, str) else ""
    inst: Any = err.instance
    arg: Any = err.validator_value
    if v == "additionalProperties":
        node = err.schema if isinstance(err.schema, Mapping) else {}
        allowed = sorted(node.get("properties", {}))
        extra = next(k for k in inst if k not in allowed)
        return f"unknown key {show(extra)}{closest(extra, allowed)}; allowed: {', '.join(allowed)}"
    if v == "required":
        missing = next(k for k in arg if k not in inst)
        return f"missing required key {show(missing)}"
    if v == "type":
        types = " or ".join(repr(t) for t in ([arg] if isinstance(arg, str) else arg))
        return f"{show(inst)} is not of type {types}"
    if v == "enum":
        return f"{show(inst)} is not one of {', '.join(show(a) for a in arg)}"
    if v == "const":
        return f"{show(inst)} is not {show(arg)}"
    if v == "minimum":
        return f"{show(inst)} is less than the minimum of {show_limit(arg)}"
    if v == "maximum":
        return f"{show(inst)} is greater than the maximum of {show_limit(arg)}"
    if v in ("minItems", "minProperties", "minLength") and arg == 1:
        return "must not be empty"
    if v == "maxItems":
        return f"has {len(inst)} items, more than the maximum of {arg}"
    return err.message
