"""Property tests over specs (hypothesis, derandomized: the same examples on every run).

1. Any spec from a strategy of valid specs validates, generates in every format, and loads back
   through the real libraries (safetensors.numpy, np.load, h5py; not varscale's readers) with
   exactly the names, shapes and dtypes the spec declares (splits expanded by the test's own
   oracle, not by varscale's resolver).
2. Any mutation of a valid spec (a key deleted or renamed, a value replaced by a random scalar,
   list, mapping or string) either still works (exit 0) or fails with exit 2 and exactly one
   ``Error: `` line on stderr: never another exit code, never a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from loaders import load_any

from varscale_cli.cli import cli
from varscale_cli.errors import SpecError
from varscale_cli.spec import parse_spec

SUFFIXES = {"safetensors": ".safetensors", "npz": ".npz", "hdf5": ".h5"}

DTYPES = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}
DTYPE_SPELLINGS = {
    "float16": ["float16", "half", "f16"],
    "bfloat16": ["bfloat16", "bf16"],
    "float32": ["float32", "float", "f32"],
    "float64": ["float64", "double", "f64"],
}

PRESETS = [
    "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
    "lecun_uniform", "xavier_uniform", "xavier_normal", "kaiming_normal", "kaiming_uniform",
    "zeros", "ones", "variance_scaling", "variance_scaling_initializer",
    "torch.kaiming_uniform", "torch.kaiming_normal", "torch.xavier_uniform",
    "torch.xavier_normal", "constant", "random_normal", "truncated_normal", "random_uniform",
]
MODES = ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]
DISTRIBUTIONS = ["truncated_normal", "untruncated_normal", "uniform", "normal"]

#: Keeps a property well under ~10 s: one example generates three small files.
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


# --- strategies --------------------------------------------------------------------------------

# Segments start with a letter (never '.', '..' or a YAML 1.1 trap such as 'yes' or '017' once
# quoted by the dumper) and may hold '.' and '_' after it.
_segment = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from("abcdwxyz"),
    st.text("abz019_.", max_size=5),
).filter(lambda s: not s.endswith(".npy"))
_name = st.lists(_segment, min_size=1, max_size=3).map("/".join)

_scale = st.floats(min_value=1e-3, max_value=10.0, allow_nan=False, allow_infinity=False)

_variance_scaling = st.fixed_dictionaries(
    {"name": st.just("variance_scaling")},
    optional={
        "scale": _scale,
        "mode": st.sampled_from(MODES),
        "distribution": st.sampled_from(DISTRIBUTIONS),
        "corrected": st.booleans(),
    },
)
_contrib = st.fixed_dictionaries(
    {"name": st.just("variance_scaling_initializer")},
    optional={
        "factor": _scale,
        "mode": st.sampled_from(["FAN_IN", "FAN_OUT", "FAN_AVG"]),
        "uniform": st.booleans(),
    },
)
_tf_config = st.fixed_dictionaries(
    {"scale": _scale},
    optional={"mode": st.sampled_from(MODES), "distribution": st.sampled_from(DISTRIBUTIONS)},
)
_keras = st.builds(
    lambda config: {
        "module": "keras.initializers",
        "class_name": "VarianceScaling",
        "config": config,
        "registered_name": None,
    },
    _tf_config,
)
_torch_kaiming = st.fixed_dictionaries(
    {"name": st.sampled_from(["torch.kaiming_uniform", "torch.kaiming_normal"])},
    optional={
        "a": st.floats(min_value=0.0, max_value=5.0),
        "mode": st.sampled_from(["fan_in", "fan_out"]),
        "nonlinearity": st.sampled_from(["leaky_relu", "relu", "tanh", "linear", "selu"]),
    },
)
_plain = st.one_of(
    st.fixed_dictionaries(
        {"name": st.just("constant"), "value": st.floats(min_value=-4.0, max_value=4.0)}
    ),
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["random_normal", "truncated_normal"]),
            "mean": st.floats(min_value=-1.0, max_value=1.0),
            "stddev": st.floats(min_value=1e-3, max_value=2.0),
        }
    ),
    st.builds(
        lambda lo, width: {"name": "random_uniform", "minval": lo, "maxval": lo + width},
        st.floats(min_value=-2.0, max_value=2.0),
        st.floats(min_value=0.01, max_value=2.0),
    ),
)
_initializer = st.one_of(
    st.sampled_from(PRESETS), _variance_scaling, _contrib, _tf_config, _keras, _torch_kaiming, _plain
)


@dataclass
class Expected:
    """What the output must hold: name -> (shape, canonical dtype)."""

    tensors: dict[str, tuple[tuple[int, ...], str]]


@st.composite
def tensor_entries(draw: st.DrawFn, name: str) -> tuple[dict[str, Any], list[tuple]]:
    """One spec entry for ``name`` and the tensors it produces: [(name, shape, dtype)]."""
    rank = draw(st.integers(0, 4))
    shape = draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank))
    dtype = draw(st.sampled_from(list(DTYPES)))
    entry: dict[str, Any] = {"shape": shape}
    if draw(st.booleans()):
        entry["dtype"] = draw(st.sampled_from(DTYPE_SPELLINGS[dtype]))
    else:
        dtype = "float32"  # the built-in default (no defaults or rules set a dtype here)
    if draw(st.booleans()):
        entry["initializer"] = draw(_initializer)
    if draw(st.booleans()):
        entry["layout"] = draw(st.sampled_from(["keras", "torch"]))
    if rank >= 2 and draw(st.booleans()):
        axes = draw(st.permutations(range(rank)))
        sign = draw(st.sampled_from([0, -rank]))  # the same axes, maybe counted from the end
        entry["in_axis"] = axes[0] + sign
        entry["out_axis"] = [axes[1] + sign] if draw(st.booleans()) else axes[1] + sign
        if rank >= 3 and draw(st.booleans()):
            entry["batch_axis"] = [axes[2]]
    extra = draw(st.sampled_from(["none", "partition", "split"])) if rank else "none"
    if extra == "partition":
        grow = draw(st.lists(st.integers(0, 3), min_size=rank, max_size=rank))
        full = [d + g for d, g in zip(shape, grow, strict=True)]
        offset = [draw(st.integers(0, g)) for g in grow]
        entry["partition"] = {"full_shape": full, "offset": offset}
        if draw(st.booleans()):
            # A stream no other tensor uses ('s' starts no tensor name): nothing to agree with.
            entry["partition"]["of"] = f"stream_{name}"
        return entry, [(name, tuple(shape), dtype)]
    if extra == "split":
        axis = draw(st.integers(0, rank - 1))
        size = shape[axis]
        divisors = [k for k in range(1, 5) if size % k == 0]  # 0 splits into any number
        parts = draw(st.sampled_from(divisors))
        entry["split"] = {"axis": axis - rank if draw(st.booleans()) else axis, "parts": parts}
        pshape = list(shape)
        pshape[axis] = size // parts
        return entry, [(f"{name}/part_{k}", tuple(pshape), dtype) for k in range(parts)]
    return entry, [(name, tuple(shape), dtype)]


def _no_hdf5_clash(names: list[str]) -> bool:
    """No name is a '/'-prefix of another (HDF5 cannot make 'a' a dataset and a group)."""
    full = set(names)
    return all(
        "/".join(n.split("/")[:i]) not in full for n in names for i in range(1, n.count("/") + 1)
    )


@st.composite
def valid_specs(draw: st.DrawFn) -> tuple[dict[str, Any], Expected]:
    count = draw(st.integers(1, 5))  # (st.lists alone favours the shortest lists)
    names = draw(st.lists(_name, min_size=count, max_size=count, unique=True))
    doc: dict[str, Any] = {"version": 1, "seed": draw(st.integers(0, 2**63 - 1))}
    produced: list[tuple] = []
    entries = {}
    for name in names:
        entries[name], out = draw(tensor_entries(name))
        produced += out
    out_names = [p[0] for p in produced]
    # Split parts may not clash with another tensor; no format may be unable to store a name.
    assume(len(set(out_names)) == len(out_names))
    assume(_no_hdf5_clash(out_names))
    if draw(st.booleans()):
        doc["tensors"] = entries
    else:
        doc["tensors"] = [{"name": n, **e} for n, e in entries.items()]
    return doc, Expected({n: (s, d) for n, s, d in produced})


def _dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc)
    return yaml.safe_dump(doc, sort_keys=False)


# --- loading with the real libraries -------------------------------------------------------------


# --- property 1: valid specs round-trip ----------------------------------------------------------


@SETTINGS
@given(case=valid_specs(), text_format=st.sampled_from(["yaml", "json"]))
def test_every_valid_spec_generates_and_loads_back_as_declared(
    case: tuple[dict[str, Any], Expected], text_format: str
) -> None:
    doc, expected = case
    text = _dump(doc, text_format)
    spec = parse_spec(text, fmt=text_format)  # the strategy only makes valid specs
    event(f"{len(expected.tensors)} tensors")
    event("split" if "/part_" in "".join(expected.tensors) else "no split")
    assert {t.name: (t.shape, t.dtype) for t in spec.tensors} == expected.tensors
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / f"spec.{text_format}"
        spec_path.write_text(text)
        for fmt, suffix in SUFFIXES.items():
            out = Path(tmp) / f"w{suffix}"
            result = invoke("generate", str(spec_path), "-o", str(out), "-q", "--workers", "2")
            assert result.exit_code == 0, (fmt, result.stderr, result.exception)
            loaded = load_any(out)
            if fmt == "npz":  # members in spec order (safetensors sorts, HDF5 walks by name)
                assert list(loaded) == list(expected.tensors)
            got = {n: (a.shape, a.dtype) for n, a in loaded.items()}
            want = {n: (s, DTYPES[d]) for n, (s, d) in expected.tensors.items()}
            assert got == want, fmt
            for arr in loaded.values():
                assert arr.size == math.prod(arr.shape)


# --- property 2: mutations validate or fail with one line ----------------------------------------


def _positions(node: Any, path: tuple = ()) -> list[tuple]:
    """Every (path to a container, key or index) in the document."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            out.append((path, k))
            out += _positions(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out.append((path, i))
            out += _positions(v, (*path, i))
    return out


_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10),
    st.sampled_from([2**40, 2**40 + 1, 2**48, 2**63, -(2**63), 2**64]),
    st.floats(),  # nan, inf and huge ones included
    _text,
    st.sampled_from(["he_normal", "keras", "torch", "fan_in", "float16", "yes", "017", "1e-3", ""]),
)
_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(_text, children, max_size=3)
    ),
    max_leaves=6,
)


