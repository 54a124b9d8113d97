"""The sampler: accuracy against high-precision references, statistics with derived tolerances,
exact bounds, determinism, and golden hashes of the stream.

docs/determinism.md describes the algorithm these tests pin down.
"""

from __future__ import annotations

import ast
import concurrent.futures
import functools
import hashlib
import inspect
import math

import ml_dtypes
import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import special, stats

from varscale_cli.core import distributions, stream
from varscale_cli.core.distributions import Distribution
from varscale_cli.core.dtypes import numpy_dtype
from varscale_cli.core.initializers.registry import he_normal
from varscale_cli.core.stream import coefficients, philox, transforms
from varscale_cli.core.stream import sampler as sampler_module

KINDS = ("truncated_normal", "normal", "uniform")
DTYPES = ("float32", "float64", "bfloat16", "float16")
HYPOTHESIS = settings(
    max_examples=30, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


def scratch(n: int) -> transforms.Scratch:
    return transforms.Scratch(n)


# =================================================================================================
# Accuracy against high-precision references
# =================================================================================================

@pytest.fixture(autouse=True)
def _thirty_digits():
    """mpmath references at 30 significant digits (restored afterwards: mpmath is global)."""
    with mpmath.workdps(30):
        yield


def _erfinv_f32(x: np.ndarray, tails: bool) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.empty_like(x)
    transforms.erfinv_f32(x, scratch(x.size), out, tails=tails)
    return out


def _f32_range(lo: float, hi: float, step: int = 1) -> np.ndarray:
    """Every ``step``-th float32 in [lo, hi] (positive lo, hi)."""
    a, b = np.array([lo, hi], np.float32).view(np.uint32)
    return np.arange(a, b + 1, step, dtype=np.uint32).view(np.float32)


#: The float32 argument bound of the truncated branch: |x| <= float32(erf(sqrt 2)).
X_TRUNC = float(np.float32(coefficients.ERF_SQRT2))


def test_scipy_erfinv_is_a_valid_reference() -> None:
    """scipy's float64 erfinv agrees with mpmath to ~1e-15, far below the 1e-7 we measure."""
    xs = np.concatenate([np.linspace(-0.9999, 0.9999, 41), [X_TRUNC, 1 - 2**-24, 2**-20]])
    ref = np.array([float(mpmath.erfinv(mpmath.mpf(float(v)))) for v in xs])
    np.testing.assert_allclose(special.erfinv(xs), ref, rtol=5e-15, atol=0)


def test_erfinv_f32_central_branch() -> None:
    """The truncated normal's domain, |x| <= erf(sqrt 2): max abs error < 1e-6 (measured
    2.6e-7 over every float32 in [0.5, erf(sqrt 2)]), relative < 4e-7 (measured 2.9e-7)."""
    x = np.concatenate([
        _f32_range(0.5, X_TRUNC, 7),  # ~1.1 M: a seventh of the float32s where errors peak
        np.linspace(0.0, X_TRUNC, 200_001, dtype=np.float32),
        np.geomspace(1e-30, 0.5, 2_000).astype(np.float32),
    ])
    x = np.concatenate([x, -x])
    got = _erfinv_f32(x, tails=False).astype(np.float64)
    ref = special.erfinv(x.astype(np.float64))
    err = np.abs(got - ref)
    assert err.max() < 1e-6
    nz = ref != 0
    assert (err[nz] / np.abs(ref[nz])).max() < 4e-7


def test_erfinv_f32_tails_exhaustive() -> None:
    """Every float32 in (erf(sqrt 2), 1) through the tail-capable path: documented bound
    relative 4e-7, absolute 1e-6 (measured 2.8e-7 and 6.9e-7, the latter at x = 0.99998)."""
    x = _f32_range(X_TRUNC, float(np.nextafter(np.float32(1), np.float32(0))))
    got = _erfinv_f32(x, tails=True).astype(np.float64)
    ref = special.erfinv(x.astype(np.float64))
    err = np.abs(got - ref)
    assert err.max() < 1e-6
    assert (err / ref).max() < 4e-7
    # The largest argument the untruncated sampler makes, 1 - 2^-23, is still accurate.
    top = np.float32(1 - 2**-23)
    assert _erfinv_f32(np.array([top]), tails=True)[0] == pytest.approx(
        float(mpmath.erfinv(mpmath.mpf(float(top)))), rel=4e-7)


def test_erfinv_f32_whole_range_with_tails() -> None:
    x = np.linspace(-1, 1, 400_001, dtype=np.float32)[1:-1]
    got = _erfinv_f32(x, tails=True).astype(np.float64)
    ref = special.erfinv(x.astype(np.float64))
    err = np.abs(got - ref)
    nz = ref != 0
    assert (err[nz] / np.abs(ref[nz])).max() < 4e-7
    # tails=True and tails=False agree bit for bit where the tail branch is not taken.
    central = np.abs(x) <= X_TRUNC
    assert np.array_equal(got[central], _erfinv_f32(x[central], tails=False))


def test_erfinv_f32_is_exactly_odd() -> None:
    """(1 - x)(1 + x) is symmetric in x, so erfinv(-x) == -erfinv(x) bit for bit: the
    sampled distributions are exactly symmetric."""
    x = np.linspace(0, 1, 100_001, dtype=np.float32)[:-1]
    assert np.array_equal(_erfinv_f32(-x, tails=True), -_erfinv_f32(x, tails=True))


def _ppnd16(q: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(q, dtype=np.float64)
    out = np.empty_like(q)
    return transforms.ppnd16(q, out)


def _mp_ppnd(q: float) -> float:
    """Phi^-1(1/2 + q) = sqrt(2) erfinv(2 q), in 30-digit arithmetic (2 q is exact)."""
    return float(mpmath.sqrt(2) * mpmath.erfinv(2 * mpmath.mpf(q)))


def test_ppnd16_against_mpmath() -> None:
    """AS241 in q form: relative error < 1e-14 in all three branches (measured 6.3e-16)."""
    rng = np.random.default_rng(7)
    central = rng.uniform(-0.425, 0.425, 120)
    near = 0.5 - np.exp(-rng.uniform(-math.log(0.075), 25.0, 120))  # r = sqrt(-log p) <= 5
    far = 0.5 - np.exp(-rng.uniform(25.0, 53 * math.log(2), 120))  # r > 5, down to p = 2^-53
    tails = np.concatenate([near, far])
    tails = np.where(rng.random(tails.size) < 0.5, tails, -tails)
    edges = [0.425, -0.425, np.nextafter(0.425, 1), 0.5 - 2**-53, -(0.5 - 2**-53), 2**-60]
    q = np.concatenate([central, tails, edges])
    got = _ppnd16(q)
    ref = np.array([_mp_ppnd(float(v)) for v in q])
    assert (np.abs(got - ref) / np.abs(ref)).max() < 1e-14
    assert _ppnd16(np.array([0.0]))[0] == 0.0
    assert np.array_equal(_ppnd16(-q), -got)  # exactly odd


def test_ppnd16_dense_against_scipy() -> None:
    """1 M points against scipy (erfinv for |q| <= 1/4, ndtri of the exact p = 1/2 - |q| above)."""
    q = np.random.default_rng(8).uniform(-0.5, 0.5, 1_000_000)
    p = 0.5 - np.abs(q)
    ref = np.where(np.abs(q) <= 0.25, math.sqrt(2) * special.erfinv(2 * q),
                   -np.sign(q) * special.ndtri(p))
    assert (np.abs(_ppnd16(q) - ref) / np.abs(ref)).max() < 1e-14


def test_neg_log_f32_against_math_log() -> None:
    """Our float32 log: |error| < 2e-7 * max(1, |log y|) for every normal float32 y we tried
    (measured 1.4e-7 over 7.7 M values); the erfinv argument needs y in (2^-22, 1]."""
    y = np.concatenate([
        _f32_range(2.0**-126, 2.0**127, 4099),
        _f32_range(0.5, 2.0, 61),
        _f32_range(2.0**-23, 2.0**-21, 61),
    ])
    out = np.empty_like(y)
    transforms.neg_log_f32(y, scratch(y.size), out, np.float32(0.0))
    ref = np.array([-math.log(float(v)) for v in y])
    err = np.abs(out.astype(np.float64) - ref)
    assert (err / np.maximum(1.0, np.abs(ref))).max() < 2e-7
    # The shift (Giles' 2.5) is folded in exactly as a subtraction.
    shifted = np.empty_like(y)
    transforms.neg_log_f32(y, scratch(y.size), shifted, np.float32(2.5))
    err = np.abs(shifted.astype(np.float64) - (ref - 2.5))
    assert (err / np.maximum(1.0, np.abs(ref))).max() < 3e-7


def test_neg_log_f64_against_mpmath() -> None:
    """The AS241 tail's log: relative error < 1e-15 (measured 4.3e-16)."""
    y = np.concatenate([np.exp(-np.linspace(0.01, 700, 300)), [2.0**-1022, 2.0**-53, 0.075, 0.5],
                        1 - np.arange(1, 40) * 2.0**-53])
    got = transforms.neg_log_f64(y.copy())
    ref = np.array([float(-mpmath.log(mpmath.mpf(float(v)))) for v in y])
    assert (np.abs(got - ref) / np.abs(ref)).max() < 1e-15


def _literal_text(module, name: str) -> str:
    """The decimal text a module-level constant is written with."""
    source = inspect.getsource(module)
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            assert isinstance(node.value, ast.Constant), name
            return ast.get_source_segment(source, node.value)
    raise AssertionError(f"{name} is not a literal in {module.__name__}")


MP_CONSTANTS = {
    "ERF_SQRT2": lambda: mpmath.erf(mpmath.sqrt(2)),
    "TRUNC_STD_2": lambda: mpmath.sqrt(1 - 4 * mpmath.npdf(2) / mpmath.erf(mpmath.sqrt(2))),
    "LN2": lambda: mpmath.log(2),
    "SQRT_HALF": lambda: mpmath.sqrt(mpmath.mpf(1) / 2),
}


@pytest.mark.parametrize("name", sorted(MP_CONSTANTS))
def test_constants_against_mpmath(name: str) -> None:
    """Each literal is recomputed at 30 digits. The float64 each one parses to must be the
    correctly rounded value (that is what the sampler uses); the decimal text itself must be
    good to 1e-17 relative, except TRUNC_STD_2, written with TF's 17 significant digits
    (0.87962566103423978, 3.4e-17 off the true 0.879625661034239750...), which still parses
    to the correctly rounded double."""
    exact = MP_CONSTANTS[name]()
    value = getattr(coefficients, name)
    assert value == float(exact)
    text = _literal_text(coefficients, name)
    rel = abs((mpmath.mpf(text) - exact) / exact)
    assert rel < (5e-17 if name == "TRUNC_STD_2" else 1e-17), (text, rel)


def test_derived_constants() -> None:
    mp_erf = mpmath.erf(mpmath.sqrt(2))
    assert coefficients.HALF_MASS_2 == float(mp_erf / 2) == coefficients.ERF_SQRT2 / 2
    assert coefficients.SQRT2 == float(mpmath.sqrt(2))
    # distributions.truncated_moments derives the same constant with libm: agreed to an ulp.
    libm = math.sqrt(distributions.truncated_moments(2.0)[0])
    assert libm == pytest.approx(coefficients.TRUNC_STD_2, rel=2.3e-16)


def test_truncated_moments_against_mpmath() -> None:
    """Var and kurtosis of N(0, 1) cut at +-2 (var 0.77374..., kurtosis 2.36553671712964951...)."""
    c = mpmath.mpf(2)
    z = mpmath.erf(c / mpmath.sqrt(2))
    var = 1 - 2 * c * mpmath.npdf(c) / z
    m4 = 3 - 2 * mpmath.npdf(c) * (c**3 + 3 * c) / z
    # Cross-check the closed forms by integrating the density.
    assert var == pytest.approx(mpmath.quad(lambda t: t**2 * mpmath.npdf(t), [-2, 2]) / z)
    got_var, got_m4 = distributions.truncated_moments(2.0)
    assert got_var == pytest.approx(float(var), rel=1e-14)
    assert got_m4 == pytest.approx(float(m4), rel=1e-14)
    kurt = Distribution("truncated_normal", 1.0).kurtosis
    assert kurt == pytest.approx(float(m4 / var**2), rel=1e-14)
    assert f"{kurt:.4f}" == "2.3655"
    assert Distribution("normal", 1.0).kurtosis == 3.0
    assert Distribution("uniform", 1.0).kurtosis == 1.8


def test_distribution_cdf_against_mpmath() -> None:
    ts = [-3.0, -2.0, -1.3, -0.2, 0.0, 0.7, 1.99, 2.0, 2.5]
    normal = Distribution("normal", 0.5)
    trunc = Distribution("truncated_normal", 0.5)
    lo, hi = mpmath.ncdf(-2), mpmath.ncdf(2)
    for t in ts:
        x = 0.5 * t
        # Distribution.cdf uses a vectorised erf accurate to 1.5e-7 (distributions.erf): half
        # of that for the normal CDF, and / erf(sqrt 2) ~ 1.05x that for the truncated one.
        assert normal.cdf(np.array([x]))[0] == pytest.approx(float(mpmath.ncdf(t)), abs=0.8e-7)
        want = min(1, max(0, (mpmath.ncdf(t) - lo) / (hi - lo)))
        assert trunc.cdf(np.array([x]))[0] == pytest.approx(float(want), abs=1.6e-7)
    uni = Distribution("uniform", 2.0)
    assert list(uni.cdf(np.array([-3.0, -2.0, 0.0, 1.0, 2.0]))) == [0.0, 0.0, 0.5, 0.75, 1.0]


# =================================================================================================
# Statistics: tolerances from the sample size, the kurtosis and a false-positive budget
# =================================================================================================

N = 2**18
#: False-positive probability per statistical assertion for a correct sampler with a random seed.
#: There are 12 (kind x dtype) cases x 3 assertions = 36, so by Bonferroni the family-wise rate
#: is at most 3.6e-5. (The seeds below are fixed, so the suite itself is deterministic.)
ALPHA = 1e-6
#: Two-sided normal quantile for ALPHA: 4.8916...
Z = float(stats.norm.isf(ALPHA / 2))
#: Largest relative difference between a stored value and an exact draw from the law: the
#: float32 transforms are good to 4e-7 (see the accuracy tests above), then the value is rounded
#: to the dtype (unit roundoff 2^-8 for bfloat16, 2^-11 for float16). The scale below (0.05)
#: keeps float16 values away from its subnormals, where the bound would be absolute instead.
EPS = {"float64": 1e-15, "float32": 1e-6, "bfloat16": 2.0**-8 + 1e-6, "float16": 2.0**-11 + 1e-6}
SCALE = 0.05


def test_z_is_derived_from_the_budget() -> None:
    assert Z == pytest.approx(4.8916, abs=1e-4)
    assert 2 * stats.norm.sf(Z) == pytest.approx(ALPHA)


@functools.cache
def _big_sample(kind: str, dtype: str) -> np.ndarray:
    sampler = stream.TensorSampler(Distribution(kind, SCALE), dtype, 20240607, f"stats/{kind}")
    return stream.sample(sampler, (N,))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_variance_and_mean(kind: str, dtype: str) -> None:
    """With the centre known (0), the variance estimate s2 = mean(x^2) has standard error
    var * sqrt((kurtosis - 1) / N); the mean has sigma / sqrt(N). Rounding to the dtype can move
    each x^2 by at most (2 eps + eps^2) x^2 and each x by eps |x| (E|x| <= sigma), so those
    deterministic terms are added to the tolerance."""
    dist = Distribution(kind, SCALE)
    x = _big_sample(kind, dtype).astype(np.float64)
    eps = EPS[dtype]
    ratio = float(np.mean(x * x)) / dist.variance
    tol_var = Z * math.sqrt((dist.kurtosis - 1.0) / N) + 2 * eps + eps**2
    assert abs(ratio - 1.0) <= tol_var, (ratio, tol_var)
    tol_mean = Z * dist.std / math.sqrt(N) + eps * dist.std
    assert abs(float(np.mean(x))) <= tol_mean


def _neighbours(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The next representable values below and above each 16-bit float in ``v``, as float64."""
    bits = v.view(np.uint16)
    mag = (bits & 0x7FFF).astype(np.int64)
    neg = ((bits & 0x8000) != 0) & (mag != 0)  # -0 counts as +0

    def value(m: np.ndarray, negative: np.ndarray) -> np.ndarray:
        b = m.astype(np.uint16) | np.where(negative, 0x8000, 0).astype(np.uint16)
        return b.view(v.dtype).astype(np.float64)

    up = value(np.where(neg, mag - 1, mag + 1), neg)
    down = value(np.where(neg, mag + 1, np.where(mag == 0, 1, mag - 1)), neg | (mag == 0))
    return down, up


def _ks_rounded(x: np.ndarray, dist: Distribution) -> float:
    """KS p-value of 16-bit float data against the exact law of *rounded* draws.

    At N = 2^18 the plain KS test is invalid for bfloat16/float16: the data take a few thousand
    distinct values, each a jump in the empirical CDF of up to ~1e-3, and scipy's statistic
    compares the continuous CDF at the *top* of every jump, so it sees the jump itself (a few
    tenths of the 5e-3 critical value) as misfit. Instead the null here is the rounded law: a
    stored value v collects the mass of its rounding cell [mid(prev, v), mid(v, next)], so the
    law's CDF is F(upper cell edge) at v and F(lower cell edge) just below it. The sup of
    |ECDF - G| over the real line is attained at those two points of the observed values (both
    are step functions with jumps only at representable values, and between two observed values
    the ECDF is constant while G is monotone). For a discontinuous null the KS distribution is
    stochastically smaller, so ``kstwo.sf`` gives a conservative p-value.
    """
    n = x.size
    vals, counts = np.unique(x.astype(np.float64), return_counts=True)
    down, up = _neighbours(vals.astype(x.dtype))
    f_hi = dist.cdf((vals + up) / 2)
    f_lo = dist.cdf((vals + down) / 2)
    ecdf_hi = np.cumsum(counts) / n
    ecdf_lo = ecdf_hi - counts / n
    d = max(np.abs(ecdf_hi - f_hi).max(), np.abs(ecdf_lo - f_lo).max())
    return float(stats.kstwo.sf(d, n))


def _ks(x: np.ndarray, dist: Distribution) -> float:
    if x.dtype.itemsize == 2:
        return _ks_rounded(x, dist)
    # float32: the stored values differ from exact draws by < 1e-6 relative, moving the CDF by
    # < 3e-7, against a KS resolution of ~1 / sqrt(N) = 2e-3: negligible.
    return float(stats.kstest(x.astype(np.float64), dist.cdf).pvalue)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_goodness_of_fit_against_the_analytic_cdf(kind: str, dtype: str) -> None:
    assert _ks(_big_sample(kind, dtype), Distribution(kind, SCALE)) > ALPHA


@pytest.mark.parametrize("dtype", DTYPES)
def test_goodness_of_fit_has_power(dtype: str) -> None:
    """The same data (a quarter of it, for time) against a law 10 % too wide, or untruncated,
    is rejected: the test bites."""
    x = _big_sample("truncated_normal", dtype)[: N // 4]
    assert _ks(x, Distribution("truncated_normal", SCALE * 1.1)) < ALPHA
    assert _ks(x, Distribution("normal", SCALE)) < ALPHA
    u = _big_sample("uniform", dtype)[: N // 4]
    assert _ks(u, Distribution("uniform", SCALE * 1.1)) < ALPHA


def test_neighbours_helper() -> None:
    v = np.array([0.0, 1.0, -1.0, 65504.0], np.float16)
    down, up = _neighbours(v)
    assert list(up) == [2.0**-24, 1 + 2.0**-10, -(1 - 2.0**-11), float("inf")]
    assert list(down) == [-(2.0**-24), 1 - 2.0**-11, -(1 + 2.0**-10), 65472.0]
    b = np.array([1.0], ml_dtypes.bfloat16)
    assert [float(t[0]) for t in _neighbours(b)] == [1 - 2.0**-8, 1 + 2.0**-7]


# --- exact bounds ---------------------------------------------------------------------------------

SIGMAS = (1e-4, 3.3e-4, 1e-3, 0.0123, 0.0883883476, 0.1, 1.0, 2.5, 7.3, 1000.0)
#: Bit patterns for the extreme uniforms, in (+, -) pairs. 32-bit: (int32(u) >> 8) | 1 =
#: +-(2^23 - 1) (twice) and +-1. 64-bit: ((u >> 11) | 1) - 2^52 = +-(2^52 - 1), +-1, +-(2^52 - 3).
EXTREME32 = np.array([0x7FFFFFFF, 0x80000000, 0x7FFFFF00, 0x800000FF, 0, 0xFFFFFFFF], np.uint32)
EXTREME64 = np.array([2**64 - 1, 0, 2**63, 2**63 - 1, (2**53 - 3) << 11, 2 << 11], np.uint64)
#: The largest |value| / sigma of the untruncated normal: sqrt(2) erfinv(1 - 2^-23) = 5.2947 for
#: 32-bit and smaller dtypes, sqrt(2) erfinv(1 - 2^-52) = 8.2095 for float64.
with mpmath.workdps(30):
    REACH32 = float(mpmath.sqrt(2) * mpmath.erfinv(1 - mpmath.mpf(2) ** -23))
    REACH64 = float(mpmath.sqrt(2) * mpmath.erfinv(1 - mpmath.mpf(2) ** -52))


def _dtype_bound(bound: float, dtype: str) -> float:
    return float(np.array(bound, np.float64).astype(numpy_dtype(dtype)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["truncated_normal", "uniform"])
def test_every_element_within_the_bound(kind: str, dtype: str) -> None:
    """uniform |x| <= dtype(limit), truncated |x| <= dtype(2 sigma), element by element."""
    for sigma in SIGMAS:
        dist = Distribution(kind, sigma)
        x = stream.sample(stream.TensorSampler(dist, dtype, 5, f"b{sigma}"), (1 << 14,))
        x = x.astype(np.float64)
        assert np.isfinite(x).all()
        assert np.abs(x).max() <= _dtype_bound(dist.bound, dtype), sigma


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_extreme_bits_stay_within_the_bound(
    kind: str, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Feed the transforms the bit patterns that give the largest |uniform| (no random sample
    reaches them reliably), through the real fill path including the rounding to the dtype.

    The bits are injected into the numpy path's bit source, so this runs on the numpy path;
    the fused C stream gives the same values for every input (test_kernels.py compares the
    transforms on all 2^24 uniforms, test_fused.py the rounding on every boundary)."""
    monkeypatch.setattr(stream.native, "_forced", False)
    monkeypatch.setattr(sampler_module, "raw_bits32", lambda key, start, n, bg=None: np.resize(EXTREME32, n))
    monkeypatch.setattr(sampler_module, "raw_words", lambda key, start, n, bg=None: np.resize(EXTREME64, n))
    for sigma in SIGMAS:
        dist = Distribution(kind, sigma)
        out = np.empty(12, numpy_dtype(dtype))
        stream.TensorSampler(dist, dtype, 0).fill(0, out)
        x = out.astype(np.float64)
        assert np.isfinite(x).all()
        assert np.array_equal(x[0::2], -x[1::2])  # the extremes come in +- pairs
        top = np.abs(x).max()
        if kind == "normal":
            reach = REACH64 if dtype == "float64" else REACH32
            assert top == pytest.approx(reach * sigma, rel=2 * EPS[dtype])
        else:
            bound = _dtype_bound(dist.bound, dtype)
            assert top <= bound
            # ...and the extremes do come right up to it (to within the dtype's rounding).
            assert top >= bound * (1 - 3 * EPS[dtype]) - 2.0**-24, (sigma, top, bound)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_16_bit_values_are_the_float32_values_rounded_to_nearest_even(
    kind: str, dtype: str
) -> None:
    for sigma in (1e-4, 0.05, 1000.0):  # float16 subnormals, normals, large values
        dist = Distribution(kind, sigma)
        f32 = stream.sample(stream.TensorSampler(dist, "float32", 3, "r"), (1 << 14,))
        low = stream.sample(stream.TensorSampler(dist, dtype, 3, "r"), (1 << 14,))
        if dtype == "bfloat16":
            # Independent integer implementation of round-to-nearest-even to the top 16 bits.
            u = f32.view(np.uint32).astype(np.uint64)
            rne = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
            assert np.array_equal(low.view(np.uint16), rne)
        x = f32.astype(np.float64)
        r = low.astype(np.float64)
        down, up = _neighbours(low)
        dist_r = np.abs(x - r)
        assert (dist_r <= np.abs(x - down)).all() and (dist_r <= np.abs(x - up)).all()
        ties = (dist_r == np.abs(x - down)) | (dist_r == np.abs(x - up))
        assert ((low.view(np.uint16)[ties] & 1) == 0).all()  # ties go to the even neighbour


# =================================================================================================
# Determinism
# =================================================================================================

FULL = 3001  # odd: the last 32-bit element is the low half of a word


@functools.cache
def _full(kind: str, dtype: str) -> np.ndarray:
    sampler = stream.TensorSampler(Distribution(kind, 0.7), dtype, 99, "det")
    return stream.sample(sampler, (FULL,))


def _sampler(kind: str, dtype: str) -> stream.TensorSampler:
    return stream.TensorSampler(Distribution(kind, 0.7), dtype, 99, "det")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
@HYPOTHESIS
@given(data=st.data())
def test_fill_any_range_equals_the_slice(kind: str, dtype: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, FULL), label="start")
    block = data.draw(st.sampled_from([None, 1, 3, 8, 1000]), label="scratch block")
    # Tiny scratch blocks mean one Philox per block: keep those ranges short, for time.
    longest = FULL - start if block in (None, 1000) else min(FULL - start, 40 * block)
    length = data.draw(st.integers(0, longest), label="length")
    out = np.empty(length, numpy_dtype(dtype))
    _sampler(kind, dtype).fill(start, out, None if block is None else scratch(block))
    assert out.tobytes() == _full(kind, dtype)[start : start + length].tobytes()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", KINDS)
def test_chunk_sizes_do_not_matter(kind: str, dtype: str) -> None:
    sampler = _sampler(kind, dtype)
    full_shape = (7, 9, 20)
    whole = stream.sample(sampler, full_shape)
    # A region of short runs (trailing axis partial) and one whose trailing axes merge into a
    # single run of the full tensor's flat index space.
    for offset, shape in (((1, 2, 3), (3, 4, 15)), ((2, 0, 0), (3, 9, 20))):
        index = tuple(slice(o, o + d) for o, d in zip(offset, shape, strict=True))
        want = np.ascontiguousarray(whole[index]).tobytes()
        for chunk in (1, 7, 4096, 1 << 20):
            parts = [c.copy()
                     for c in stream.iter_region(sampler, full_shape, offset, shape, chunk)]
            assert all(p.size <= chunk for p in parts)
            assert np.concatenate(parts).tobytes() == want, chunk


@pytest.mark.parametrize("dtype", DTYPES)
@HYPOTHESIS
@given(data=st.data())
def test_partitions_equal_the_slice(dtype: str, data: st.DataObject) -> None:
    full = tuple(data.draw(st.lists(st.integers(1, 9), min_size=3, max_size=3), label="full"))
    offset = tuple(data.draw(st.integers(0, f - 1)) for f in full)
    shape = tuple(data.draw(st.integers(0, f - o)) for f, o in zip(full, offset, strict=True))
    kind = data.draw(st.sampled_from(KINDS), label="kind")
    sampler = stream.TensorSampler(Distribution(kind, 0.3), dtype, 4, "part")
    whole = stream.sample(sampler, full)
    part = stream.sample(sampler, full, offset, shape)
    index = tuple(slice(o, o + d) for o, d in zip(offset, shape, strict=True))
    assert part.shape == shape
    assert part.tobytes() == np.ascontiguousarray(whole[index]).tobytes()


def test_call_order_does_not_matter() -> None:
    a = stream.TensorSampler(Distribution("truncated_normal", 0.1), "float32", 1, "A")
    b = stream.TensorSampler(Distribution("uniform", 0.2), "bfloat16", 1, "B")
    a1 = stream.sample(a, (300, 7))
    b1 = stream.sample(b, (300, 7))
    b2 = stream.sample(b, (300, 7))
    a2 = stream.sample(a, (300, 7))
    assert a1.tobytes() == a2.tobytes() and b1.tobytes() == b2.tobytes()
    # Interleaved chunks sharing one scratch buffer: still the same values.
    s = scratch(64)
    a3 = np.empty(2100, np.float32)
    b3 = np.empty(2100, ml_dtypes.bfloat16)
    for lo in range(0, 2100, 150):
        b.fill(lo, b3[lo : lo + 150], s)
        a.fill(lo, a3[lo : lo + 150], s)
    assert a3.tobytes() == a1.tobytes() and b3.tobytes() == b1.tobytes()


def test_worker_count_does_not_matter() -> None:
    sampler = _sampler("normal", "float32")
    out = np.empty(FULL, np.float32)
    ranges = [(lo, min(FULL, lo + 97)) for lo in range(0, FULL, 97)][::-1]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda r: sampler.fill(r[0], out[r[0] : r[1]]), ranges))
    assert out.tobytes() == _full("normal", "float32").tobytes()


