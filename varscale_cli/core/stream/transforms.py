"""The numpy reference transforms: 32 or 64 random bits per element -> one value of a law.

They use only integer operations, int-to-float conversions of exact integers, and correctly
rounded IEEE-754 ``+ - * /`` and ``sqrt`` in a fixed order: no libm or numpy transcendental
functions (their last bits vary across CPUs and builds), no rejection sampling (it would break
addressability). Normal and truncated normal values are inverse-CDF transforms of one uniform
each: Giles' single-precision erfinv polynomial in float32 ("Approximating the erfinv function",
GPU Computing Gems, 2011), Wichura's AS241 (PPND16) in float64; both with a logarithm of our own
built from the float's exponent bits and an atanh series. The compiled kernels
(``varscale_cli._native``) fuse the float32 operations into one loop and give the same bytes.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence

import numpy as np

from .. import truncnorm
from ..distributions import Distribution
from . import coefficients as co
from .native import Kernels, compiled_kernels

#: 2^-23: the spacing of the float32 uniforms built below (exact: a power of two).
_F32_STEP = np.float32(2.0**-23)
#: The largest float32 below 1 (1 - 2^-24) and the largest float64 below 1/2 (1/2 - 2^-54):
#: the erfinv argument and the quantile's q are clamped inside them, so neither reaches a pole.
_BELOW_ONE_F32 = np.float32(1.0 - 2.0**-24)
_BELOW_HALF_F64 = 0.5 - 2.0**-54


def _horner(coeffs: Sequence[float | np.float32], x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = polynomial(x), coefficients highest degree first; one multiply, one add per term."""
    np.multiply(x, coeffs[0], out=out)
    np.add(out, coeffs[1], out=out)
    for c in coeffs[2:]:
        np.multiply(out, x, out=out)
        np.add(out, c, out=out)
    return out


class Scratch:
    """Preallocated per-thread buffers: fresh pages cost 3-4x a reused, cache-warm buffer.

    Named buffers, each with one role, so no transform ever aliases its input: float32 ``x``
    the uniform / erfinv argument, ``y`` and ``t`` temporaries, ``w`` the log, ``m`` the
    mantissa, ``res`` the float32 result before rounding to float16 / bfloat16; float64 ``q``
    the AS241 argument; integer ``i`` (int32) and ``j`` (int64) and the boolean ``mask``.
    """

    _BUFFERS = ("x", "y", "t", "w", "m", "res", "q", "i", "j", "mask")

    n: int
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    w: np.ndarray
    m: np.ndarray
    res: np.ndarray
    q: np.ndarray
    i: np.ndarray
    j: np.ndarray
    mask: np.ndarray
    philox: np.random.Philox

    def __init__(self, n: int) -> None:
        self.n = n
        self.x, self.y, self.t, self.w, self.m, self.res = (
            np.empty(n, np.float32) for _ in range(6)
        )
        self.q = np.empty(n, np.float64)
        self.i = np.empty(n, np.int32)
        self.j = np.empty(n, np.int64)
        self.mask = np.empty(n, bool)
        self.philox = np.random.Philox()  # repositioned per block (see philox.raw_words)

    def views(self, n: int) -> Scratch:
        """The first ``n`` elements of every buffer (the same Philox), for a shorter block."""
        if n == self.n:
            return self
        v = copy.copy(self)
        v.n = n
        for name in self._BUFFERS:
            setattr(v, name, getattr(self, name)[:n])
        return v


def symmetric_f32(bits: np.ndarray, s: Scratch, out: np.ndarray, scale: np.float32) -> np.ndarray:
    """``scale`` times a uniform on the odd multiples of 2^-23 in (-1, 1), from 32 random bits.

    The bits read as int32 and shifted right arithmetically by 8 give k in [-2^23, 2^23);
    ``k | 1`` is odd in (-2^23, 2^23), each value hit by two k, so the set is symmetric and its
    mean is exactly 0; it converts to float32 exactly. Multiplying by ``scale * 2^-23`` (exact:
    a power of two) rounds once, to the same float32 as ``(k|1) * 2^-23 * scale``; since
    |k|1| < 2^23 the result is strictly inside (-scale, scale) before rounding, so at most
    ``scale`` after it, and +-1 is never reached (erfinv stays finite).
    """
    k = s.i
    np.right_shift(bits.view(np.int32), 8, out=k)
    np.bitwise_or(k, 1, out=k)
    np.copyto(out, k, casting="unsafe")
    np.multiply(out, np.float32(scale * _F32_STEP), out=out)
    return out