def _similar(value: Any) -> st.SearchStrategy:
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        return st.integers(-2, 8) | st.just(value + 1)
    if isinstance(value, float):
        return st.floats(-2.0, 10.0)
    if isinstance(value, str):
        return st.sampled_from(PRESETS + MODES + DISTRIBUTIONS + ["keras", "torch", "bf16", "x"])
    if isinstance(value, list):
        return st.lists(st.integers(0, 6), max_size=4) | st.permutations(value)
    if isinstance(value, dict):
        return st.just({k: v for k, v in value.items() if k != "shape"})
    return _values


@st.composite
def mutated_specs(draw: st.DrawFn) -> Any:
    doc, _ = draw(valid_specs())
    doc = copy.deepcopy(doc)
    for _ in range(draw(st.integers(1, 2))):
        positions = _positions(doc)
        kind = draw(st.sampled_from(["delete", "replace", "similar", "rename", "replace_root"]))
        if kind == "replace_root" or not positions:
            doc = draw(_values) if kind == "replace_root" else doc
            continue
        path, key = draw(st.sampled_from(positions))
        parent = doc
        for p in path:
            parent = parent[p]
        if kind == "delete":
            del parent[key]
        elif kind == "replace":
            parent[key] = draw(_values)
        elif kind == "similar":  # a value of the same kind: more mutants stay valid
            parent[key] = draw(_similar(parent[key]))
        elif isinstance(parent, dict):
            new = draw(st.one_of(_text, st.sampled_from(["tenosrs", "shape ", "Shape", "dtype"])))
            parent[new] = parent.pop(key)
        else:
            parent.insert(key, draw(_values))
    return doc


