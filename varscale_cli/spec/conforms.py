"""Whether a document conforms to the spec's JSON Schema, without importing jsonschema.

Importing jsonschema (with referencing, attrs and its format tables) costs about 0.1 s, most
of the start-up of a small spec's run, yet almost every spec is valid. So `check_schema` first
asks `conforms`, which implements the few Draft 2020-12 keywords ``spec_schema.json`` uses
with jsonschema's semantics, and imports jsonschema only to *report* an error when the answer
is no. A wrong "no" costs only that import (jsonschema then finds nothing to report); a wrong
"yes" would let a bad spec through, so any keyword this module does not know makes the answer
no, and tests/test_conforms.py checks the answers against jsonschema's own on valid and broken
documents.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Keywords that only annotate (jsonschema ignores them when validating).
_ANNOTATIONS = frozenset({"$schema", "$id", "title", "description"})


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: Any, name: str) -> bool:
    # "integer" is varscale's strict integer (schema_check._is_strict_int): no bools, no 3.0.
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return _number(value)
    if name == "string":
        return isinstance(value, str)
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    raise _Unknown(f"type {name!r}")


def _equal(a: Any, b: Any) -> bool:
    # jsonschema's `equal`: booleans are never equal to numbers (True == 1 in Python).
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | dict) or isinstance(b, list | dict):
        return False
    return bool(a == b)


class _Unknown(Exception):
    """A keyword or type this module does not implement: the answer is 'not known to conform'."""


def _ok(value: Any, schema: Mapping[str, Any]) -> bool:
    for key, arg in schema.items():
        if key in _ANNOTATIONS or key in ("then", "else"):
            continue
        if key == "type":
            names = [arg] if isinstance(arg, str) else arg
            if not any(_is_type(value, n) for n in names):
                return False
        elif key == "const":
            if not _equal(value, arg):
                return False
        elif key == "enum":
            if not any(_equal(value, a) for a in arg):
                return False
        elif key in ("minimum", "maximum"):
            if _number(value) and (value < arg if key == "minimum" else value > arg):
                return False
        elif key == "minLength":
            if isinstance(value, str) and len(value) < arg:
                return False
        elif key in ("minItems", "maxItems"):
            if isinstance(value, list) and (
                len(value) < arg if key == "minItems" else len(value) > arg
            ):
                return False
        elif key == "minProperties":
            if isinstance(value, dict) and len(value) < arg:
                return False
        elif key == "required":
            if isinstance(value, dict) and any(k not in value for k in arg):
                return False
        elif key == "properties":
            if isinstance(value, dict) and not all(
                _ok(value[k], sub) for k, sub in arg.items() if k in value
            ):
                return False
        elif key == "additionalProperties":
            if isinstance(value, dict):
                known = schema.get("properties", {})
                extra = [k for k in value if k not in known]
                if arg is False and extra:
                    return False
                if isinstance(arg, Mapping) and not all(_ok(value[k], arg) for k in extra):
                    return False
                if not isinstance(arg, bool | Mapping):
                    raise _Unknown("additionalProperties")
        elif key == "items":
            if isinstance(value, list) and not all(_ok(v, arg) for v in value):
                return False
        elif key == "if":
            branch = schema.get("then" if _ok(value, arg) else "else")
            if branch is not None and not _ok(value, branch):
                return False
        else:
            raise _Unknown(key)
    return True


def conforms(doc: Any, schema: Mapping[str, Any]) -> bool:
    """True only if ``doc`` is valid under ``schema`` (one without ``$ref``: schema_check
    inlines them), as jsonschema's Draft 2020-12 validator with varscale's strict integer
    would judge it. False means "not shown valid": ask jsonschema for the error."""
    try:
        return _ok(doc, schema)
    except _Unknown:
        return False
