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
Every other truncation (a cut other than 2, or an asymmetric [lower, cut]) takes its moments
from `core.truncnorm`, in the project's own arithmetic, since they are recorded in outputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from . import truncnorm

#: What a sampler can draw: the four laws the initializers resolve to.
Kind = Literal["truncated_normal", "normal", "uniform", "constant"]
KINDS: tuple[Kind, ...] = get_args(Kind)


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


@dataclass(frozen=True)
class Distribution:
    """The exact law of every element of one tensor.

    Attributes:
        kind: one of KINDS.
        scale: for the normals, the std of the underlying (untruncated) normal; for
            `uniform`, the half-width `limit` of [-limit, limit]; for `constant`, 0.
        loc: the centre (the constant's value for `constant`).
        cut: truncation point in units of `scale` (truncated_normal only): the upper one.
        lower: the lower truncation point in units of `scale`, or None for ``-cut`` (the
            symmetric law); set only when it differs from ``-cut``.
    """

    kind: Kind
    scale: float
    loc: float = 0.0
    cut: float = 2.0
    lower: float | None = None

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
    def variance(self) -> float:
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
        """E[(X - mean)^4] / Var^2; 3 for a normal, 9/5 for a uniform, 2.3655... at cut 2."""
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
        if self.kind == "uniform":
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
        if self.kind == "constant":
            return (x >= self.loc).astype(np.float64)
        t = (x - self.loc) / self.scale
        if self.kind == "uniform":
            return np.clip((t + 1.0) / 2.0, 0.0, 1.0)
        phi = _std_normal_cdf(t)
        if self.kind == "normal":
            return phi
        lo = _std_normal_cdf(np.array(self.lower_cut))
        hi = _std_normal_cdf(np.array(self.cut))
        return np.clip((phi - lo) / (hi - lo), 0.0, 1.0)

    def to_json(self) -> dict[str, float | str]:
        out: dict[str, float | str] = {
            "kind": self.kind, "loc": self.loc, "scale": self.scale, "cut": self.cut,
        }
        if self.lower is not None:  # only then: existing records keep their bytes
            out["lower"] = self.lower
        return out


# Abramowitz & Stegun 7.1.26: erf(x) = 1 - t (a1 + t (a2 + ... a5 t)) exp(-x^2), t = 1/(1 + p x),
# for x >= 0, absolute error <= 1.5e-7 (tests compare with math.erf). That is ~10^4 times
# below the smallest Kolmogorov-Smirnov distance the stats tests can resolve (D ~ 5e-3 at the
# 1e-5 level with 100k samples), and it is vectorised: math.erf element by element cost
# seconds per checkpoint.
_AS_P = 0.3275911
_AS_A = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


def erf(x: np.ndarray) -> np.ndarray:
    """Vectorised erf, |error| <= 1.5e-7."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x)
    t = 1.0 / (1.0 + _AS_P * z)
    poly = np.full_like(t, _AS_A[0])
    for a in _AS_A[1:]:
        poly = poly * t + a
    y = 1.0 - poly * t * np.exp(-z * z)
    # The fit leaves 1e-9 at 0; the CDF at the centre must be exactly 1/2.
    return np.copysign(np.where(z == 0.0, 0.0, y), x)


def _std_normal_cdf(t: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + erf(np.asarray(t, dtype=np.float64) / math.sqrt(2.0)))