def _total_bytes(text: str, fmt: str) -> int | None:
    try:
        spec = parse_spec(text, fmt=fmt)
    except SpecError:
        return None
    if spec.seed is None:  # valid, but generate then needs --seed
        return None
    return sum(math.prod(t.shape) * DTYPES[t.dtype].itemsize for t in spec.tensors)


def _assert_zero_or_one_error_line(result: Any, allowed: tuple[int, ...] = (0, 2)) -> None:
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}") from result.exception
    assert result.exit_code in allowed, (result.exit_code, result.stderr)
    if result.exit_code != 0:
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)
@given(doc=mutated_specs(), text_format=st.sampled_from(["yaml", "json"]))
def test_every_mutation_validates_or_fails_with_one_error_line(doc: Any, text_format: str) -> None:
    text = _dump(doc, text_format)
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = Path(tmp) / f"spec.{text_format}"
        spec_path.write_text(text, encoding="utf-8")
        # --dry-run validates and resolves everything without writing: safe for any size.
        result = invoke("generate", str(spec_path), "--dry-run")
        _assert_zero_or_one_error_line(result)
        total = _total_bytes(text, text_format)
        event("still valid" if total is not None else "refused")
        assert (result.exit_code == 0) == (total is not None)
        if total is None or total > 1 << 20:
            return
        # Small enough to write: the writers' own checks may refuse it, with one line too.
        for suffix in (".safetensors", ".npz", ".h5"):
            out = Path(tmp) / f"w{suffix}"
            result = invoke("generate", str(spec_path), "-o", str(out), "-q", "--no-check")
            _assert_zero_or_one_error_line(result)
            assert out.exists() == (result.exit_code == 0)