@pytest.mark.parametrize(("block", "n"), [(1000, (1 << 14) + 3), (3, 301)])
def test_scratch_block_size_does_not_matter(
    block: int, n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    samplers = [_sampler(kind, dtype) for kind in KINDS for dtype in DTYPES]
    before = [stream.sample(s, (n,)).tobytes() for s in samplers]
    monkeypatch.setattr(sampler_module, "BLOCK", block)
    after = [stream.sample(s, (n,)).tobytes() for s in samplers]
    assert before == after


def test_values_depend_on_the_index_not_the_shape() -> None:
    sampler = _sampler("truncated_normal", "float32")
    flat = stream.sample(sampler, (2048,))
    assert stream.sample(sampler, (64, 32)).tobytes() == flat.tobytes()
    assert stream.sample(sampler, (4, 8, 64)).tobytes() == flat.tobytes()


def test_values_depend_on_seed_stream_and_params() -> None:
    base = stream.TensorSampler(Distribution("normal", 1.0), "float32", 1, "s")
    ref = stream.sample(base, (64,))
    others = [
        stream.TensorSampler(Distribution("normal", 1.0), "float32", 2, "s"),
        stream.TensorSampler(Distribution("normal", 1.0), "float32", 1, "t"),
        stream.TensorSampler(Distribution("normal", 1.0), "float32", 1, "s\0"),
    ]
    for other in others:
        assert not np.array_equal(stream.sample(other, (64,)), ref)
    scaled = stream.TensorSampler(Distribution("normal", 2.0), "float32", 1, "s")
    assert np.array_equal(stream.sample(scaled, (64,)), 2 * ref)  # same bits, scaled exactly


# --- the bit layout, re-derived from its specification --------------------------------------------

_MASK = (1 << 64) - 1


def _philox4x64_10(counter: int, key: tuple[int, int]) -> list[int]:
    """Philox4x64-10 (Salmon et al., SC'11) in plain Python, for the counter (counter, 0, 0, 0)."""
    c = [counter, 0, 0, 0]
    k = list(key)
    for _ in range(10):
        p0 = 0xD2E7470EE14C6C93 * c[0]
        p1 = 0xCA5A826395121157 * c[2]
        c = [(p1 >> 64) ^ c[1] ^ k[0], p1 & _MASK, (p0 >> 64) ^ c[3] ^ k[1], p0 & _MASK]
        k = [(k[0] + 0x9E3779B97F4A7C15) & _MASK, (k[1] + 0xBB67AE8584CAA73B) & _MASK]
    return c


def test_key_derivation_matches_the_spec() -> None:
    seed, name = 1234, "layers.0/attn/q_proj ✓"
    digest = hashlib.sha256(
        stream.STREAM_ID.encode() + b"\0" + seed.to_bytes(8, "little") + name.encode("utf-8")
    ).digest()
    want = (int.from_bytes(digest[:8], "little"), int.from_bytes(digest[8:16], "little"))
    assert stream.stream_key(seed, name) == want


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, True, "1"])
def test_stream_key_rejects_bad_seeds(seed: object) -> None:
    with pytest.raises(ValueError, match="seed must be an integer"):
        stream.stream_key(seed, "")  # type: ignore[arg-type]


