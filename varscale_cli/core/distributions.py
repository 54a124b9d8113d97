"""What a sampler produces, described exactly: moments, bounds and the CDF.

An initializer resolved for one tensor (fans known, dtype known) is summarised by a
`Distribution`. The sampler draws from it; `varscale stats` tests a file against it. All
moments here are closed forms, so tests and reports never rely on a sampled estimate.

Truncated normal facts used below, for N(0, 1) cut to [-c, c] with Z = P(|X| <= c) = erf(c/sqrt 2)
and phi the standard normal density:
    Var    = 1 - 2 c phi(c) / Z
    E[X^4] = 3 - 2 phi(c) (c^3 + 3 c) / Z
For c = 2: Var = 0.77374130..., so its std is C = 0.87962566103423978 (the constant TF and Keras
divide by; `core.stream.coefficients.TRUNC_STD_2`), and the kurtosis E[X^4] / Var^2 = 2.36557...

The complex laws (complex64 / complex128 tensors, JAX's complex variance scaling) are circular:
a uniform phase and a modulus law, so ``variance`` is E|z|^2, ``bound`` the largest modulus and
`cdf` the CDF of the modulus |z|. With R = |z| / scale:
    complex_normal            real and imaginary parts N(0, scale^2): R^2 / 2 ~ Exp(1)
    complex_uniform           uniform on the disk of radius scale: R^2 ~ U(0, 1)
    complex_truncated_normal  JAX's modulus-truncated normal: R^2 ~ Exp(1) cut at cut^2
For X ~ Exp(1) cut at a (Z = 1 - e^-a): E[X] = (1 - (1 + a) e^-a) / Z and
E[X^2] = (2 - (a^2 + 2 a + 2) e^-a) / Z (integrate x^k e^-x by parts).

``orthogonal`` (scale = gain, a rows x cols matrix, m = max(rows, cols)): every entry of a
Haar-random m x k matrix with orthonormal columns is gain times a coordinate of a uniform unit
vector in R^m, with density proportional to (1 - x^2)^((m - 3) / 2) on [-1, 1]: E x^2 = 1 / m,
E x^4 = 3 / (m (m + 2)), E x^6 = 15 / (m (m + 2) (m + 4)). The entries are not independent (each
column has norm exactly 1), which `varscale stats` checks apart (orthogonality).

Every other truncation (a cut other than 2, or an asymmetric [lower, cut]) takes its moments
from `core.truncnorm`, in the project's own arithmetic, since they are recorded in outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from . import truncnorm

#: Largest |loc|, scale, cut and |lower| of a law varscale samples, records and checks.
#: `stats` computes the law's moments up to the sixth power of (|loc| + cut * scale) in
#: float64, whose largest finite value is about 1.8e308: (1e50)**6 = 1e300 leaves room, while
#: 1e308 overflows at the square. Every initializer varscale writes records values near 1
#: (Keras and torch defaults). The spec refuses a larger law (core.fit.law_problem) and the
#: provenance parser a recorded one, so a file varscale writes is always one it can check.
MAX_DISTRIBUTION_PARAM = 1e50


def param_beyond_limit(
    loc: float, scale: float, cut: float, lower: float | None
) -> tuple[str, float] | None:
    """The first of a law's parameters past `MAX_DISTRIBUTION_PARAM`, as (name, value)."""
    for key, v in (("loc", loc), ("scale", scale), ("cut", cut), ("lower", lower or 0.0)):
        if abs(v) > MAX_DISTRIBUTION_PARAM:
            return key, v
    return None


