"""The statistical tests: mean, variance and Kolmogorov-Smirnov against the stored law.

docs/stats.md derives each statistic and its p-value; `MIN_COUNT` below is the size from which
the three of them catch the reference bugs with power 0.999.
"""

from __future__ import annotations

import math
from typing import Literal, NotRequired, TypedDict, get_args

import numpy as np

from ..core.distributions import Distribution
from ..core.stream import compiled_kernels
from .law import SQRT2, Law
from .summary import Summary

__all__ = [
    "MIN_COUNT",
    "STATISTIC_SYMBOLS",
    "TESTS",
    "StatTest",
    "StatTestResult",
    "kolmogorov_sf",
    "ks_distance",
    "normal_sf2",
    "run_tests",
    "variance_p_value",
]

#: The statistical tests run on every tested tensor; the Bonferroni family counts them.
StatTest = Literal["mean", "variance", "ks"]
TESTS: tuple[StatTest, ...] = get_args(StatTest)

#: How reports name each test's statistic: a z-score for the moments, D for KS.
STATISTIC_SYMBOLS: dict[StatTest, str] = {"mean": "z", "variance": "z", "ks": "D"}


class StatTestResult(TypedDict):
    """One test's outcome, as ``--json`` reports it (``n``: the KS subsample size; for a
    complex tensor's ``ks``, the modulus and phase distances, `circular`)."""

    statistic: float
    p_value: float
    ok: bool
    n: NotRequired[int]
    modulus_statistic: NotRequired[float]
    phase_statistic: NotRequired[float]


#: Smallest tensor the statistical tests are run on (docs/stats.md, "Minimum N"). Reference
#: family: 200 tested tensors at alpha 1e-3, per-test level 1e-3 / 600. The hardest of the
#: five bugs the report must catch is a uniform sampled where an untruncated normal of the
#: same variance was configured: KS distance D = 0.05721, reached at x* = -0.804 sigma where
#: the uniform's CDF is F1 = 0.268. The KS test rejects with power 0.999 once
#: sqrt(N) D >= c + z(0.999) sqrt(F1 (1 - F1)), c = sqrt(ln(2 / level) / 2) = 2.6455:
#: N >= ((2.6455 + 3.0902 * 0.4429) / 0.05721)^2 = 4,923. The other bugs need fewer (the
#: uncorrected truncated normal 1,376; a doubled scale 241). Rounded up to 5,000; the required
#: 10,000 (docs/stats.md) is then met with power > 0.999 for any realistic number of tensors.
MIN_COUNT = 5_000


