"""The compiled C transforms must give exactly the numpy reference path's bytes."""

from __future__ import annotations

import numpy as np
import pytest
from paths import fill_on_path

from varscale_cli.core.distributions import Distribution
from varscale_cli.core.stream import TensorSampler, compiled_kernels, native_path
from varscale_cli.core.stream.native import Kernels
from varscale_cli.core.stream.transforms import Scratch, transform_f32
from varscale_cli.stats.law import Law
from varscale_cli.stats.tests import ks_distance

KINDS = ("truncated_normal", "normal", "uniform")
DTYPES = ("float32", "bfloat16", "float16", "float64")
# Ordinary, tiny (float16 subnormals) and huge scales, plus offset centres.
PARAMS = ((1.0, 0.0), (0.0123, 0.5), (3e-6, 0.0), (250.0, -1.0))



@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("scale", "loc"), PARAMS)
def test_compiled_path_is_bit_identical(
    kernels: Kernels, kind: str, dtype: str, scale: float, loc: float
) -> None:
    sampler = TensorSampler(Distribution(kind, scale, loc=loc), dtype, 99, "k")
    # 300,001 elements from an odd start: several blocks, a ragged tail, and (for the untruncated
    # normal) ~1,000 values in the erfinv tail branch.
    numpy_path = fill_on_path(sampler, False, 12_345, 300_001)
    compiled = fill_on_path(sampler, True, 12_345, 300_001)
    assert numpy_path.tobytes() == compiled.tobytes()


def test_extreme_bit_patterns_are_bit_identical(kernels: Kernels) -> None:
    """All 2^24 distinct uniforms (bits >> 8), so every reachable input is compared once."""
    k = np.arange(-(1 << 23), 1 << 23, dtype=np.int64)
    bits = (k << 8).astype(np.int32).view(np.uint32)
    for kind in KINDS:
        dist = Distribution(kind, 0.7)
        outs = []
        for compiled in (False, True):
            with native_path(compiled):
                out = np.empty(bits.shape[0], np.float32)
                transform_f32(dist, bits, Scratch(bits.shape[0]), out)
                outs.append(out)
        assert outs[0].tobytes() == outs[1].tobytes(), kind


def test_disabled_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARSCALE_NO_NATIVE", "1")
    assert compiled_kernels() is None