def neg_log_f32(y: np.ndarray, s: Scratch, out: np.ndarray, shift: np.float32) -> np.ndarray:
    """out = -log(y) - shift for normal float32 y > 0, from the exponent bits and an atanh
    series (the shift is Giles' 2.5, folded in to save a pass).

    Uses ``s.i``, ``s.m`` and ``s.t``; ``y`` and ``out`` must be other buffers.
    """
    yi = y.view(np.int32)
    e = s.i
    np.right_shift(yi, 23, out=e)
    np.subtract(127, e, out=e)  # minus the unbiased exponent; y > 0 so the sign bit is clear
    m, t = s.m, s.t
    mi = m.view(np.int32)
    np.bitwise_and(yi, 0x007FFFFF, out=mi)
    np.bitwise_or(mi, 0x3F800000, out=mi)  # m in [1, 2), y = m * 2^e
    np.add(m, np.float32(1.0), out=t)
    np.subtract(m, np.float32(1.0), out=m)
    np.divide(m, t, out=m)  # s = (m - 1) / (m + 1)
    np.multiply(m, m, out=t)  # s^2
    _horner(co.ATANH_F32, t, out)
    np.multiply(out, m, out=out)  # log(m)
    np.copyto(t, e, casting="unsafe")  # exact: |e| < 2^24
    np.multiply(t, np.float32(co.LN2), out=t)
    np.subtract(t, shift, out=t)  # -e log 2 - shift
    np.subtract(t, out, out=out)  # -(e log 2 + log m) - shift
    return out


def erfinv_f32(x: np.ndarray, s: Scratch, out: np.ndarray, tails: bool) -> np.ndarray:
    """out = erfinv(x) for float32 x in (-1, 1) (Giles, single precision).

    With ``tails=False`` the caller promises |x| <= erf(sqrt 2), where w <= 2.42 < 5 and the
    central branch alone is exact to the polynomial's accuracy. Uses ``s.y``, ``s.w`` and what
    ``neg_log_f32`` uses; ``x`` and ``out`` must be other buffers.
    """
    y, w = s.y, s.w
    np.subtract(np.float32(1.0), x, out=y)
    np.add(np.float32(1.0), x, out=s.t)
    np.multiply(y, s.t, out=y)  # (1 - x)(1 + x): more accurate than 1 - x^2 near |x| = 1
    neg_log_f32(y, s, w, np.float32(co.GILES_CENTRAL_SHIFT))  # w - 2.5
    _horner(co.GILES_CENTRAL, w, out)
    if tails:
        np.greater_equal(w, np.float32(co.GILES_TAIL_FROM - co.GILES_CENTRAL_SHIFT), out=s.mask)
        tail_idx = np.flatnonzero(s.mask)
    if tails and tail_idx.size:
        r = np.sqrt(w[tail_idx] + np.float32(co.GILES_CENTRAL_SHIFT)) - np.float32(
            co.GILES_TAIL_SHIFT
        )
        out[tail_idx] = _horner(co.GILES_TAIL, r, np.empty_like(r))
    np.multiply(out, x, out=out)
    return out


def symmetric_f64(bits64: np.ndarray, s: Scratch, out: np.ndarray) -> np.ndarray:
    """Uniform on the odd multiples of 2^-52 in (-1, 1), exactly, from 64 random bits."""
    q = s.j
    np.right_shift(bits64, 11, out=q.view(np.uint64))
    np.bitwise_or(q, 1, out=q)
    np.subtract(q, 1 << 52, out=q)
    np.copyto(out, q, casting="unsafe")  # exact: |q| < 2^53
    np.multiply(out, 2.0**-52, out=out)
    return out