def test_raw_words_are_philox4x64_10() -> None:
    """Word w of a stream is output w % 4 of Philox4x64-10 at counter w // 4 + 1 (numpy's Philox
    increments its counter before each block). Checked against a pure-Python Philox, so a change
    in numpy's bit generator would be caught here, not only by the golden hashes."""
    key = stream.stream_key(1234, "golden")
    spec = [w for b in range(4) for w in _philox4x64_10(b + 1, key)]
    assert [int(w) for w in philox.raw_words(key, 0, 16)] == spec
    for first in range(1, 9):
        assert [int(w) for w in philox.raw_words(key, first, 5)] == spec[first : first + 5]
    far = 10**12 + 3
    assert int(philox.raw_words(key, far, 1)[0]) == _philox4x64_10(far // 4 + 1, key)[far % 4]


def test_uniform_values_follow_the_spec() -> None:
    """float32 element i: u = low (even i) / high (odd i) half of word i // 2;
    x = ((int32(u) >> 8) | 1) * float32(float32(limit) * 2^-23). float64 element i: u = word i;
    x = (((u >> 11) | 1) - 2^52) * 2^-52 * limit."""
    key = stream.stream_key(1234, "golden")
    words = [w for b in range(3) for w in _philox4x64_10(b + 1, key)]
    limit = 0.1
    f32 = stream.sample(stream.TensorSampler(Distribution("uniform", limit), "float32", 1234,
                                                 "golden"), (24,))
    step = np.float32(np.float32(limit) * np.float32(2.0**-23))
    for i in range(24):
        u = (words[i // 2] >> (32 * (i % 2))) & 0xFFFFFFFF
        k = ((u - (1 << 32) if u >= 1 << 31 else u) >> 8) | 1
        assert f32[i] == np.float32(np.float32(k) * step)
    f64 = stream.sample(stream.TensorSampler(Distribution("uniform", limit), "float64", 1234,
                                                 "golden"), (12,))
    for i in range(12):
        q = ((words[i] >> 11) | 1) - (1 << 52)
        assert f64[i] == float(q) * 2.0**-52 * limit


# =================================================================================================
# Golden hashes
# =================================================================================================
# These pin the stream: every byte the sampler produces for fixed inputs. If one of them changes,
# the bits changed, and files written before and after the change differ for the same seed. That
# requires bumping stream.STREAM_ID (every output records it) and then re-pinning these values;
# never re-pin without bumping STREAM_ID.

GOLDEN_STREAM_KEY = (11749366235853227557, 12084264286343175034)

GOLDEN = {
    ("truncated_normal", "float32"):
        "aabe1e1d4a8ce9db55d9fbc03553997b1ee447b285e42f3b7841d0ee0bd62b16",
    ("truncated_normal", "float64"):
        "bb4acfaa8a09cf2363adb727849479bd1d3d7796370aadc2e1e48a5531177526",
    ("truncated_normal", "bfloat16"):
        "b9360ceace75b16b8d4f1ee2821548fe7e45c9b2faa8a8401fe3bc2bbf5d1127",
    ("truncated_normal", "float16"):
        "ebfa84e0cb7688223223e67f4bec77a5bed05ad2db23b2322fd097cf27128ebb",
    ("normal", "float32"):
        "4d29ce30c17d7c6df501188fcaeb71dabfa6488e0f9e2c21d93b673dae769e7a",
    ("normal", "float64"):
        "d55c79f7553d18e2b41499325b7d04690b4b09cbc0bec82a0f1f2d1078ec5e02",
    ("normal", "bfloat16"):
        "51e973d57b08dcab892601091be981b825d544deb10a607ffae832f5db10449d",
    ("normal", "float16"):
        "4ebabf6cb7b5aa94b20e418a868501ebec760d49bf93141e3a42c87d8b0ab3ff",
    ("uniform", "float32"):
        "1b9e9b4c30a12c5a22c94c0bfb57398db8a796f01e02213be3584127c56412f5",
    ("uniform", "float64"):
        "d5683d22f9ffda363ce805739fd701a217463e4017d3464df9d31621e27c9ce4",
    ("uniform", "bfloat16"):
        "dbe132a6c77da8597d135ccec0cd36d3a7c67715c630319ff38b6fcaae946632",
    ("uniform", "float16"):
        "c33cbe5b08768dc765ba6d0eef9320ae1e132074bddc1bdc64e5932ef5e8bbbc",
}
#: he_normal(seed=0)((64, 32), stream="dense/kernel"), float32, through the public API.
GOLDEN_HE_NORMAL = "ecf088e6526b9928f0cdf33248322b3c6d7d83c5b0de723cfdbcbea6ec4dc910"
#: The same in float64: it also pins the initializer's scale arithmetic to the last bit (a 1-ulp
#: change of TRUNC_STD_2 leaves the float32 tensor unchanged but changes this one).
GOLDEN_HE_NORMAL_F64 = "0b3ce5de7b687e7d85e09de4a975a4c3ff37d35841c2fc5649c47621919ea98d"


def sha256_le(a: np.ndarray) -> str:
    """sha256 of the array's little-endian bytes (the same on any host)."""
    a = np.ascontiguousarray(a)
    width = a.dtype.itemsize
    return hashlib.sha256(a.view(f"u{width}").astype(f"<u{width}").tobytes()).hexdigest()



def test_golden_stream_id_and_key() -> None:
    assert stream.STREAM_ID == "varscale-philox4x64-10-v1"
    assert stream.stream_key(1234, "golden") == GOLDEN_STREAM_KEY


@pytest.mark.parametrize(("kind", "dtype"), sorted(GOLDEN))
def test_golden_hashes(kind: str, dtype: str, transform_path: str) -> None:
    sampler = stream.TensorSampler(Distribution(kind, 0.1), dtype, 1234, "golden")
    assert sha256_le(stream.sample(sampler, (4096,))) == GOLDEN[(kind, dtype)]


def test_golden_he_normal_through_the_public_api(transform_path: str) -> None:
    w = he_normal(seed=0)((64, 32), stream="dense/kernel")
    assert w.dtype == np.float32 and w.shape == (64, 32)
    assert sha256_le(w) == GOLDEN_HE_NORMAL
    w64 = he_normal(seed=0, dtype="float64")((64, 32), stream="dense/kernel")
    assert sha256_le(w64) == GOLDEN_HE_NORMAL_F64


def test_vectorised_erf_matches_math_erf() -> None:
    """distributions.erf (A&S 7.1.26) backs every CDF the stats tests use: |error| <= 1.5e-7."""
    from varscale_cli.core.distributions import erf

    x = np.linspace(-7.0, 7.0, 100_001)
    ref = np.array([math.erf(v) for v in x])
    assert np.max(np.abs(erf(x) - ref)) <= 1.5e-7
    assert erf(np.array([0.0]))[0] == 0.0


@pytest.mark.parametrize("first_word", [0, 1, 3, 4, 4 * 2**40 + 3, 2**66 + 1])
def test_reused_philox_gives_the_same_words_as_a_fresh_one(first_word: int) -> None:
    """raw_words repositions a reused Philox by setting its state (no per-block construction);
    the words must equal those of a freshly constructed generator, far counters included."""
    key = stream.stream_key(7, "reuse")
    fresh = philox.raw_words(key, first_word, 11)
    reused = np.random.Philox()
    reused.random_raw(5)  # a stale position and buffer must not leak into the next range
    assert np.array_equal(philox.raw_words(key, first_word, 11, reused), fresh)
    assert np.array_equal(philox.raw_words(key, first_word, 11, reused), fresh)
