"""Complex tensors judged on modulus and phase: the three tests of a circular law.

Every complex law varscale samples (`~varscale_cli.core.distributions.COMPLEX_KINDS`) is
circular: the phase is uniform and independent of the modulus, whose law is known exactly.
With V = E|z|^2 and n values, the report's three tests (the same Bonferroni slots as a real
tensor's ``mean``, ``variance`` and ``ks``) are:

* ``mean``: Re and Im of a circular law are uncorrelated with variance V / 2 each, so
  T = 2 n |mean(z)|^2 / V is chi-square with 2 degrees of freedom: p = exp(-T / 2) (exact for
  a normal law, the central limit otherwise). The statistic reported is z = sqrt(T).
* ``variance``: the mean of Y = |z|^2 / V has mean 1 and the exact moments E Y^2, E Y^3 of the
  modulus law (`modulus_moments`), tested like a real tensor's mean squared deviation
  (`tests.variance_p_value`).
* ``ks``: two Kolmogorov-Smirnov tests on the subsample, the modulus against its CDF
  (`Distribution.cdf`) and the phase arg(z) / 2 pi against U(-1/2, 1/2), each at half the
  level; the reported p-value is 2 min(p_modulus, p_phase) (Bonferroni), the statistic the
  larger D, and both D are listed.

The bound check is exact up to rounding: |z| <= bound (1 + 4 eps) of the parts' dtype (each
part rounds once to nearest, moving |z| by at most one relative eps; four leaves room for the
float64 products before it and for computing |z| here).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..core.distributions import Distribution, modulus_moments
from .summary import KS_MAX, Subsample
from .tests import StatTest, StatTestResult, kolmogorov_sf, variance_p_value

__all__ = ["ComplexSummary", "complex_tests", "summarize_complex"]


class ComplexSummary:
    """One streaming pass over a complex tensor: counts, modulus sums and a subsample."""

    def __init__(self) -> None:
        self.count = 0
        self.n = 0  # finite values
        self.sum = 0j
        self.sum2 = 0.0  # sum |z|^2
        self.sum4 = 0.0  # sum |z|^4
        self.min = math.inf  # of |z|
        self.max = -math.inf
        self.zeros = 0
        self.nans = 0
        self.infs = 0
        self.above = 0
        self.constant_misses = 0
        self.sample = np.empty(0, dtype=np.complex128)

    @property
    def mean_modulus(self) -> float:
        """|mean(z)|."""
        return abs(self.sum / self.n) if self.n else math.nan

    @property
    def rms(self) -> float:
        """sqrt(mean |z|^2): compared with the law's sqrt(E|z|^2)."""
        return math.sqrt(self.sum2 / self.n) if self.n else math.nan

    @property
    def kurtosis(self) -> float:
        """mean |z|^4 / (mean |z|^2)^2."""
        return self.n * self.sum4 / (self.sum2 * self.sum2) if self.n and self.sum2 > 0 else math.nan


def summarize_complex(
    chunks: Iterable[np.ndarray],
    count: int,
    bound: float | None,
    constant: complex | None = None,
    sample_size: int = KS_MAX,
) -> ComplexSummary:
    """Read ``chunks`` (1-D complex arrays in C order) once, one chunk in memory.

    Args:
        count: total number of elements (for the stratified subsample).
        bound: finite values with |z| above it are counted in ``above`` (None: unbounded).
        constant: for a constant target, values that differ from it are counted.
        sample_size: subsample size cap (0: no subsample).
    """
    s = ComplexSummary()
    sample = Subsample(count, sample_size, np.complex128)
    for chunk in chunks:
        raw = np.asarray(chunk).reshape(-1)
        sample.take(raw)
        if raw.size == 0:
            continue
        z = raw.astype(np.complex128)
        s.count += z.size
        nan = np.isnan(z.real) | np.isnan(z.imag)
        fin = np.isfinite(z.real) & np.isfinite(z.imag)
        s.nans += int(np.count_nonzero(nan))
        s.infs += int(z.size - np.count_nonzero(fin) - np.count_nonzero(nan))
        z = z[fin]
        if z.size == 0:
            continue
        if constant is not None:
            s.constant_misses += int(np.count_nonzero(z != constant))
        r2 = z.real * z.real + z.imag * z.imag
        r = np.abs(z)
        s.n += z.size
        s.sum += complex(z.sum())
        s.sum2 += float(r2.sum())
        s.sum4 += float((r2 * r2).sum())
        s.min = min(s.min, float(r.min()))
        s.max = max(s.max, float(r.max()))
        s.zeros += int(np.count_nonzero(r == 0.0))
        if bound is not None:
            s.above += int(np.count_nonzero(r > bound))
    picked = sample.values()
    if picked.size:
        s.sample = picked[np.isfinite(picked.real) & np.isfinite(picked.imag)]
    return s


def tolerant_bound(dist: Distribution, dtype: np.dtype) -> float | None:
    """The law's bound on |z|, widened by the rounding of the stored parts (module docstring)."""
    if dist.bound is None:
        return None
    eps = float(np.finfo(np.dtype(dtype).type(0).real.dtype).eps)
    return dist.bound * (1.0 + 4.0 * eps)


def _ks(xs: np.ndarray, cdf: np.ndarray) -> float:
    m = xs.size
    i = np.arange(1, m + 1, dtype=np.float64)
    return max(float(np.max(i / m - cdf)), float(np.max(cdf - (i - 1.0) / m)), 0.0)


def complex_tests(
    s: ComplexSummary, dist: Distribution, level: float
) -> dict[StatTest, StatTestResult]:
    """The three tests of the module docstring, each at ``level``."""
    n = s.n
    var = dist.variance
    m2, m4, m6 = modulus_moments(dist.kind, dist.cut)
    tests: dict[StatTest, StatTestResult] = {}
    t = 2.0 * n * (s.mean_modulus * s.mean_modulus) / var
    p = math.exp(-t / 2.0)
    tests["mean"] = {"statistic": math.sqrt(t), "p_value": p, "ok": p >= level}
    ratio = s.sum2 / n / var
    kappa, sixth = m4 / (m2 * m2), m6 / (m2 * m2 * m2)
    z_var = (ratio - 1.0) / math.sqrt((kappa - 1.0) / n)
    p = variance_p_value(ratio, n, kappa, sixth)
    tests["variance"] = {"statistic": z_var, "p_value": p, "ok": p >= level}
    m = s.sample.size
    if m == 0:
        tests["ks"] = {"statistic": math.nan, "p_value": 1.0, "ok": True, "n": 0}
        return tests
    modulus = np.sort(np.abs(s.sample))
    d_mod = _ks(modulus, dist.cdf(modulus))
    phase = np.sort(np.angle(s.sample) / (2.0 * math.pi))  # in [-1/2, 1/2]
    d_phase = _ks(phase, phase + 0.5)
    p_mod = kolmogorov_sf(math.sqrt(m) * d_mod)
    p_phase = kolmogorov_sf(math.sqrt(m) * d_phase)
    p = min(1.0, 2.0 * min(p_mod, p_phase))
    tests["ks"] = {
        "statistic": max(d_mod, d_phase), "p_value": p, "ok": p >= level, "n": m,
        "modulus_statistic": d_mod, "phase_statistic": d_phase,
    }
    return tests