#: What a sampler can draw: the four real laws, the three complex ones and orthogonal.
Kind = Literal[
    "truncated_normal", "normal", "uniform", "constant",
    "complex_normal", "complex_uniform", "complex_truncated_normal", "orthogonal",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
#: The laws of complex values (circular: uniform phase, `Distribution.cdf` of the modulus).
COMPLEX_KINDS: tuple[Kind, ...] = ("complex_normal", "complex_uniform", "complex_truncated_normal")


def parse_kind(value: object) -> Kind:
    """``value`` as a `Kind` (from a file or a caller), or ValueError naming the allowed ones."""
    for kind in KINDS:
        if value == kind:
            return kind
    raise ValueError(f"distribution kind {value!r} is not one of {', '.join(KINDS)}")


def _phi(x: float) -> float:
    """Standard normal density."""
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def truncated_moments(cut: float) -> tuple[float, float]:
    """(variance, fourth moment) of N(0, 1) truncated to [-cut, cut]."""
    z = math.erf(cut / math.sqrt(2.0))
    var = 1.0 - 2.0 * cut * _phi(cut) / z
    m4 = 3.0 - 2.0 * _phi(cut) * (cut**3 + 3.0 * cut) / z
    return var, m4


def cut_exponential_moments(a: float) -> tuple[float, float, float]:
    """(E[X], E[X^2], E[X^3]) of X ~ Exp(1) cut at ``a`` (the module docstring derives the
    first two; E[X^3] = (6 - (a^3 + 3 a^2 + 6 a + 6) e^-a) / Z the same way)."""
    e = math.exp(-a)
    z = 1.0 - e
    return (
        (1.0 - (1.0 + a) * e) / z,
        (2.0 - (a * a + 2.0 * a + 2.0) * e) / z,
        (6.0 - (a * a * a + 3.0 * a * a + 6.0 * a + 6.0) * e) / z,
    )


def modulus_moments(kind: str, cut: float = 2.0) -> tuple[float, float, float]:
    """(E R^2, E R^4, E R^6) of a complex law's modulus R = |z| / scale."""
    if kind == "complex_normal":
        return 2.0, 8.0, 48.0  # R^2 = 2 X with X ~ Exp(1): E X^k = k!
    if kind == "complex_uniform":
        return 0.5, 1.0 / 3.0, 0.25  # R^2 ~ U(0, 1): E U^k = 1 / (k + 1)
    return cut_exponential_moments(cut * cut)


@dataclass(frozen=True)
class Distribution:
    """The exact law of every element of one tensor.

    Attributes:
        kind: one of KINDS.
        scale: for the normals, the std of the underlying (untruncated) normal; for
            `uniform`, the half-width `limit` of [-limit, limit]; for `constant`, 0. For the
            complex laws: `complex_normal` the std of each part, `complex_uniform` the disk's
            radius, `complex_truncated_normal` the unit of the modulus (|z| <= cut * scale).
        loc: the centre (the constant's value for `constant`).
        cut: truncation point in units of `scale` (truncated_normal: the upper one;
            complex_truncated_normal: of the modulus).
        lower: the lower truncation point in units of `scale`, or None for ``-cut`` (the
            symmetric law); set only when it differs from ``-cut``.
    """

    kind: Kind
    scale: float
    loc: float = 0.0
    cut: float = 2.0
    lower: float | None = None
    #: The matrix an ``orthogonal`` tensor is (rows x cols); 0 for every other kind.
    rows: int = 0
    cols: int = 0

    @property
    def lower_cut(self) -> float:
        """The lower truncation point in units of `scale` (``-cut`` when symmetric)."""
        return -self.cut if self.lower is None else self.lower

    @property
    def _general(self) -> bool:
        """A truncation other than the seeds' symmetric +-2 (moments from `truncnorm`)."""
        return self.kind == "truncated_normal" and (self.lower is not None or self.cut != 2.0)

    def standard_moments(self) -> tuple[float, float, float, float]:
        """(mean, var, mu4, mu6) of (X - loc) / scale: the standardised law's central moments."""
        return truncnorm.central_moments(self.lower_cut, self.cut)

    @property
    def mean(self) -> float:
        """E[X]: loc, except for an asymmetric truncation."""
        if self.kind == "truncated_normal" and self.lower is not None:
            return self.loc + self.scale * self.standard_moments()[0]
        return self.loc

    @property
    def dim(self) -> int:
        """``orthogonal``: m = max(rows, cols), the length of the unit vectors (at least 1, so
        an empty matrix has finite moments)."""
        return max(self.rows, self.cols, 1)

    @property
    def is_complex(self) -> bool:
        return self.kind in COMPLEX_KINDS

    @property
    def variance(self) -> float:
        """Var(x), or E|z - loc|^2 for the complex laws."""
        if self.is_complex:
            return modulus_moments(self.kind, self.cut)[0] * self.scale * self.scale
        if self.kind == "orthogonal":
            return self.scale * self.scale / self.dim
        if self._general:
            return self.standard_moments()[1] * self.scale * self.scale
        if self.kind == "truncated_normal":
            return truncated_moments(self.cut)[0] * self.scale**2
        if self.kind == "normal":
            return self.scale**2
        if self.kind == "uniform":
            # U(-a, a) has variance a^2 / 3.
            return self.scale**2 / 3.0
        return 0.0

    @property
    def std(self) -> float:
        return math.sqrt(self.variance)

    @property
    def kurtosis(self) -> float:
        """E[(X - mean)^4] / Var^2; 3 for a normal, 9/5 for a uniform, 2.3655... at cut 2.
        For the complex laws E|z|^4 / (E|z|^2)^2: 2 (normal), 4/3 (disk)."""
        if self.is_complex:
            m2, m4, _ = modulus_moments(self.kind, self.cut)
            return m4 / (m2 * m2)
        if self.kind == "orthogonal":
            return 3.0 * self.dim / (self.dim + 2.0)
        if self._general:
            _, var, mu4, _ = self.standard_moments()
            return mu4 / (var * var)
        if self.kind == "truncated_normal":
            var, m4 = truncated_moments(self.cut)
            return m4 / var**2
        if self.kind == "normal":
            return 3.0
        if self.kind == "uniform":
            return 1.8
        return float("nan")

    @property
    def bound(self) -> float | None:
        """Largest possible |x - loc| before rounding to the stored dtype, or None if unbounded."""
        if self.kind == "truncated_normal":
            return max(self.cut, -self.lower_cut) * self.scale
        if self.kind == "complex_truncated_normal":
            return self.cut * self.scale
        if self.kind in ("uniform", "complex_uniform", "orthogonal"):
            return self.scale
        if self.kind == "constant":
            return 0.0
        return None

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """The analytic CDF at `x` (float64 array), for goodness-of-fit tests.

        Accurate to 1.5e-7 absolute (the vectorised `erf`), far below the Kolmogorov-Smirnov
        distances any sample here can resolve.
        """
        x = np.asarray(x, dtype=np.float64)
        if self.is_complex:
            return self._modulus_cdf(x)
        if self.kind == "orthogonal":
            return _unit_coordinate_cdf(self.dim, x / self.scale)
        if self.kind == "constant":
            return (x >= self.loc).astype(np.float64)
        t = (x - self.loc) / self.scale
        if self.kind == "uniform":
            return np.clip((t + 1.0) / 2.0, 0.0, 1.0)
        phi = _std_normal_cdf(t)
        if self.kind == "normal":
            return phi
        lo, hi = self.cut_cdfs()
        return np.clip((phi - lo) / (hi - lo), 0.0, 1.0)

    def cut_cdfs(self) -> tuple[float, float]:
        """A truncated normal's standard normal CDF at its lower and upper cut points."""
        lo = _std_normal_cdf(np.array(self.lower_cut))
        hi = _std_normal_cdf(np.array(self.cut))
        return float(lo), float(hi)

    def _modulus_cdf(self, r: np.ndarray) -> np.ndarray:
        """P(|z| <= r) (module docstring): from R^2 = (r / scale)^2."""
        q = np.maximum(r, 0.0) / self.scale
        q = q * q
        if self.kind == "complex_uniform":
            return np.clip(q, 0.0, 1.0)
        if self.kind == "complex_normal":
            return -np.expm1(-q / 2.0)
        a = self.cut * self.cut
        return np.clip(-np.expm1(-np.minimum(q, a)) / -math.expm1(-a), 0.0, 1.0)

    def to_json(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {
            "kind": self.kind, "loc": self.loc, "scale": self.scale, "cut": self.cut,
        }
        if self.lower is not None:  # only then: existing records keep their bytes
            out["lower"] = self.lower
        if self.kind == "orthogonal":
            out.update(rows=self.rows, cols=self.cols)
        return out


def _unit_coordinate_cdf(m: int, x: np.ndarray) -> np.ndarray:
    """P(X <= x) for a coordinate X of a uniform unit vector in R^m (module docstring).

    With x = sin(t) the density becomes proportional to cos(t)^(m - 2) on [-pi/2, pi/2], smooth
    for m >= 2, integrated by the trapezoid rule on 2^16 + 1 nodes and interpolated. The nodes
    span |t| <= min(pi/2, 12 / sqrt(m - 2)): beyond it cos(t)^(m - 2) < exp(-(m - 2) t^2 / 2)
    = e^-72. The error stays below 2e-8 at every m (tests compare with the beta function),
    far below what a KS test of 10^5 values resolves (~1e-3).
    """
    x = np.asarray(x, dtype=np.float64)
    if m <= 1:  # X = +-1 with probability 1/2 each
        return 0.5 * (x >= -1.0) + 0.5 * (x >= 1.0)
    x = np.clip(x, -1.0, 1.0)
    top = min(math.pi / 2.0, 12.0 / math.sqrt(m - 2)) if m > 2 else math.pi / 2.0
    t = np.linspace(-top, top, (1 << 16) + 1)
    f = np.cos(t) ** (m - 2) if m > 2 else np.ones_like(t)
    cum = np.concatenate(([0.0], np.cumsum((f[1:] + f[:-1]) * 0.5)))
    cum /= cum[-1]
    return np.interp(np.arcsin(x), t, cum)


# Abramowitz & Stegun 7.1.26: erf(x) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-x^2), t = 1/(1 + p x),
# for x >= 0, absolute error <= 1.5e-7 (tests compare with math.erf). That is ~10^4 times
# below the smallest Kolmogorov-Smirnov distance the stats tests can resolve (D ~ 5e-3 at the
# 1e-5 level with 100k samples), and it is vectorised: math.erf element by element cost
# seconds per checkpoint.
ERF_AS_P = 0.3275911
ERF_AS_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf, |error| <= 1.5e-7."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + ERF_AS_P * z)
    poly = np.full_like(t, ERF_AS_A[0])
    for a in ERF_AS_A[1:]:
        poly = poly * t + a
    y = 1.0 - poly * t * np.exp(-z * z)
    # The fit leaves 1e-9 at 0; the CDF at the centre must be exactly 1/2.
    return np.copysign(np.where(z == 0.0, 0.0, y), x)


def _std_normal_cdf(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(np.asarray(t, dtype=np.float64) / math.sqrt(2.0)))
