"""Spec files: YAML/JSON text -> a validated, frozen `Spec` of `TensorPlan`s.

All spec validation lives in this package; docs/spec.md is the user-facing reference. Loading
(`load`) runs four passes, one module each, and each raises `SpecError` (or `UnsupportedDtype`)
with one line that starts with the file name (`messages`):

1. `parse` (and `yaml_loader`): a duplicate-rejecting SafeLoader for YAML, ``json`` with hooks
   for JSON. Syntax errors, duplicate keys and YAML 1.1 traps report ``file:line:col``.
2. `clean`: one walk over the parsed tree that turns it into plain JSON values and rejects what
   JSON Schema cannot see (NaN/Infinity, non-string keys, dates, YAML 1.1 traps, JSON duplicate
   keys); in YAML files it also turns float-looking strings into floats in float parameters.
3. `schema_check`: ``spec_schema.json`` (Draft 2020-12) checks the structure; the first error in
   document order is reported with its path, e.g. ``tensors.dense/kernel.shape[1]``.
4. `resolve`: rules and defaults, initializers (`initializers.deserialize`), dtypes, split
   expansion, partitions and fan axes (`fans.compute_fans`), one `TensorPlan` per tensor
   (`model`).
"""

from __future__ import annotations

from .load import SpecFormat, load_spec, parse_spec
from .model import Spec, TensorPlan
from .resolve import MAX_DIM, MAX_ELEMENTS, MAX_TENSORS
from .schema_check import schema

__all__ = [
    "MAX_DIM",
    "MAX_ELEMENTS",
    "MAX_TENSORS",
    "Spec",
    "SpecFormat",
    "TensorPlan",
    "load_spec",
    "parse_spec",
    "schema",
]