def neg_log_f64(r: np.ndarray) -> np.ndarray:
    """-log(r) for normal float64 r > 0 (small arrays: the tail of AS241)."""
    ri = r.view(np.int64)
    e = (ri >> 52) - 1023
    m = ((ri & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
    big = m > 2.0 * co.SQRT_HALF  # normalise m to [sqrt(1/2), sqrt(2)) for a short series
    m = np.where(big, m * 0.5, m)
    e = e + big
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = np.empty_like(s)
    _horner(co.ATANH_F64, s2, p)
    return -(p * s + e.astype(np.float64) * co.LN2)


def _rational(num: Sequence[float], den: Sequence[float], x: np.ndarray) -> np.ndarray:
    a = np.empty_like(x)
    b = np.empty_like(x)
    return _horner(num, x, a) / _horner(den, x, b)


def ppnd16(q: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = Phi^-1(1/2 + q) for float64 q in (-1/2, 1/2): AS241 written in terms of q so the
    central branch never forms 1/2 + q (no cancellation)."""
    aq = np.abs(q)
    central = aq <= co.AS241_CENTRAL_LIMIT
    qc = q[central]
    r = co.AS241_CENTRAL_R0 - qc * qc
    out[central] = qc * _rational(co.AS241_A, co.AS241_B, r)
    idx = np.flatnonzero(~central)
    if idx.size:
        qt = q[idx]
        r = np.sqrt(neg_log_f64(0.5 - np.abs(qt)))  # 0.5 - |q| = min(p, 1 - p), exact
        val = np.empty_like(r)
        near = r <= co.AS241_NEAR_LIMIT
        val[near] = _rational(co.AS241_C, co.AS241_D, r[near] - co.AS241_NEAR_SHIFT)
        val[~near] = _rational(co.AS241_E, co.AS241_F, r[~near] - co.AS241_FAR_SHIFT)
        out[idx] = np.where(qt < 0, -val, val)
    return out


# --- one block of one law ----------------------------------------------------------------------


def general_truncation(dist: Distribution) -> bool:
    """A truncated normal other than the seeds' [-2, 2] (whose transform is pinned as it was)."""
    return dist.kind == "truncated_normal" and (dist.lower is not None or dist.cut != 2.0)


@functools.lru_cache(maxsize=256)
def _erf_interval(lower: float, upper: float) -> tuple[float, float]:
    """(centre, half-width) of (erf(lower / sqrt 2), erf(upper / sqrt 2)): the interval whose
    uniform the quantile maps to N(0, 1) cut to [lower, upper] (own arithmetic, so the same on
    every machine). Symmetric bounds give centre 0 exactly."""
    el = truncnorm.erf(lower * co.SQRT_HALF)
    eu = truncnorm.erf(upper * co.SQRT_HALF)
    if lower == -upper:
        return 0.0, eu
    return (eu + el) / 2.0, (eu - el) / 2.0


def _truncated_f32(
    kernels: Kernels | None, dist: Distribution, bits: np.ndarray, s: Scratch, out: np.ndarray
) -> None:
    """N(0, scale) cut to [lower, cut] * scale: ``sqrt 2 erfinv(x)`` for x uniform on
    (erf(lower / sqrt 2), erf(cut / sqrt 2)), i.e. ``x = centre + half * v`` with v the usual
    symmetric uniform, clamped inside (-1, 1); Giles' tail branch where |x| needs it; then the
    exact clip to the bounds. Symmetric bounds have centre 0: x = half * v, which the compiled
    untruncated kernel computes as it is (asymmetric ones take numpy on both paths)."""
    lower, upper = dist.lower_cut, dist.cut
    centre, half = _erf_interval(lower, upper)
    outscale = np.float32(co.SQRT2 * dist.scale)
    if kernels is not None and centre == 0.0:
        xscale = np.float32(np.float32(half) * _F32_STEP)
        kernels.normal_f32(bits.view(np.int32), out, xscale, outscale, np.float32(0.0), False)
    else:
        x = symmetric_f32(bits, s, s.x, np.float32(half))
        if centre != 0.0:
            np.add(x, np.float32(centre), out=x)
            np.clip(x, -_BELOW_ONE_F32, _BELOW_ONE_F32, out=x)
        erfinv_f32(x, s, out, tails=True)
        np.multiply(out, outscale, out=out)
    np.clip(out, np.float32(lower * dist.scale), np.float32(upper * dist.scale), out=out)


def transform_f32(dist: Distribution, bits: np.ndarray, s: Scratch, out: np.ndarray) -> None:
    """out = ``dist`` from 32 bits per element, in float32: by the compiled kernels when they
    are loaded (`native.compiled_kernels`), else by numpy; the bytes are the same."""
    kernels = compiled_kernels()
    if general_truncation(dist):
        _truncated_f32(kernels, dist, bits, s, out)
    elif kernels is not None:
        _compiled_f32(kernels, dist, bits.view(np.int32), out)
    elif dist.kind == "uniform":
        symmetric_f32(bits, s, out, np.float32(dist.scale))
    else:
        truncated = dist.kind == "truncated_normal"
        # erfinv(x) * sqrt 2 for x uniform on (-erf(sqrt 2), erf(sqrt 2)) is a standard
        # normal truncated to [-2, 2]; on (-1, 1), an untruncated one.
        x = symmetric_f32(bits, s, s.x, np.float32(co.ERF_SQRT2 if truncated else 1.0))
        erfinv_f32(x, s, out, tails=not truncated)
        np.multiply(out, np.float32(co.SQRT2 * dist.scale), out=out)
        if truncated:
            # The polynomial may overshoot 2 sigma by an ulp; clipping is exact.
            bound = np.float32(dist.cut * dist.scale)
            np.clip(out, -bound, bound, out=out)
    if dist.loc != 0.0:
        np.add(out, np.float32(dist.loc), out=out)


def kernel_constants(dist: Distribution) -> tuple[np.float32, np.float32, np.float32]:
    """The compiled kernels' float32 constants for ``dist``: (xscale, outscale, bound), the
    numbers the numpy branch of `transform_f32` multiplies by (uniform: xscale is
    ``scale * 2^-23``, the others unused)."""
    if dist.kind == "uniform":
        one = np.float32(1.0)
        return np.float32(np.float32(dist.scale) * _F32_STEP), one, one
    truncated = dist.kind == "truncated_normal"
    xscale = np.float32(np.float32(co.ERF_SQRT2 if truncated else 1.0) * _F32_STEP)
    return xscale, np.float32(co.SQRT2 * dist.scale), np.float32(dist.cut * dist.scale)


def _compiled_f32(kernels: Kernels, dist: Distribution, bits: np.ndarray, out: np.ndarray) -> None:
    """The same values as the numpy branch of `transform_f32`, from fused loops."""
    xscale, outscale, bound = kernel_constants(dist)
    if dist.kind == "uniform":
        kernels.uniform_f32(bits, out, xscale)
    else:
        kernels.normal_f32(bits, out, xscale, outscale, bound, dist.kind == "truncated_normal")


def transform_f64(dist: Distribution, bits: np.ndarray, s: Scratch, out: np.ndarray) -> None:
    """out = ``dist`` from 64 bits per element, in float64 (numpy only)."""
    symmetric_f64(bits, s, out)
    if dist.kind == "uniform":
        np.multiply(out, dist.scale, out=out)
    elif general_truncation(dist):
        # q = Phi(x) - 1/2 uniform on (erf(lower / sqrt 2) / 2, erf(cut / sqrt 2) / 2).
        centre, half = _erf_interval(dist.lower_cut, dist.cut)
        q = s.q
        np.multiply(out, half / 2.0, out=q)
        if centre != 0.0:
            np.add(q, centre / 2.0, out=q)
            np.clip(q, -_BELOW_HALF_F64, _BELOW_HALF_F64, out=q)
        ppnd16(q, out)
        np.multiply(out, dist.scale, out=out)
        np.clip(out, dist.lower_cut * dist.scale, dist.cut * dist.scale, out=out)
    else:
        truncated = dist.kind == "truncated_normal"
        q = s.q
        # q = p - 1/2 uniform on (-HALF_MASS_2, HALF_MASS_2) gives Phi^-1 truncated to +-2.
        np.multiply(out, co.HALF_MASS_2 if truncated else 0.5, out=q)
        ppnd16(q, out)
        np.multiply(out, dist.scale, out=out)
        if truncated:
            np.clip(out, -dist.cut * dist.scale, dist.cut * dist.scale, out=out)
    if dist.loc != 0.0:
        np.add(out, dist.loc, out=out)