def normal_sf2(z: float) -> float:
    """Two-sided normal tail P(|Z| >= |z|)."""
    return math.erfc(abs(z) / SQRT2)


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the limit of sqrt(n) D_n).

    For x >= 1: 2 sum_{k>=1} (-1)^(k-1) exp(-2 k^2 x^2); below, 1 minus the Jacobi theta form
    of the CDF, sqrt(2 pi) / x sum_{k>=1} exp(-(2k-1)^2 pi^2 / (8 x^2)); each converges in a few
    terms on its side. The leading term 2 exp(-2 x^2) is also Massart's bound on the finite-n
    tail (the Dvoretzky-Kiefer-Wolfowitz inequality), so p-values in the decision region are
    never smaller than the exact finite-n ones: the test stays valid at every n.
    """
    if x <= 0.0:
        return 1.0
    if x < 1.0:
        total = 0.0
        for k in range(1, 50):
            term = math.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8.0 * x * x))
            total += term
            if term < 1e-17 * total:
                break
        return min(1.0, max(0.0, 1.0 - math.sqrt(2.0 * math.pi) / x * total))
    total = 0.0
    for k in range(1, 50):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-300 or term < 1e-17 * abs(total):
            break
    return min(1.0, max(0.0, 2.0 * total))


def variance_p_value(ratio: float, n: int, kurtosis: float, sixth: float) -> float:
    """Two-sided p-value of a mean squared deviation ratio ``s0^2 / sigma^2`` over ``n`` values.

    ``ratio`` is the mean of n i.i.d. Y = (X - mu)^2 / sigma^2 with mean 1, variance
    kappa - 1 and third central moment sixth - 3 kappa + 2 (exact, from the law's moments).
    It is matched by ``a + b chi2_nu`` with the same three moments (nu = 8 / skewness^2,
    exact for a normal: n s0^2 / sigma^2 ~ chi2_n), whose tail Wilson-Hilferty's cube-root
    transform turns into a normal one. For 5,000 normal values this matches the exact
    chi-square tail at 1e-6 to 0.2 %, where the plain normal approximation is off by a
    factor of 2 (4.5e-7 on the high side, 2.1e-6 on the low side).
    """
    v = (kurtosis - 1.0) / n
    if not v > 0:
        return 1.0 if ratio == 1.0 else 0.0
    z = (ratio - 1.0) / math.sqrt(v)
    m3 = (sixth - 3.0 * kurtosis + 2.0) / n**2
    gamma = m3 / v**1.5
    if not abs(gamma) > 1e-9:
        return normal_sf2(z)
    # Mirror a left-skewed statistic so the fit below is always right-skewed.
    w = (ratio - 1.0) if gamma > 0 else (1.0 - ratio)
    nu = 8.0 / gamma**2
    b = math.sqrt(v / (2.0 * nu))
    chi = nu + w / b  # (ratio - a) / b, a = 1 - b nu
    if chi <= 0.0:
        return 0.0  # below the fitted law's support: as extreme as it gets
    t = 2.0 / (9.0 * nu)
    return normal_sf2(((chi / nu) ** (1.0 / 3.0) - (1.0 - t)) / math.sqrt(t))


#: Elements per block of the KS pass: 8192 float64 values (64 KiB) keep every temporary of the
#: CDF in cache and in malloc's heap. Whole-sample temporaries (100k values, 800 KB each) came
#: from fresh mmap'd pages on every call: the default check of a 147-tensor file faulted in
#: ~1 GB of zeroed pages, more CPU than sampling the file, and the page faults of two workers
#: contend for the process's memory map.
KS_BLOCK = 8192


def ks_distance(sample: np.ndarray, dist: Distribution, law: Law) -> tuple[float, int]:
    """(D, m): KS distance between the sample's ECDF and the stored law's CDF, sample size."""
    kernels = compiled_kernels()
    # numpy's own sort (x86-simd-sort / Highway SIMD code since numpy 2.0) of the float32
    # values: 4 ns per value here, a third of what an LSD radix sort in C took.
    xs = sample[np.isfinite(sample)]
    xs.sort()
    # Widening after the sort is exact and keeps the order, so D is the same either way.
    xs = xs.astype(np.float64, copy=False)
    m = xs.size
    if m == 0:
        return math.nan, 0
    blocks = [xs[start : start + KS_BLOCK] for start in range(0, m, KS_BLOCK)]
    # The stored law's exact steps serve only when every value is one of its points: then
    # each block's (P(X < x), P(X <= x)) come from its indices into them.
    steps: list[tuple[np.ndarray, np.ndarray]] | None = None
    values, cum, pmf = law.values, law.cum, law.pmf
    if values is not None and cum is not None and pmf is not None:
        indices = [np.minimum(np.searchsorted(values, b), values.size - 1) for b in blocks]
        if all(np.array_equal(values[i], b) for i, b in zip(indices, blocks, strict=True)):
            steps = [(cum[i] - pmf[i], cum[i]) for i in indices]
    if steps is None and kernels is not None and dist.kind in ("normal", "truncated_normal"):
        cuts = dist.cut_cdfs() if dist.kind == "truncated_normal" else None
        return kernels.ks_normal(xs, dist.loc, dist.scale, cuts), m
    d, start = 0.0, 0
    for k, block in enumerate(blocks):
        if steps is not None:
            f_lo, f_hi = steps[k]
        else:
            f_hi = f_lo = dist.cdf(block)
        i = np.arange(start + 1, start + block.size + 1, dtype=np.float64)
        d = max(d, float(np.max(i / m - f_hi)), float(np.max(f_lo - (i - 1.0) / m)))
        start += block.size
    return d, m


def run_tests(s: Summary, dist: Distribution, law: Law, level: float) -> dict[StatTest, StatTestResult]:
    """The three tests of one tensor's summary against its stored law, each at ``level``."""
    n = s.n
    tests: dict[StatTest, StatTestResult] = {}
    z_mean = (s.mean - law.mean) / math.sqrt(law.var / n)
    p = normal_sf2(z_mean)
    tests["mean"] = {"statistic": z_mean, "p_value": p, "ok": p >= level}
    # Mean squared deviation from the law's known centre: its variance is exactly
    # (kappa - 1) sigma^4 / n, with no small-sample correction for an estimated mean.
    ratio = (s.m2 / n + (s.mean - law.mean) ** 2) / law.var
    z_var = (ratio - 1.0) / math.sqrt((law.kurtosis - 1.0) / n)
    p = variance_p_value(ratio, n, law.kurtosis, law.sixth)
    tests["variance"] = {"statistic": z_var, "p_value": p, "ok": p >= level}
    d, m = ks_distance(s.sample, dist, law)
    p = kolmogorov_sf(math.sqrt(m) * d) if m else 1.0
    tests["ks"] = {"statistic": d, "p_value": p, "ok": p >= level, "n": m}
    return tests
