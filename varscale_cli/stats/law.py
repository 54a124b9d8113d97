"""The target law after rounding to the stored dtype: its moments, CDF and extreme values.

A bfloat16 or float8 tensor cannot hold the continuous law its sampler draws from, only its
rounding to the representable values; the tests compare the file with that rounded law, and
the bound check with the sampler's bound rounded the same way.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..core import rounding as exact_rounding
from ..core.distributions import Distribution, truncated_moments
from ..core.dtypes import is_float
from ..core.rounding import SATURATING

__all__ = ["Law", "round_to", "stored_bounds", "stored_law"]

SQRT2 = math.sqrt(2.0)


@dataclass(frozen=True)
class Law:
    """Moments (about the mean) and CDF of the stored values' exact law.

    ``values``/``cum``/``pmf`` describe the law after rounding to a dtype of at most 2 bytes
    (every representable value, sorted, with its probability); None means the continuous law
    is used (float32/float64, where rounding moves the CDF by less than 1e-7).
    """

    mean: float
    var: float
    kurtosis: float
    sixth: float  # E[(X - mean)^6] / var^3
    values: np.ndarray | None = None
    cum: np.ndarray | None = None
    pmf: np.ndarray | None = None

    @property
    def std(self) -> float:
        """Standard deviation of the law."""
        return math.sqrt(self.var)


def _continuous_law(dist: Distribution) -> Law:
    if dist.kind == "normal":
        sixth = 15.0  # E[Z^6] = 5!! = 15
    elif dist.kind == "uniform":
        sixth = 27.0 / 7.0  # E[U^6] / Var^3 = (a^6 / 7) / (a^2 / 3)^3
    elif dist.lower is not None or dist.cut != 2.0:
        _, var, _, mu6 = dist.standard_moments()  # any other truncation, core.truncnorm
        sixth = mu6 / (var * var * var)
    else:
        c = dist.cut
        var, m4 = truncated_moments(c)
        # E[X^k] = (k - 1) E[X^(k-2)] - 2 c^(k-1) phi(c) / Z for N(0, 1) cut to [-c, c].
        phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
        m6 = 5.0 * m4 - 2.0 * c**5 * phi / math.erf(c / SQRT2)
        sixth = m6 / var**3
    return Law(dist.mean, dist.variance, dist.kurtosis, sixth)


@functools.lru_cache(maxsize=256)
def stored_law(dist: Distribution, dtype: np.dtype) -> Law:
    """The exact law of ``round_to_dtype(X)``, X ~ dist.

    For dtypes of 1 or 2 bytes (bfloat16, float16, float8) every representable finite value v
    gets the probability of the interval that rounds to it (between the midpoints to its
    neighbours: round-to-nearest), so the tests compare like with like; ties and the float32
    intermediate of a float32-then-narrow sampler move less than 2^-24 of probability per cell.
    """
    if dtype.itemsize > 2 or not is_float(dtype):
        return _continuous_law(dist)
    bits = np.arange(1 << (8 * dtype.itemsize), dtype=np.uint16 if dtype.itemsize == 2 else np.uint8)
    with np.errstate(all="ignore"):
        vals = bits.view(dtype).astype(np.float64)
    vals = np.unique(vals[np.isfinite(vals)])  # sorted; +0 and -0 merge
    if vals.size < 2:
        return _continuous_law(dist)
    edges = np.concatenate((
        [vals[0] - 0.5 * (vals[1] - vals[0])],
        0.5 * (vals[:-1] + vals[1:]),
        [vals[-1] + 0.5 * (vals[-1] - vals[-2])],  # beyond: overflows to inf / NaN
    ))
    if dtype.name in SATURATING:  # the sampler clamps: the tails land on the extreme values
        edges[0], edges[-1] = -np.inf, np.inf
    pmf = np.diff(dist.cdf(edges))
    total = pmf.sum()
    if not total > 0:
        return _continuous_law(dist)
    pmf = pmf / total
    mean = float(pmf @ vals)
    c2 = (vals - mean) ** 2
    var = float(pmf @ c2)
    if var <= 0:
        return Law(mean, 0.0, math.nan, math.nan, vals, np.minimum(np.cumsum(pmf), 1.0), pmf)
    return Law(
        mean,
        var,
        float(pmf @ (c2 * c2)) / var**2,
        float(pmf @ (c2 * c2 * c2)) / var**3,
        vals,
        np.minimum(np.cumsum(pmf), 1.0),
        pmf,
    )


def round_to(x: float, dtype: np.dtype) -> float:
    """``x`` rounded to ``dtype`` (to nearest), as a float; +-inf if out of its range, except
    for the float8 types the sampler saturates (`rounding.SATURATING`): +-max there.

    The sampler's own one-step rounding where it knows the format (a library cast of a float64
    scalar to bfloat16 rounds twice in ml_dtypes 0.5, once in 0.7), else the library's cast.
    """
    name = np.dtype(dtype).name
    limit = SATURATING.get(name)
    if limit is not None:
        x = min(max(x, -limit), limit)
    if name in exact_rounding.FORMATS or name in ("float32", "float64"):
        r = exact_rounding.round_to(x, name)
    else:
        with np.errstate(all="ignore"):
            r = float(np.array(x, dtype=np.float64).astype(dtype).astype(np.float64))
    if math.isnan(r):  # float8 "fn" types have no inf: overflow gives NaN
        return math.copysign(math.inf, x)
    return r


def stored_bounds(dist: Distribution, dtype: np.dtype) -> tuple[float, float, float | None]:
    """(lowest, highest value the sampler can store, half-width reported as the bound).

    A sampler computing in float32 keeps |x - loc| <= float32(bound) (clipping is exact), adds
    loc in float32, then rounds once more to the stored dtype; rounding is monotonic, so the
    extremes are the rounded extremes. A float64 computation gives round(loc +- bound). The
    widest of both routes is allowed, so either kind of sampler passes.
    """
    b = dist.bound
    if b is None:
        return -math.inf, math.inf, None
    # Below and above loc, the sampler clips at -lower * scale and cut * scale (the same b on
    # both sides unless the truncation is asymmetric).
    b_lo, b_hi = b, b
    if dist.kind == "truncated_normal":
        b_lo, b_hi = -dist.lower_cut * dist.scale, dist.cut * dist.scale
    his = [round_to(dist.loc + b_hi, dtype)]
    los = [round_to(dist.loc - b_lo, dtype)]
    if dtype.itemsize <= 4:
        with np.errstate(all="ignore"):  # a recorded bound beyond float32 becomes inf
            l32 = np.float32(dist.loc)
            his.append(round_to(float(l32 + np.float32(b_hi)), dtype))
            los.append(round_to(float(l32 - np.float32(b_lo)), dtype))
    lo, hi = min(los), max(his)
    centre = round_to(dist.loc, dtype)
    return lo, hi, max(hi - centre, centre - lo)