def test_native_path_overrides_the_environment(
    kernels: Kernels, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VARSCALE_NO_NATIVE", "1")
    with native_path(True) as forced:
        assert forced is kernels and compiled_kernels() is kernels
        with native_path(False) as nested:
            assert nested is None and compiled_kernels() is None
        assert compiled_kernels() is kernels
    assert compiled_kernels() is None
    monkeypatch.setenv("VARSCALE_NO_NATIVE", "0")
    assert compiled_kernels() is kernels


def test_extension_is_built_in_ci() -> None:
    """CI builds the extension (gcc is on the image); a silent fallback there would hide a
    broken build behind the slower numpy path."""
    import os

    if os.environ.get("CI"):
        from varscale_cli._native import vskernels  # noqa: F401


@pytest.mark.parametrize("n", [0, 1, 7, 8, 4097, 100_003])
@pytest.mark.parametrize("special", [None, np.nan, np.inf, -np.inf])
def test_compiled_moments_match_numpy(kernels: Kernels, n: int, special: float | None) -> None:
    """vs_moments_f32 (varscale stats) against float64 numpy on the finite values."""
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    if n:
        x[n // 2] = 0.0
    if special is not None and n:
        x[n // 3] = special
    r = kernels.moments_f32(x, -1.0, 1.5)
    fin = x[np.isfinite(x)].astype(np.float64)
    assert r[0] == fin.size
    assert r[8] == np.isnan(x).sum() and r[9] == np.isinf(x).sum()
    if fin.size:
        d = fin - fin.mean()
        assert r[1] == pytest.approx(fin.mean(), abs=1e-12)
        for k, got in ((2, r[2]), (3, r[3]), (4, r[4])):
            assert got == pytest.approx((d**k).sum(), rel=1e-9, abs=1e-9)
        assert (r[5], r[6]) == (fin.min(), fin.max())
        assert (r[7], r[10], r[11]) == ((fin == 0).sum(), (fin < -1.0).sum(), (fin > 1.5).sum())


@pytest.mark.parametrize(
    "lo, hi",
    [(-0.1, 0.1), (float(np.float32(-0.5)), float(np.float32(0.5))), (-1e300, 1e300),
     (-np.inf, np.inf), (-1e-45, 1e-45), (0.0, 0.0), (-3.4028235677973366e38, 3.4028235677973366e38)],
)
def test_compiled_moments_count_bounds_as_doubles(kernels: Kernels, lo: float, hi: float) -> None:
    """The kernel compares float32 values with float bounds derived from the double ones
    (the smallest float >= lo, the largest <= hi): the counts must be the double comparisons'.
    The sample holds the floats on both sides of each bound, and the bounds themselves."""
    edges = []
    for b in (lo, hi):
        if abs(b) <= float(np.finfo(np.float32).max):
            f = np.float32(b)
            edges += [f, np.nextafter(f, np.float32(np.inf)), np.nextafter(f, np.float32(-np.inf))]
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(5000).astype(np.float32),
                        np.array(edges * 300, dtype=np.float32),
                        np.array([np.float32(3.4e38), np.float32(-3.4e38), 0.0, -0.0], np.float32)])
    rng.shuffle(x)
    r = kernels.moments_f32(x, lo, hi)
    d = x.astype(np.float64)
    assert (r[10], r[11]) == ((d < lo).sum(), (d > hi).sum())
    assert r[7] == (d == 0).sum()


@pytest.mark.parametrize(
    "dist",
    [Distribution("normal", 0.05), Distribution("normal", 2.0, loc=-1.0),
     Distribution("truncated_normal", 0.05), Distribution("truncated_normal", 1.0, cut=3.0, lower=-0.5)],
    ids=["normal", "normal-loc", "truncated", "truncated-asymmetric"],
)
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_compiled_ks_distance_matches_numpy(kernels: Kernels, dist: Distribution, shift: float) -> None:
    """vs_ks_normal (stats' KS test for the normal family) against the numpy blocks: the same
    operations, so D agrees far below what 10^5 values resolve (~1e-3); a shifted sample
    (shift in units of scale) must give the same, large, D on both paths."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal(100_003)
    if dist.kind == "truncated_normal":
        x = x[(x > dist.lower_cut) & (x < dist.cut)]
    x = dist.loc + dist.scale * (x + shift)
    law = Law(0.0, 1.0, 3.0, 15.0)  # only its lattice (none) matters to ks_distance
    with native_path(False):
        want = ks_distance(x, dist, law)
    with native_path(True):
        got = ks_distance(x, dist, law)
    assert got[1] == want[1]
    assert got[0] == pytest.approx(want[0], abs=1e-12)
    assert (got[0] > 0.05) == (shift > 0)



def test_float32_subsample_gives_the_float64_distance(kernels: Kernels) -> None:
    """The check keeps float32 subsamples as float32 for the native sort; widening after the
    sort gives the very D (bit for bit) of the widened sample on both paths."""
    dist = Distribution("truncated_normal", 0.05)
    x = (dist.scale * np.random.default_rng(5).standard_normal(50_000)).astype(np.float32)
    x[::991] = np.nan
    law = Law(0.0, 1.0, 3.0, 15.0)
    with native_path(True):
        want = ks_distance(x.astype(np.float64), dist, law)
        assert ks_distance(x, dist, law) == want
    with native_path(False):
        assert ks_distance(x, dist, law) == ks_distance(x.astype(np.float64), dist, law)


@pytest.mark.parametrize("n", [0, 1, 4095, 4096, 4097, 3 * 4096 + 7])
def test_compiled_first_difference_finds_the_first_differing_byte(kernels: Kernels, n: int) -> None:
    """vs_first_diff (verify's comparison): -1 for equal bytes, else the first differing byte,
    wherever it falls in or across its 4 KiB blocks, and however many follow."""
    rng = np.random.default_rng(n)
    a = rng.integers(0, 256, n, dtype=np.uint8)
    assert kernels.first_diff(a, a.copy()) == -1
    for at in sorted({0, n // 2, 4095, 4096, n - 1} & set(range(n))):
        b = a.copy()
        b[at] ^= 0x80
        b[at + 1 :: 97] ^= 1  # later differences do not matter
        assert kernels.first_diff(a, b) == at


def test_compiled_ks_cdf_at_every_scale(kernels: Kernels) -> None:
    """vs_ks_normal's own exp, value by value: with one value x, D = max(F(x), 1 - F(x)), so
    D pins F(x) itself. Against the numpy path on both sides of 0, at 0, through the range of
    the exp's reduction (|x| up to ~37, where exp(-x^2/2) leaves the normal range) and past it."""
    dist = Distribution("normal", 1.0)
    law = Law(0.0, 1.0, 3.0, 15.0)
    xs = np.concatenate([[0.0, 5e-324, -1e-300], np.linspace(-40.0, 40.0, 4001), [1e10, -1e150]])
    for x in xs:
        with native_path(False):
            want = ks_distance(np.array([x]), dist, law)[0]
        with native_path(True):
            got = ks_distance(np.array([x]), dist, law)[0]
        assert got == pytest.approx(want, rel=4e-16, abs=0), x


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint32])
def test_compiled_gather_picks_the_positions(kernels: Kernels, dtype: type) -> None:
    """vs_gather32 (the subsample's pick from a chunk) against numpy's fancy indexing, with
    the chunk starting at a far element and NaN payloads kept bit for bit."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 1 << 32, 10_000, dtype=np.uint64).astype(np.uint32).view(dtype)
    first = (1 << 40) + 3
    pos = np.sort(rng.choice(x.size, 777, replace=False)).astype(np.int64) + first
    got = kernels.gather32(x, pos, first)
    assert got.dtype == x.dtype
    assert np.array_equal(got.view(np.uint32), x[pos - first].view(np.uint32))
    assert kernels.gather32(x, pos[:0], first).size == 0
