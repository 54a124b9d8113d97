"""The compiled (numba) transforms must give exactly the numpy reference path's bytes."""

from __future__ import annotations

import numpy as np
import pytest

from varscale_cli import sampling
from varscale_cli.distributions import Distribution

pytest.importorskip("numba")

KINDS = ("truncated_normal", "normal", "uniform")
DTYPES = ("float32", "bfloat16", "float16", "float64")
# Ordinary, tiny (float16 subnormals) and huge scales, plus an offset centre.
PARAMS = ((1.0, 0.0), (0.0123, 0.5), (3e-6, 0.0), (250.0, -1.0))


def _fill(sampler: sampling.TensorSampler, compiled: bool, start: int, n: int) -> np.ndarray:
    sampling.load_kernels(background=False)
    saved = sampling._KERNELS
    if not compiled:
        sampling._KERNELS = False
    try:
        out = np.empty(n, sampling.numpy_dtype(sampler.dtype))
        sampler.fill(start, out)
        return out
    finally:
        sampling._KERNELS = saved


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("scale", "loc"), PARAMS)
def test_compiled_path_is_bit_identical(kind: str, dtype: str, scale: float, loc: float) -> None:
    sampler = sampling.TensorSampler(Distribution(kind, scale, loc=loc), dtype, 99, "k")
    # 300,001 elements from an odd start: several blocks, a ragged tail, and (for the untruncated
    # normal) ~1,000 values in the erfinv tail branch.
    numpy_path = _fill(sampler, False, 12_345, 300_001)
    compiled = _fill(sampler, True, 12_345, 300_001)
    assert sampling.compiled_kernels() is not None
    assert numpy_path.tobytes() == compiled.tobytes()


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sampling, "_KERNELS", None)
    monkeypatch.setenv("VARSCALE_NO_NUMBA", "1")
    sampling.load_kernels(background=False)
    assert sampling.compiled_kernels() is None


def test_background_load_then_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values are the same before, during and after the kernels arrive."""
    monkeypatch.setattr(sampling, "_KERNELS", None)
    sampler = sampling.TensorSampler(Distribution("truncated_normal", 0.1), "float32", 1, "s")
    before = _fill(sampler, False, 0, 70_000)
    sampling.load_kernels(background=True)
    during = np.empty(70_000, np.float32)
    sampler.fill(0, during)
    with sampling._KERNELS_LOCK:  # released once the loader has finished
        pass
    after = _fill(sampler, True, 0, 70_000)
    assert before.tobytes() == during.tobytes() == after.tobytes()
