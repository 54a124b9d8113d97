"""The normal law cut to [l, u] (in units of its std), with the project's own arithmetic.

Everything here is a constant computed once per tensor (the correction constant a variance
scaling initializer divides by, the endpoints of the uniform the sampler maps through the
normal quantile, the law's moments for `varscale stats`), so its bits decide output bytes: it
uses only IEEE ``+ - * /``, ``sqrt``, comparisons and exact scaling by powers of two
(``math.ldexp``), in a fixed order, never libm's ``exp`` / ``erf`` (their last bits vary across
platforms). tests/test_truncnorm.py checks every function against mpmath.

Closed forms, for X ~ N(0, 1) cut to [l, u], phi the density, Phi the CDF and
Z = Phi(u) - Phi(l) (integrate x^k phi(x) by parts, using phi'(x) = -x phi(x)):

    E[X]     = (phi(l) - phi(u)) / Z
    E[X^k]   = (k - 1) E[X^(k-2)] + (l^(k-1) phi(l) - u^(k-1) phi(u)) / Z
    Var[X]   = 1 + (l phi(l) - u phi(u)) / Z - E[X]^2

so the std that makes a variance-scaling law exact is C(l, u) = sqrt(Var[X]); for [-2, 2] it is
sqrt(1 - 4 phi(2) / erf(sqrt 2)) = 0.87962566103423978, TF's and Keras' constant.
"""

from __future__ import annotations

import math
import struct

#: ln 2 split as in fdlibm's e_exp.c: LN2_HI has 32 trailing zero bits, so k * LN2_HI is exact
#: for |k| < 2^20, and LN2_HI + LN2_LO = ln 2 to 2^-85.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e00
#: 2 / sqrt(pi) and 1 / sqrt(pi), 1 / sqrt(2 pi), 1 / sqrt(2): correctly rounded decimal literals.
_TWO_OVER_SQRT_PI = 1.1283791670955125739
_INV_SQRT_PI = 0.56418958354775628695
_INV_SQRT_2PI = 0.39894228040143267794
_INV_SQRT2 = 0.70710678118654752440
#: Terms of the exp Taylor series: |r| <= ln2 / 2 = 0.347, and 0.347^19 / 19! < 2e-25.
_EXP_TERMS = 18
#: erf: its series (all terms positive) below 2, 1 - erfc above (erf >= 0.995 there).
#: erfc: 1 - erf below 0.75 (erfc >= 0.28 there, so no digits cancel), Laplace's continued
#: fraction above, which with 500 terms reaches 2e-16 relative from 0.75 on (at 0.5 it would
#: still be 7e-14 off; tests/test_truncnorm.py measures both against mpmath).
_ERF_SERIES_TO = 2.0
_ERFC_CF_FROM = 0.75
_ERFC_CF_TERMS = 500
#: Least probability Z a truncation interval may hold: float32 offers about 2^24 uniforms across
#: (-1, 1), so an interval of mass 2^-10 still gets ~2^14 distinct values.
MIN_MASS = 2.0**-10


def exp(x: float) -> float:
    """e^x: x = k ln2 + r with |r| <= ln2 / 2 (Cody-Waite), a Taylor series for e^r in Horner
    form (1 + r (1 + r/2 (1 + r/3 ...))), then an exact scaling by 2^k."""
    if x != x:
        return x
    if x < -745.2:
        return 0.0
    if x > 709.7:
        return math.inf
    k = math.floor(x * _INV_LN2 + 0.5)
    r = (x - k * _LN2_HI) - k * _LN2_LO
    e = 1.0
    for n in range(_EXP_TERMS, 0, -1):
        e = 1.0 + r * e / n
    return math.ldexp(e, k)


def _split(x: float) -> tuple[float, float]:
    """x = hi + lo with hi holding x's top 26 significant bits, so hi * hi is exact."""
    bits = struct.unpack("<Q", struct.pack("<d", x))[0] & ~((1 << 27) - 1)
    hi = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return hi, x - hi


def exp_neg_square(x: float) -> float:
    """e^(-x^2) without the rounding of x^2 (x^2 = hi^2 + lo (2 hi + lo) with hi^2 exact, then
    e^(-hi^2) e^(-lo (2 hi + lo))): a relative error near 1e-16 even where x^2 is large."""
    hi, lo = _split(abs(x))
    return exp(-hi * hi) * exp(-lo * (hi + hi + lo))


def erf(x: float) -> float:
    """erf(x), relative error about 1e-16."""
    z = abs(x)
    if z < _ERF_SERIES_TO:
        # erf(z) = 2/sqrt(pi) e^(-z^2) sum_n (2 z^2)^n z / (2n+1)!! (A&S 7.1.6): no cancellation.
        two_z2 = 2.0 * z * z
        term = total = z
        n = 0
        while term > 1e-17 * total:
            n += 1
            term = term * two_z2 / (2 * n + 1)
            total += term
        value = _TWO_OVER_SQRT_PI * exp_neg_square(z) * total
    else:
        value = 1.0 - erfc(z)
    return value if x >= 0 else -value


