"""Does a weight file hold what its initializer promises? Streaming moments and exact tests.

Pure computation: no click, no rich, no file formats (values arrive as chunks from a
`~varscale_cli.readers.WeightFile`). docs/stats.md derives every test and constant; in short,
for each tensor with a known target distribution:

* **variance**: z = (s0^2 / sigma^2 - 1) / sqrt((kappa - 1) / N), where s0^2 is the mean
  squared deviation from the *known* centre and kappa the target's kurtosis; its p-value
  corrects for the skewness of s0^2 (a three-moment chi-square fit + Wilson-Hilferty);
* **mean**: z = (mean - mu) / (sigma / sqrt N);
* **ks**: Kolmogorov-Smirnov distance between a deterministic stratified subsample (at most
  `KS_MAX` values) and the target's CDF *after rounding to the stored dtype*;
* **bound** (exact, not statistical): no value beyond the sampler's bound rounded to the
  stored dtype; a constant target must be matched exactly; NaN or inf always fails.

The three statistical tests of every tested tensor form one Bonferroni family: each is run
at level alpha / (3 x number of tested tensors), so a correct file fails with probability at
most alpha. Tensors with fewer than `MIN_COUNT` elements are not tested (verdict
``too_small``); the exact checks still apply to them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ml_dtypes
import numpy as np

from .core.distributions import KINDS, Distribution, truncated_moments
from .errors import ReadError, SpecError
from .formats.base import LOGICAL_DTYPES, TensorInfo, WeightFile, loads_strict
from .sampling import compiled_kernels

__all__ = [
    "DEFAULT_ALPHA",
    "KS_MAX",
    "MIN_COUNT",
    "SCHEMA_VERSION",
    "TESTS",
    "FileReport",
    "Summary",
    "Target",
    "TensorReport",
    "check_file",
    "check_tensor",
    "kolmogorov_sf",
    "summarize",
    "target_for",
    "targets_from_provenance",
]

SCHEMA_VERSION = 1
DEFAULT_ALPHA = 1e-3
#: The statistical tests run on every tested tensor; the Bonferroni family counts them.
TESTS = ("mean", "variance", "ks")

#: Smallest tensor the statistical tests are run on (docs/stats.md, "Minimum N"). Reference
#: family: 200 tested tensors at alpha 1e-3, per-test level 1e-3 / 600. The hardest of the
#: five bugs the report must catch is a uniform sampled where an untruncated normal of the
#: same variance was configured: KS distance D = 0.05721, reached at x* = -0.804 sigma where
#: the uniform's CDF is F1 = 0.268. The KS test rejects with power 0.999 once
#: sqrt(N) D >= c + z(0.999) sqrt(F1 (1 - F1)), c = sqrt(ln(2 / level) / 2) = 2.6455:
#: N >= ((2.6455 + 3.0902 * 0.4429) / 0.05721)^2 = 4,923. The other bugs need fewer (the
#: uncorrected truncated normal 1,376; a doubled scale 241). Rounded up to 5,000; the issue's
#: 10,000 is then met with power > 0.999 for any realistic number of tensors.
MIN_COUNT = 5_000

#: KS subsample size cap: sorting and evaluating the CDF at 1e5 points costs ~30 ms; at this
#: size the test already detects a KS distance of 0.0087 at the reference level.
KS_MAX = 100_000

#: Seed of the stratified subsample's offsets ("varscale" in ASCII): fixed, so a report is a
#: deterministic function of the file.
SUBSAMPLE_SEED = 0x7661727363616C65

_ML_FLOATS = frozenset(
    np.dtype(getattr(ml_dtypes, n))
    for n in ("bfloat16", "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
              "float8_e8m0fnu", "float8_e4m3", "float8_e3m4", "float8_e4m3b11fnuz")
    if hasattr(ml_dtypes, n)
)
_SQRT2 = math.sqrt(2.0)


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype in _ML_FLOATS


def dtype_name(dtype: np.dtype) -> str:
    """``float32``, ``bfloat16``, ``int64``...: the name reports and provenance use."""
    return np.dtype(dtype).name


def _dtype_from_name(name: str) -> np.dtype | None:
    if name in LOGICAL_DTYPES:
        return LOGICAL_DTYPES[name]
    try:
        return np.dtype(name)
    except TypeError:
        return None


# --- targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What a tensor should hold.

    Attributes:
        distribution: the law the configured sampler draws from (for the uncorrected
            truncated normal: scale sqrt(s / n), actual std 0.8796 of that).
        target_std: the std the initializer documents, sqrt(scale / n).
        fan_in: fan-in used, if the initializer uses fans.
        fan_out: fan-out used, if the initializer uses fans.
        dtype: the dtype the tensor was meant to be stored as (None: unknown).
    """

    distribution: Distribution
    target_std: float
    fan_in: float | None = None
    fan_out: float | None = None
    dtype: np.dtype | None = None


