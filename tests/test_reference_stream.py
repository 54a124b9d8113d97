"""The stream as docs/determinism.md describes it (tests/reference_stream.py, written from the
doc alone) reproduces every golden hash pinned in tests/test_sampling.py.

The hashes are imported from that module, never copied: a re-pinned golden is checked here too.
If one of these fails while test_sampling's goldens pass, the doc (and then the reference) is
wrong or incomplete; fix the doc, never the goldens.
"""

from __future__ import annotations

import ast
import hashlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import reference_stream as ref
import test_determinism as det
from test_sampling import GOLDEN, GOLDEN_HE_NORMAL, GOLDEN_HE_NORMAL_F64, GOLDEN_STREAM_KEY

HERE = Path(__file__).resolve().parent


def sha256_le(a: np.ndarray) -> str:
    """sha256 of the values' little-endian bytes, as the goldens are defined."""
    width = a.dtype.itemsize
    return hashlib.sha256(np.ascontiguousarray(a).view(f"u{width}").astype(f"<u{width}").tobytes()
                          ).hexdigest()


def test_the_reference_imports_nothing_from_varscale() -> None:
    tree = ast.parse((HERE / "reference_stream.py").read_text())
    modules = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
               for a in node.names}
    modules |= {node.module.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module}
    assert modules <= {
        "__future__", "bisect", "fractions", "functools", "hashlib", "math", "numpy", "ml_dtypes"
    }


def test_golden_key() -> None:
    assert ref.stream_key(1234, "golden") == GOLDEN_STREAM_KEY


@pytest.mark.parametrize(("kind", "dtype"), sorted(GOLDEN))
def test_golden_hashes(kind: str, dtype: str) -> None:
    """Each golden: seed 1234, stream "golden", scale 0.1, loc 0, elements 0 .. 4095."""
    values = ref.sample(kind, 0.1, dtype, 1234, "golden", 4096)
    assert values.dtype == ref.DTYPES[dtype]
    assert sha256_le(values) == GOLDEN[(kind, dtype)]


@pytest.mark.parametrize(("dtype", "golden"), [("float32", GOLDEN_HE_NORMAL),
                                               ("float64", GOLDEN_HE_NORMAL_F64)])
def test_golden_he_normal(dtype: str, golden: str) -> None:
    """he_normal(seed=0)((64, 32), stream="dense/kernel"): keras layout, fan_in = 64."""
    sigma = ref.variance_scaling_sigma(2.0, 64)
    values = ref.sample("truncated_normal", sigma, dtype, 0, "dense/kernel", 64 * 32)
    assert sha256_le(values) == golden


def test_ranges_are_slices_of_the_whole() -> None:
    """Any (start, n) is the slice of the whole, odd starts and word-unaligned ones included."""
    for dtype in ("float32", "float64"):
        whole = ref.sample("normal", 1.0, dtype, 5, "s", 40)
        for start in (1, 3, 5, 8):
            assert np.array_equal(ref.sample("normal", 1.0, dtype, 5, "s", 9, start=start),
                                  whole[start : start + 9])


def _nearest_f32(x: Fraction) -> np.float32:
    """The float32 nearest to x (ties to even), found among the neighbours of a guess."""
    g = np.float32(float(x))
    cands = [np.nextafter(g, np.float32(-np.inf)), g, np.nextafter(g, np.float32(np.inf))]
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x), int(np.array(c).view(np.int32)) & 1))


def test_float32_constants_are_the_nearest_float32() -> None:
    """The doc's claim: every float32 constant, parsed to float64 then rounded to float32, is the
    float32 nearest to the exact decimal (or rational) value, so either way of parsing works."""
    src = (HERE / "reference_stream.py").read_text()
    tree = ast.parse(src)
    literals = []
    for node in ast.walk(tree):
        target = node.targets[0] if isinstance(node, ast.Assign) else None
        if isinstance(target, ast.Name) and target.id in ("GILES_P", "GILES_Q"):
            tup = node.value.generators[0].iter  # type: ignore[attr-defined]
            literals += [ast.get_source_segment(src, e) for e in tup.elts]
    literals += ["0.95449973610364158560", "0.69314718055994530942"]
    assert len(literals) == 20
    for text in literals:
        assert np.float32(float(text)) == _nearest_f32(Fraction(text)), text
    for j in range(7):
        assert np.float32(2.0 / (2 * j + 1)) == _nearest_f32(Fraction(2, 2 * j + 1))


CASES = [  # beyond the goldens: centres, the uniform's clamp below maxval, other scales, constants
    ("uniform", 0.25, 1.25), ("uniform", 3.0, -1.0), ("normal", 0.02, 0.5),
    ("truncated_normal", 1e-3, -0.25), ("truncated_normal", 700.0, 0.0), ("constant", 0.0, 0.3),
]


@pytest.mark.parametrize("dtype", sorted(ref.DTYPES))
@pytest.mark.parametrize(("kind", "scale", "loc"), CASES)
def test_the_sampler_agrees_beyond_the_goldens(kind: str, scale: float, loc: float, dtype: str) -> None:
    """The same values as the real sampler (its public API) where no golden looks."""
    from varscale_cli import Distribution, TensorSampler

    start, n = 12_345, 20_000
    want = np.empty(n, dtype=ref.DTYPES[dtype])
    TensorSampler(Distribution(kind, scale, loc), dtype, 99, "beyond").fill(start, want)
    got = ref.sample(kind, scale, dtype, 99, "beyond", n, loc=loc, start=start)
    assert sha256_le(got) == sha256_le(want)


@pytest.mark.parametrize("dtype", sorted(det.CONSTANTS))
def test_constants_at_rounding_ties(dtype: str) -> None:
    """test_determinism's constants, one rounding each, from the doc's rule."""
    got = np.concatenate(
        [ref.sample("constant", 0.0, dtype, 0, "c", 3, loc=v) for v in det._tie_values(dtype)]
    )
    assert sha256_le(got) == det.CONSTANTS[dtype]


@pytest.mark.parametrize("dtype", sorted(det.UNIFORM_OFFSETS))
def test_uniform_offsets_and_their_clamp(dtype: str) -> None:
    """test_determinism's centred uniforms, clamped below loc + limit as the doc says."""
    parts = [
        ref.sample("uniform", law.scale, dtype, 11, f"u{k}", 20_000, loc=law.loc)
        for k, law in enumerate(det._offset_laws(dtype))
    ]
    assert sha256_le(np.concatenate(parts)) == det.UNIFORM_OFFSETS[dtype]