def erfc(x: float) -> float:
    """erfc(x) = 1 - erf(x), relative error about 1e-16 also where it is tiny (x large)."""
    if x < _ERFC_CF_FROM:
        return 1.0 - erf(x)
    # Laplace's continued fraction (A&S 7.1.14): erfc(x) = e^(-x^2) / sqrt(pi) /
    # (x + (1/2) / (x + 1 / (x + (3/2) / (x + 2 / (x + ...))))), evaluated from the back.
    f = x
    for k in range(_ERFC_CF_TERMS, 0, -1):
        f = x + (0.5 * k) / f
    return _INV_SQRT_PI * exp_neg_square(x) / f


def upper_tail(x: float) -> float:
    """Q(x) = P(X > x) = erfc(x / sqrt 2) / 2 for X ~ N(0, 1)."""
    if x == math.inf:
        return 0.0
    if x == -math.inf:
        return 1.0
    return 0.5 * erfc(x * _INV_SQRT2)


def density(x: float) -> float:
    """phi(x) = e^(-x^2 / 2) / sqrt(2 pi)."""
    if math.isinf(x):
        return 0.0
    return _INV_SQRT_2PI * exp_neg_square(x * _INV_SQRT2)


def mass(lower: float, upper: float) -> float:
    """Z = Phi(upper) - Phi(lower), from the tail that keeps it accurate."""
    if lower >= 0.0:
        return upper_tail(lower) - upper_tail(upper)
    if upper <= 0.0:
        return upper_tail(-upper) - upper_tail(-lower)
    return 1.0 - upper_tail(upper) - upper_tail(-lower)


def check_bounds(lower: object, upper: object, what: str = "lower/upper") -> tuple[float, float]:
    """The bounds as floats, or ValueError saying what is allowed."""
    for value in (lower, upper):
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ValueError(f"truncation bounds {what} must be numbers, got {value!r}")
    lo, hi = float(lower), float(upper)  # type: ignore[arg-type]
    if not lo < hi:
        raise ValueError(f"truncation bounds {what} must satisfy lower < upper, got {lo}, {hi}")
    if math.isinf(lo) or math.isinf(hi):
        raise ValueError(
            f"truncation bounds {what} must be finite, got {lo}, {hi}; for no truncation use "
            "a normal, or bounds far out such as -100, 100"
        )
    z = mass(lo, hi)
    if not z >= MIN_MASS:
        raise ValueError(
            f"truncation bounds {what} = {lo}, {hi} (in stddevs) hold {z:.3g} of the normal's "
            f"probability, less than the {MIN_MASS:.3g} a sampler can resolve"
        )
    return lo, hi


def moments(lower: float, upper: float) -> tuple[float, ...]:
    """(E[X], E[X^2], ..., E[X^6]) for X ~ N(0, 1) cut to [lower, upper] (recurrence above)."""
    z = mass(lower, upper)
    pl, pu = density(lower), density(upper)
    raw = [1.0, (pl - pu) / z]
    # l^(k-1) phi(l) with phi(l) = 0 at an infinite bound (0 * inf would be NaN).
    lk, uk = 1.0, 1.0
    for k in range(2, 7):
        lk = lk * lower if pl else 0.0
        uk = uk * upper if pu else 0.0
        raw.append((k - 1) * raw[k - 2] + (lk * pl - uk * pu) / z)
    return tuple(raw[1:])


def central_moments(lower: float, upper: float) -> tuple[float, float, float, float]:
    """(mean, variance, E[(X - mean)^4], E[(X - mean)^6]) of N(0, 1) cut to [lower, upper]."""
    m1, m2, m3, m4, m5, m6 = moments(lower, upper)
    if lower == -upper:
        # Symmetric: the odd moments vanish; no cancellation at all.
        return 0.0, m2, m4, m6
    a = m1
    var = m2 - a * a
    mu4 = m4 - 4.0 * a * m3 + 6.0 * a * a * m2 - 3.0 * a * a * a * a
    mu6 = (m6 - 6.0 * a * m5 + 15.0 * a * a * m4 - 20.0 * a * a * a * m3
           + 15.0 * a * a * a * a * m2 - 5.0 * a * a * a * a * a * a)
    return a, var, mu4, mu6


def std(lower: float, upper: float) -> float:
    """C(l, u): the std of N(0, 1) cut to [lower, upper]."""
    return math.sqrt(central_moments(lower, upper)[1])