def target_for(
    initializer: Any,
    shape: tuple[int, ...],
    dtype: Any = None,
    *,
    layout: str | None = None,
    in_axis: Any = None,
    out_axis: Any = None,
    batch_axis: Any = None,
) -> Target:
    """The `Target` of an `~varscale_cli.initializers.Initializer` applied to ``shape``.

    Args:
        initializer: an Initializer (``initializers.get("he_normal")``).
        shape: the full tensor shape.
        dtype: the stored dtype, if known.
        layout, in_axis, out_axis, batch_axis: the fan convention (`fans.compute_fans`).
    """
    fan_in, fan_out = initializer.fans(tuple(shape), layout, in_axis, out_axis, batch_axis)
    uses = getattr(initializer, "uses_fans", True)
    return Target(
        distribution=initializer.distribution(fan_in, fan_out),
        target_std=float(initializer.target_std(fan_in, fan_out)),
        fan_in=float(fan_in) if uses else None,
        fan_out=float(fan_out) if uses else None,
        dtype=None if dtype is None else np.dtype(dtype),
    )


def _number(value: Any, what: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return float(value)


def targets_from_provenance(metadata: Mapping[str, str]) -> dict[str, Target] | None:
    """Targets recorded by varscale's writers in a file's metadata (key ``varscale``).

    Returns:
        name -> Target for every tensor the provenance lists, or None if the file carries
        no varscale provenance.

    Raises:
        ReadError: the provenance is present but malformed.
    """
    raw = metadata.get("varscale")
    if raw is None:
        return None
    try:
        prov = loads_strict(raw)
        if not isinstance(prov, dict) or not isinstance(prov.get("tensors"), dict):
            raise ValueError('no "tensors" object')
        out: dict[str, Target] = {}
        for name, entry in prov["tensors"].items():
            try:
                out[name] = _provenance_target(entry)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValueError(f"tensor {name!r}: {exc}") from None
        return out
    except (ValueError, TypeError, RecursionError) as exc:
        raise ReadError(f"invalid varscale provenance metadata: {' '.join(str(exc).split())}") from None


def _provenance_target(entry: Any) -> Target:
    if not isinstance(entry, dict) or not isinstance(entry.get("distribution"), dict):
        raise ValueError('no "distribution" object')
    d = entry["distribution"]
    kind = d.get("kind")
    if kind not in KINDS:
        raise ValueError(f"distribution kind {kind!r} is not one of {', '.join(KINDS)}")
    scale = _number(d.get("scale", 0.0), "scale")
    loc = _number(d.get("loc", 0.0), "loc")
    cut = _number(d.get("cut", 2.0), "cut")
    assert scale is not None and loc is not None and cut is not None
    if scale < 0 or (kind != "constant" and scale == 0) or cut <= 0:
        raise ValueError(f"invalid distribution parameters scale={scale}, cut={cut}")
    dist = Distribution(kind, scale, loc, cut)
    target_std = _number(entry.get("target_std"), "target_std", optional=True)
    dtype = entry.get("dtype")
    return Target(
        distribution=dist,
        target_std=dist.std if target_std is None else target_std,
        fan_in=_number(entry.get("fan_in"), "fan_in", optional=True),
        fan_out=_number(entry.get("fan_out"), "fan_out", optional=True),
        dtype=_dtype_from_name(dtype) if isinstance(dtype, str) else None,
    )


# --- the target law after rounding to the stored dtype -----------------------------------------


@dataclass(frozen=True)
class _Law:
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


def _continuous_law(dist: Distribution) -> _Law:
    if dist.kind == "normal":
        sixth = 15.0  # E[Z^6] = 5!! = 15
    elif dist.kind == "uniform":
        sixth = 27.0 / 7.0  # E[U^6] / Var^3 = (a^6 / 7) / (a^2 / 3)^3
    else:
        c = dist.cut
        var, m4 = truncated_moments(c)
        # E[X^k] = (k - 1) E[X^(k-2)] - 2 c^(k-1) phi(c) / Z for N(0, 1) cut to [-c, c].
        phi = math.exp(-0.5 * c * c) / math.sqrt(2.0 * math.pi)
        m6 = 5.0 * m4 - 2.0 * c**5 * phi / math.erf(c / _SQRT2)
        sixth = m6 / var**3
    return _Law(dist.loc, dist.variance, dist.kurtosis, sixth)


@functools.lru_cache(maxsize=256)
def _law(dist: Distribution, dtype: np.dtype) -> _Law:
    """The exact law of ``round_to_dtype(X)``, X ~ dist.

    For dtypes of 1 or 2 bytes (bfloat16, float16, float8) every representable finite value v
    gets the probability of the interval that rounds to it (between the midpoints to its
    neighbours: round-to-nearest), so the tests compare like with like; ties and the float32
    intermediate of a float32-then-narrow sampler move less than 2^-24 of probability per cell.
    """
    if dtype.itemsize > 2 or not _is_float(dtype):
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
    pmf = np.diff(dist.cdf(edges))
    total = pmf.sum()
    if not total > 0:
        return _continuous_law(dist)
    pmf = pmf / total
    mean = float(pmf @ vals)
    c2 = (vals - mean) ** 2
    var = float(pmf @ c2)
    if var <= 0:
        return _Law(mean, 0.0, math.nan, math.nan, vals, np.minimum(np.cumsum(pmf), 1.0), pmf)
    return _Law(
        mean,
        var,
        float(pmf @ (c2 * c2)) / var**2,
        float(pmf @ (c2 * c2 * c2)) / var**3,
        vals,
        np.minimum(np.cumsum(pmf), 1.0),
        pmf,
    )


def _round_to(x: float, dtype: np.dtype) -> float:
    """``x`` rounded to ``dtype`` (to nearest), as a float; +-inf if out of its range."""
    with np.errstate(all="ignore"):
        r = float(np.array(x, dtype=np.float64).astype(dtype).astype(np.float64))
    if math.isnan(r):  # float8 "fn" types have no inf: overflow gives NaN
        return math.copysign(math.inf, x)
    return r


def _bounds(dist: Distribution, dtype: np.dtype) -> tuple[float, float, float | None]:
    """(lowest, highest value the sampler can store, half-width reported as the bound).

    A sampler computing in float32 keeps |x - loc| <= float32(bound) (clipping is exact), adds
    loc in float32, then rounds once more to the stored dtype; rounding is monotonic, so the
    extremes are the rounded extremes. A float64 computation gives round(loc +- bound). The
    widest of both routes is allowed, so either kind of sampler passes.
    """
    b = dist.bound
    if b is None:
        return -math.inf, math.inf, None
    his = [_round_to(dist.loc + b, dtype)]
    los = [_round_to(dist.loc - b, dtype)]
    if dtype.itemsize <= 4:
        b32, l32 = np.float32(b), np.float32(dist.loc)
        with np.errstate(all="ignore"):
            his.append(_round_to(float(l32 + b32), dtype))
            los.append(_round_to(float(l32 - b32), dtype))
    lo, hi = min(los), max(his)
    centre = _round_to(dist.loc, dtype)
    return lo, hi, max(hi - centre, centre - lo)


# --- streaming summary -----------------------------------------------------------------------


@dataclass
class Summary:
    """Moments of the finite values and counts, accumulated chunk by chunk.

    ``m2``, ``m3``, ``m4`` are sums of powers of deviations from ``mean`` (merged across
    chunks with Chan's / Pebay's pairwise formulas, each chunk summed in float64), so
    accuracy does not degrade with the number of elements. ``below``/``above`` count finite
    values outside [lo, hi]. ``sample`` is the deterministic stratified subsample.
    """

    count: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    zeros: int = 0
    nans: int = 0
    infs: int = 0
    below: int = 0
    above: int = 0
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def std(self) -> float:
        """Population std (ddof 0) of the finite values; NaN if there are none."""
        return math.sqrt(self.m2 / self.n) if self.n else math.nan

    @property
    def kurtosis(self) -> float:
        """Sample kurtosis m4 / m2^2 (3 for a normal); NaN if undefined."""
        return self.n * self.m4 / self.m2**2 if self.n and self.m2 > 0 else math.nan

    def merge(self, n: int, mean: float, m2: float, m3: float, m4: float) -> None:
        """Fold in the moments of ``n`` more values (Pebay 2008, eqs. 2.1 and 3.1)."""
        if n == 0:
            return
        na, nb = float(self.n), float(n)
        if self.n == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = n, mean, m2, m3, m4
            return
        tot = na + nb
        d = mean - self.mean
        self.m4 += (
            m4
            + d**4 * na * nb * (na * na - na * nb + nb * nb) / tot**3
            + 6.0 * d * d * (na * na * m2 + nb * nb * self.m2) / tot**2
            + 4.0 * d * (na * m3 - nb * self.m3) / tot
        )
        self.m3 += m3 + d**3 * na * nb * (na - nb) / tot**2 + 3.0 * d * (na * m2 - nb * self.m2) / tot
        self.m2 += m2 + d * d * na * nb / tot
        self.mean += d * nb / tot
        self.n += n


def _subsample_positions(count: int, size: int) -> np.ndarray:
    """One position per stratum of k = ceil(count / size) consecutive elements, at a
    pseudo-random offset: every element equally likely, no aliasing with row lengths (a plain
    every-k-th sample of a (rows, k) tensor would see one column only)."""
    if size <= 0 or count <= 0:
        return np.empty(0, dtype=np.int64)
    k = -(-count // size)
    m = -(-count // k)
    rng = np.random.Generator(np.random.PCG64(SUBSAMPLE_SEED))
    pos = np.arange(m, dtype=np.int64) * k + rng.integers(0, k, size=m, dtype=np.int64)
    return pos[pos < count]


def summarize(
    chunks: Iterable[np.ndarray],
    dtype: Any = None,
    *,
    count: int | None = None,
    lo: float = -math.inf,
    hi: float = math.inf,
    sample_size: int = KS_MAX,
) -> Summary:
    """One pass over a tensor's chunks: moments, extremes, special values, bound counts.

    Memory is one chunk in float64 plus the subsample (at most ``sample_size`` values).

    Args:
        chunks: 1-D arrays in C order (any real dtype; values are widened to float64, exactly).
        dtype: the stored dtype (informational; the chunks carry their own).
        count: total number of elements, needed to draw the subsample (None: no subsample).
        lo, hi: finite values outside [lo, hi] are counted in ``below`` / ``above``.
        sample_size: subsample size cap.
    """
    del dtype  # the chunks carry their dtype; kept for a uniform call signature
    s = Summary()
    positions = _subsample_positions(count or 0, sample_size)
    picked: list[np.ndarray] = []
    seen = 0
    kernels = compiled_kernels()
    for chunk in chunks:
        raw = np.asarray(chunk).reshape(-1)
        start, seen = seen, seen + raw.size
        if positions.size:
            i0, i1 = np.searchsorted(positions, (start, seen))
            if i1 > i0:
                picked.append(raw[positions[i0:i1] - start].astype(np.float64))
        if raw.size == 0:
            continue
        if kernels is not None and (raw.dtype in (np.float32, np.float16) or raw.dtype.name in LOGICAL_DTYPES):
            # float32, float16, bfloat16, float8: exact in float32, one fused C pass pair.
            r = kernels.moments_f32(np.ascontiguousarray(raw, dtype=np.float32), lo, hi)
            n_fin = int(r[0])
            s.count += raw.size
            s.nans += int(r[8])
            s.infs += int(r[9])
            if n_fin:
                s.zeros += int(r[7])
                s.below += int(r[10])
                s.above += int(r[11])
                s.min = min(s.min, float(r[5]))
                s.max = max(s.max, float(r[6]))
                s.merge(n_fin, float(r[1]), float(r[2]), float(r[3]), float(r[4]))
            continue
        with np.errstate(all="ignore"):
            x = raw.astype(np.float64)
        total = float(x.sum())
        if math.isfinite(total):  # a finite sum means every value is finite: skip the mask
            fin = x
        else:
            mask = np.isfinite(x)
            fin = x[mask]
            nan = int(np.count_nonzero(np.isnan(x)))
            s.nans += nan
            s.infs += x.size - fin.size - nan
            total = float(fin.sum())
        s.count += x.size
        if fin.size == 0:
            continue
        s.zeros += int(np.count_nonzero(fin == 0.0))
        if lo > -math.inf:
            s.below += int(np.count_nonzero(fin < lo))
        if hi < math.inf:
            s.above += int(np.count_nonzero(fin > hi))
        s.min = min(s.min, float(fin.min()))
        s.max = max(s.max, float(fin.max()))
        mean = total / fin.size
        d = fin - mean
        d2 = d * d
        s.merge(fin.size, mean, float(d2.sum()), float((d2 * d).sum()), float((d2 * d2).sum()))
    s.sample = np.concatenate(picked) if picked else np.empty(0)
    return s


# --- tests -----------------------------------------------------------------------------------


def normal_sf2(z: float) -> float:
    """Two-sided normal tail P(|Z| >= |z|)."""
    return math.erfc(abs(z) / _SQRT2)


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


def _ks(sample: np.ndarray, dist: Distribution, law: _Law) -> tuple[float, int]:
    """(D, m): KS distance between the sample's ECDF and the stored law's CDF, sample size."""
    xs = np.sort(sample[np.isfinite(sample)])
    m = xs.size
    if m == 0:
        return math.nan, 0
    f_hi = f_lo = None
    if law.values is not None and law.cum is not None and law.pmf is not None:
        idx = np.minimum(np.searchsorted(law.values, xs), law.values.size - 1)
        if np.array_equal(law.values[idx], xs):
            f_hi = law.cum[idx]  # P(X <= x)
            f_lo = f_hi - law.pmf[idx]  # P(X < x)
    if f_hi is None or f_lo is None:
        f_hi = f_lo = dist.cdf(xs)
    i = np.arange(1, m + 1, dtype=np.float64)
    d = max(float(np.max(i / m - f_hi)), float(np.max(f_lo - (i - 1.0) / m)))
    return max(d, 0.0), m


def _run_tests(s: Summary, dist: Distribution, law: _Law, level: float) -> dict[str, dict[str, Any]]:
    n = s.n
    tests: dict[str, dict[str, Any]] = {}
    z_mean = (s.mean - law.mean) / math.sqrt(law.var / n)
    p = normal_sf2(z_mean)
    tests["mean"] = {"statistic": z_mean, "p_value": p, "ok": p >= level}
    # Mean squared deviation from the law's known centre: its variance is exactly
    # (kappa - 1) sigma^4 / n, with no small-sample correction for an estimated mean.
    ratio = (s.m2 / n + (s.mean - law.mean) ** 2) / law.var
    z_var = (ratio - 1.0) / math.sqrt((law.kurtosis - 1.0) / n)
    p = variance_p_value(ratio, n, law.kurtosis, law.sixth)
    tests["variance"] = {"statistic": z_var, "p_value": p, "ok": p >= level}
    d, m = _ks(s.sample, dist, law)
    p = kolmogorov_sf(math.sqrt(m) * d) if m else 1.0
    tests["ks"] = {"statistic": d, "p_value": p, "ok": p >= level, "n": m}
    return tests


# --- reports ---------------------------------------------------------------------------------


def _json_float(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class TensorReport:
    """Everything `varscale stats` says about one tensor (see `to_json` for the schema)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    count: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    zeros: int = 0
    nans: int = 0
    infs: int = 0
    fan_in: float | None = None
    fan_out: float | None = None
    target_std: float | None = None
    expected_std: float | None = None
    bound: float | None = None
    out_of_bound: int = 0
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    verdict: str = "no_target"
    ok: bool = True
    note: str = ""
    kurtosis: float | None = None
    test_level: float | None = None
    distribution: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """The tensor's JSON object; non-finite numbers become null (strict JSON)."""

        def fan(x: float | None) -> float | int | None:
            return int(x) if x is not None and float(x).is_integer() else _json_float(x)

        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "count": self.count,
            "mean": _json_float(self.mean),
            "std": _json_float(self.std),
            "min": _json_float(self.min),
            "max": _json_float(self.max),
            "kurtosis": _json_float(self.kurtosis),
            "zeros": self.zeros,
            "nans": self.nans,
            "infs": self.infs,
            "fan_in": fan(self.fan_in),
            "fan_out": fan(self.fan_out),
            "target_std": _json_float(self.target_std),
            "expected_std": _json_float(self.expected_std),
            "distribution": self.distribution,
            "bound": _json_float(self.bound),
            "out_of_bound": self.out_of_bound,
            "test_level": _json_float(self.test_level),
            "tests": {
                k: {kk: (_json_float(vv) if isinstance(vv, float) else vv) for kk, vv in v.items()}
                for k, v in self.tests.items()
            },
            "verdict": self.verdict,
            "ok": self.ok,
            "note": self.note,
        }


@dataclass
class FileReport:
    """The report on a whole file: per-tensor reports and the overall verdict.

    Attributes:
        tensors: one report per tensor, in file order.
        ok: every tensor ok and no target names a tensor the file lacks.
        alpha: family-wise false-failure probability of a correct file.
        family_size: number of statistical tests in the Bonferroni family.
        missing: tensors with a target that the file does not hold.
        path: the file checked.
    """

    tensors: list[TensorReport]
    ok: bool
    alpha: float
    family_size: int = 1
    missing: list[str] = field(default_factory=list)
    path: str | None = None

    @property
    def test_level(self) -> float:
        """Level of each statistical test: alpha / family_size (Bonferroni)."""
        return self.alpha / self.family_size

    def counts(self) -> dict[str, int]:
        """Number of tensors per verdict."""
        out = {"pass": 0, "fail": 0, "too_small": 0, "no_target": 0}
        for t in self.tensors:
            out[t.verdict] = out.get(t.verdict, 0) + 1
        return out

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` document (schema in docs/stats.md)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "ok": self.ok,
            "path": self.path,
            "alpha": self.alpha,
            "family_size": self.family_size,
            "test_level": self.test_level,
            "min_count": MIN_COUNT,
            "counts": self.counts(),
            "missing": list(self.missing),
            "tensors": [t.to_json() for t in self.tensors],
        }


def _check_alpha(alpha: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0.0 < alpha < 1.0:
        raise SpecError(f"alpha must be a number strictly between 0 and 1, got {alpha!r}")


def _will_test(count: int, dtype: np.dtype, target: Target | None) -> bool:
    return (
        target is not None
        and target.distribution.kind != "constant"
        and _is_float(np.dtype(dtype))
        and count >= MIN_COUNT
    )


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def check_tensor(
    name: str,
    shape: tuple[int, ...],
    dtype: Any,
    chunks_factory: Callable[[], Iterable[np.ndarray]],
    target: Target | None,
    *,
    n_tests: int = len(TESTS),
    alpha: float = DEFAULT_ALPHA,
) -> TensorReport:
    """Read one tensor once and judge it against ``target``.

    Args:
        name: tensor name (for the report).
        shape: its shape.
        dtype: its stored dtype.
        chunks_factory: returns an iterable of its values as 1-D chunks (called once).
        target: what it should hold, or None (moments only).
        n_tests: size of the Bonferroni family this tensor's tests belong to; each test runs
            at level ``alpha / n_tests``.
        alpha: family-wise level.

    Returns:
        The tensor's report; ``ok`` is False only for verdict ``fail``.
    """
    _check_alpha(alpha)
    if isinstance(n_tests, bool) or not isinstance(n_tests, int) or n_tests < 1:
        raise ValueError(f"n_tests must be a positive integer, got {n_tests!r}")
    shape = tuple(int(d) for d in shape)
    dtype = np.dtype(dtype)
    count = math.prod(shape)
    rep = TensorReport(name=name, shape=shape, dtype=dtype_name(dtype), count=count)
    if target is not None:
        dist = target.distribution
        rep.fan_in, rep.fan_out, rep.target_std = target.fan_in, target.fan_out, target.target_std
        rep.distribution = dist.to_json()
    if dtype.kind == "c":
        rep.verdict, rep.ok = ("fail", False) if target is not None else ("no_target", True)
        rep.note = "complex values are not analysed"
        return rep

    problems: list[str] = []
    lo, hi, law = -math.inf, math.inf, None
    tested = False
    if target is not None:
        dist = target.distribution
        if target.dtype is not None and np.dtype(target.dtype) != dtype:
            problems.append(f"stored as {dtype_name(dtype)}, not {dtype_name(target.dtype)}")
        if dist.kind == "constant":
            lo = hi = _round_to(dist.loc, dtype) if _is_float(dtype) else dist.loc
            rep.bound, rep.expected_std = 0.0, 0.0
        elif not _is_float(dtype):
            problems.append(f"a {dtype_name(dtype)} tensor cannot hold samples of a {dist.kind} law")
        else:
            law = _law(dist, dtype)
            lo, hi, rep.bound = _bounds(dist, dtype)
            rep.expected_std = law.std
            tested = count >= MIN_COUNT and law.var > 0
            rep.test_level = alpha / n_tests if tested else None

    s = summarize(chunks_factory(), dtype, count=count, lo=lo, hi=hi, sample_size=KS_MAX if tested else 0)
    if s.n:
        rep.mean, rep.std, rep.min, rep.max = s.mean, s.std, s.min, s.max
        rep.kurtosis = s.kurtosis
    rep.zeros, rep.nans, rep.infs = s.zeros, s.nans, s.infs
    rep.out_of_bound = s.below + s.above

    if target is None:
        rep.verdict, rep.ok = "no_target", True
        extra = f"; {s.nans} NaN, {s.infs} inf" if s.nans or s.infs else ""
        rep.note = "no target known: moments only" + extra
        return rep

    if s.nans or s.infs:
        problems.append(f"{s.nans} NaN and {s.infs} inf values")
    if rep.out_of_bound:
        if target.distribution.kind == "constant":
            problems.append(f"{rep.out_of_bound} values differ from {_fmt(lo)}")
        else:
            problems.append(f"{rep.out_of_bound} values beyond the bound [{_fmt(lo)}, {_fmt(hi)}]")
    if tested and law is not None and s.n >= MIN_COUNT:
        assert rep.test_level is not None
        rep.tests = _run_tests(s, target.distribution, law, rep.test_level)
        for key, t in rep.tests.items():
            if not t["ok"]:
                what = "D" if key == "ks" else "z"
                problems.append(f"{key} test {what}={_fmt(t['statistic'])} (p={t['p_value']:.3g})")
    if problems:
        rep.verdict, rep.ok = "fail", False
        rep.note = "; ".join(problems)
    elif target.distribution.kind == "constant":
        rep.verdict, rep.ok = "pass", True
        rep.note = "every value equals the constant"
    elif not tested:
        rep.verdict, rep.ok = "too_small", True
        why = (
            "the stored dtype rounds the law to a single value"
            if law is not None and law.var <= 0
            else f"{count} elements < {MIN_COUNT}"
        )
        rep.note = f"{why}: not tested statistically; bound and NaN checks only"
    else:
        rep.verdict, rep.ok = "pass", True
    return rep


#: Elements per read chunk for the statistics: 256 Ki values are 2 MiB once widened to
#: float64, so the dozen passes of `summarize` run in cache; 1 Mi-element chunks were 1.5x
#: slower and raised peak memory by ~35 MB on a 1 GB checkpoint.
STATS_CHUNK_ELEMS = 1 << 18


def check_file(
    wf: WeightFile,
    targets: Mapping[str, Target | None],
    *,
    alpha: float = DEFAULT_ALPHA,
    chunk_elems: int | None = STATS_CHUNK_ELEMS,
    progress: Callable[[TensorInfo], None] | None = None,
    workers: int = 1,
) -> FileReport:
    """Check every tensor of ``wf``; tensors without an entry in ``targets`` get moments only.

    The Bonferroni family is every statistical test of every tensor that will be tested
    (has a non-constant target, a floating dtype and at least `MIN_COUNT` elements), so a
    correct file fails with probability at most ``alpha``.

    Args:
        wf: an open weight file.
        targets: tensor name -> target (None or absent: unknown).
        alpha: family-wise level.
        chunk_elems: chunk size for reading (None: the reader's default).
        progress: called with each tensor's info before it is read.
        workers: tensors checked in parallel threads, for readers that declare
            ``thread_safe`` (positional reads); numpy releases the GIL in the reductions.
    """
    _check_alpha(alpha)
    infos = wf.tensors()
    n_tested = sum(_will_test(i.count, i.dtype, targets.get(i.name)) for i in infos)
    family = max(1, n_tested * len(TESTS))

    def one(info: TensorInfo) -> TensorReport:
        if progress is not None:
            progress(info)
        if chunk_elems is None:
            factory = functools.partial(wf.iter_chunks, info.name)
        else:
            factory = functools.partial(wf.iter_chunks, info.name, chunk_elems)
        return check_tensor(
            info.name, info.shape, info.dtype, factory, targets.get(info.name),
            n_tests=family, alpha=alpha,
        )

    if workers > 1 and getattr(wf, "thread_safe", False):
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers, thread_name_prefix="varscale-stats") as pool:
            reports = list(pool.map(one, infos))
    else:
        reports = [one(info) for info in infos]
    names = {i.name for i in infos}
    missing = sorted(n for n, t in targets.items() if t is not None and n not in names)
    return FileReport(
        tensors=reports,
        ok=all(r.ok for r in reports) and not missing,
        alpha=float(alpha),
        family_size=family,
        missing=missing,
        path=str(wf.path),
    )
