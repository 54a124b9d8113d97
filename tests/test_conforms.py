"""spec/conforms.py answers "is this spec valid under spec_schema.json?" without jsonschema.

Its answer must be jsonschema's: a "yes" where jsonschema finds an error would let a bad spec
through, and a "no" on a valid spec would bring back the import it exists to avoid. So it is
compared with jsonschema (with varscale's strict integer) on the shipped specs and on many
mutations of them, each of which puts an arbitrary JSON value at an arbitrary place.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from varscale_cli.spec import schema_check
from varscale_cli.spec.conforms import conforms

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))


def jsonschema_valid(doc) -> bool:
    return not any(schema_check._validator().iter_errors(doc))


def ours(doc) -> bool:
    return conforms(doc, schema_check._inlined())


def _docs() -> list:
    docs = [yaml.safe_load(p.read_text()) for p in CONFIGS]
    docs.append({
        "version": 1, "seed": None,
        "tensors": [
            {"name": "a", "shape": [4, 3], "in_axis": [0], "out_axis": -1, "zero_rows": [0],
             "initializer": {"name": "he_normal", "layout": "torch", "dtype": "f16"}},
            {"name": "b", "shape": [8], "split": {"axis": 0, "parts": 2}},
            {"name": "c", "shape": [2, 2],
             "partition": {"of": "full", "full_shape": [4, 2], "offset": [2, 0]}},
        ],
        "rules": [{"match": "*", "layout": "keras", "initializer": "zeros"}],
        "hf_config": {"model_type": "llama"},
    })
    return docs


DOCS = _docs()


@pytest.mark.parametrize("doc", DOCS, ids=[p.stem for p in CONFIGS] + ["every-keyword"])
def test_valid_specs_conform(doc):
    assert jsonschema_valid(doc)
    assert ours(doc)


def _paths(node, prefix=()):
    """Every place in a document: (path to a container, key or index in it)."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix, k
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield prefix, i
            yield from _paths(v, prefix + (i,))


# Values that probe every keyword: the schema's own keys and enums, bounds and their
# neighbours, floats that equal integers, booleans (which Python counts as integers).
_KEYS = st.sampled_from([
    "name", "shape", "dtype", "layout", "initializer", "in_axis", "out_axis", "batch_axis",
    "partition", "split", "zero_rows", "of", "full_shape", "offset", "axis", "parts", "match",
    "version", "seed", "tensors", "rules", "defaults", "hf_config", "extra", "",
])
_SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 1, -1, 2, 3.0, 1.5, 64, 65, 1048576, 1048577, 1 << 40, (1 << 40) + 1,
                     (1 << 63) - 1, 1 << 63, float("nan"), "", "keras", "torch", "float32",
                     "x", "KERAS"]),
    st.integers(), st.floats(allow_nan=True), st.text(max_size=4),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=8,
) | st.lists(st.sampled_from([0, 1]), min_size=63, max_size=65)  # the 64-axis limit


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_specs_get_jsonschemas_answer(data):
    doc = copy.deepcopy(data.draw(st.sampled_from(DOCS)))
    for _ in range(data.draw(st.integers(1, 3))):
        places = list(_paths(doc))
        action = data.draw(st.sampled_from(["replace", "add", "delete", "root"]))
        if action == "root" or not places:
            doc = data.draw(_VALUES)
            continue
        path, key = data.draw(st.sampled_from(places))
        parent = doc
        for p in path:
            parent = parent[p]
        if action == "replace":
            parent[key] = data.draw(_VALUES)
        elif action == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[data.draw(_KEYS)] = data.draw(_VALUES)
        else:
            parent.append(data.draw(_VALUES))
    assert ours(doc) == jsonschema_valid(doc), json.dumps(doc, default=str)[:500]
