"""The deterministic sampler: counter-based random bits and bit-stable transforms.

The guarantee (docs/determinism.md has the long form): element ``i`` of a tensor is a pure
function of (seed, stream name, distribution parameters, dtype, i). It does not depend on chunk
sizes, worker count, call order, partitioning, platform or library versions, because

* bits come from Philox4x64-10 (numpy's ``Philox`` bit generator, whose raw stream numpy keeps
  stable across releases) keyed by the first 16 bytes of a SHA-256 of (seed, stream name), and
  element ``i`` reads a fixed slice of that counter stream: 32 bits at bit offset ``32 i`` for
  32-bit-and-smaller dtypes, 64 bits at ``64 i`` for float64, so any element range is computed
  without the rest;
* the bits-to-value transforms use only integer operations, int-to-float conversions of exact
  integers, and correctly rounded IEEE-754 ``+ - * /`` and ``sqrt`` in a fixed order: no libm or
  numpy transcendental functions (their last bits vary across CPUs and builds), no numpy
  ``Generator`` distribution methods (numpy promises no stream stability for them), no rejection
  sampling (it would break addressability);
* every per-tensor constant is derived from decimal literals by correctly rounded operations.

Normal and truncated normal values are inverse-CDF transforms of one uniform each: Giles'
single-precision erfinv polynomial in float32 ("Approximating the erfinv function", GPU
Computing Gems, 2011), Wichura's AS241 (PPND16) in float64; both with a logarithm of our own
built from the float's exponent bits and an atanh series.

``STREAM_ID`` names this bit layout and these transforms; every output records it, and the
golden hashes in tests/test_sampling.py pin it.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np

from .core.distributions import Distribution

STREAM_ID = "varscale-philox4x64-10-v1"

#: Elements transformed per inner block: 64 Ki float32 = 256 KiB of scratch per buffer, so the
#: dozen scratch buffers of a block stay in L2; whole-array passes were ~45 % slower here.
BLOCK = 1 << 16

FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

_NATIVE = {
    "float16": np.dtype(np.float16),
    "bfloat16": np.dtype(ml_dtypes.bfloat16),
    "float32": np.dtype(np.float32),
    "float64": np.dtype(np.float64),
}


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype object for a canonical dtype name (bfloat16 via ml_dtypes)."""
    return _NATIVE[name]


# --- constants, each derived from literals by correctly rounded operations ------------------

#: erf(sqrt(2)) = P(|X| <= 2) for X ~ N(0, 1), to 20 digits (mpmath); tests recompute it.
ERF_SQRT2 = 0.95449973610364158560
#: Phi(2) - 1/2 = erf(sqrt 2) / 2: half the probability mass inside +-2 sigma.
HALF_MASS_2 = ERF_SQRT2 / 2.0
#: std of N(0, 1) truncated to [-2, 2] = sqrt(1 - 4 phi(2) / erf(sqrt 2)) (see distributions.py),
#: the constant TF and Keras divide by; tests recompute it with mpmath.
TRUNC_STD_2 = 0.87962566103423978
SQRT2 = math.sqrt(2.0)
LN2 = 0.69314718055994530942  # log(2)

# Giles' single-precision erfinv: erfinv(x) = x * P(w - 2.5) for w = -log(1 - x^2) < 5 (central),
# x * Q(sqrt(w) - 3) otherwise (tail). Coefficients as published, highest degree first.
_GILES_CENTRAL = tuple(
    np.float32(c)
    for c in (
        2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
        -0.00125372503, -0.00417768164, 0.246640727, 1.50140941,
    )
)
_GILES_TAIL = tuple(
    np.float32(c)
    for c in (
        -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
        -0.0076224613, 0.00943887047, 1.00167406, 2.83297682,
    )
)

# Wichura AS241 PPND16 (Applied Statistics 37(3), 1988): rational approximations of the normal
# quantile, relative accuracy about 1e-16. Highest degree first.
_AS241_A = (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
            4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
            1.3314166789178437745e2, 3.3871328727963666080e0)
_AS241_B = (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
            2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
            4.2313330701600911252e1, 1.0)
_AS241_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
            1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
            4.63033784615654529590e0, 1.42343711074968357734e0)
_AS241_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
            1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
            2.05319162663775882187e0, 1.0)
_AS241_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
            2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
            5.46378491116411436990e0, 6.65790464350110377720e0)
_AS241_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
            7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
            5.99832206555887937690e-1, 1.0)

# log(m) = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...) with s = (m - 1) / (m + 1).
# float32: m in [1, 2) so s < 1/3, s^2 < 1/9; 7 terms leave (1/9)^7 / 15 * 2/3 < 1e-8 absolute.
_ATANH_F32 = tuple(np.float32(2.0 / (2 * k + 1)) for k in reversed(range(7)))
# float64: m normalised to [sqrt(1/2), sqrt(2)), s^2 < 0.0295; 12 terms leave 0.0295^12 / 25 < 1e-19.
_ATANH_F64 = tuple(2.0 / (2 * k + 1) for k in reversed(range(12)))
_SQRT_HALF = 0.70710678118654752440


# --- bits ------------------------------------------------------------------------------------


_KERNELS: Any = None  # None: not tried yet; False: unavailable or disabled; else the module


def compiled_kernels() -> Any:
    """The compiled transforms (`_kernels`), or None without the C extension or with
    ``VARSCALE_NO_NATIVE=1``. Loading costs about a millisecond, once per process."""
    global _KERNELS
    if _KERNELS is None:
        if os.environ.get("VARSCALE_NO_NATIVE", "") not in ("", "0"):
            _KERNELS = False
        else:
            try:
                from . import _kernels

                _KERNELS = _kernels
            except (ImportError, OSError):
                _KERNELS = False
    return _KERNELS or None


def stream_key(seed: int, stream: str) -> tuple[int, int]:
    """The Philox key of a (seed, stream name) pair: a fixed hash, never Python's ``hash``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    digest = hashlib.sha256(
        STREAM_ID.encode() + b"\0" + seed.to_bytes(8, "little") + stream.encode("utf-8")
    ).digest()
    return int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")


def raw_words(
    key: tuple[int, int], first_word: int, count: int, bg: np.random.Philox | None = None
) -> np.ndarray:
    """64-bit words ``first_word .. first_word + count`` of the key's counter stream.

    numpy's Philox with counter ``b`` yields words ``4b .. 4b + 3`` of the stream, so a range
    starts at counter ``first_word // 4`` and drops the words before it. ``bg``, a Philox to
    reuse, is repositioned by setting its state: constructing one per block cost 22 us and a
    getrandom() syscall (numpy seeds it from OS entropy even when a key is given), 3.7 us this way.
    """
    block, skip = divmod(first_word, 4)
    key_arr = np.array(key, dtype=np.uint64)
    if bg is None:
        bg = np.random.Philox(key=key_arr, counter=block)
    else:
        bg.state = {
            "bit_generator": "Philox",
            "state": {
                "counter": np.array(
                    [block & _U64, (block >> 64) & _U64, (block >> 128) & _U64, block >> 192],
                    dtype=np.uint64,
                ),
                "key": key_arr,
            },
            "buffer": np.zeros(4, dtype=np.uint64),
            "buffer_pos": 4,  # empty buffer: the next draw computes counter `block`
            "has_uint32": 0,
            "uinteger": 0,
        }
    words = bg.random_raw(count + skip)
    return words[skip:] if skip else words


_U64 = (1 << 64) - 1


def raw_bits32(
    key: tuple[int, int], start: int, count: int, bg: np.random.Philox | None = None
) -> np.ndarray:
    """32-bit values ``start .. start + count``: value ``i`` is the low (even ``i``) or high
    (odd ``i``) half of 64-bit word ``i // 2``, independent of the host's byte order."""
    first = start // 2
    words = raw_words(key, first, (start + count + 1) // 2 - first, bg)
    if sys.byteorder != "little":
        words = words.byteswap()
    halves = words.view("<u4")
    off = start - 2 * first
    return halves[off : off + count]


# --- transforms ------------------------------------------------------------------------------


def _horner(coeffs: Sequence, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = polynomial(x), coefficients highest degree first; one multiply, one add per term."""
    np.multiply(x, coeffs[0], out=out)
    np.add(out, coeffs[1], out=out)
    for c in coeffs[2:]:
        np.multiply(out, x, out=out)
        np.add(out, c, out=out)
    return out


class _Scratch:
    """Preallocated per-thread buffers: fresh pages cost 3-4x a reused, cache-warm buffer.

    Named float32 buffers, each with one role, so no transform ever aliases its input:
    ``x`` the uniform / erfinv argument, ``y`` and ``t`` temporaries, ``w`` the log, ``m`` the
    mantissa, ``res`` the float32 result before rounding to float16 / bfloat16.
    """

    F32 = ("x", "y", "t", "w", "m", "res")
    F64 = ("q",)

    def __init__(self, n: int) -> None:
        self.n = n
        for name in self.F32:
            setattr(self, name, np.empty(n, np.float32))
        for name in self.F64:
            setattr(self, name, np.empty(n, np.float64))
        self.i = np.empty(n, np.int32)
        self.j = np.empty(n, np.int64)
        self.mask = np.empty(n, bool)
        self.philox = np.random.Philox()  # repositioned per block (see raw_words)

    def views(self, n: int) -> _Scratch:
        if n == self.n:
            return self
        v = object.__new__(_Scratch)
        v.n = n
        v.philox = self.philox
        for name in (*self.F32, *self.F64, "i", "j", "mask"):
            setattr(v, name, getattr(self, name)[:n])
        return v


def _symmetric_f32(bits: np.ndarray, s: _Scratch, out: np.ndarray, scale: np.float32) -> np.ndarray:
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
    np.multiply(out, np.float32(scale * np.float32(2.0**-23)), out=out)
    return out


def _neg_log_f32(y: np.ndarray, s: _Scratch, out: np.ndarray, shift: np.float32) -> np.ndarray:
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
    _horner(_ATANH_F32, t, out)
    np.multiply(out, m, out=out)  # log(m)
    np.copyto(t, e, casting="unsafe")  # exact: |e| < 2^24
    np.multiply(t, np.float32(LN2), out=t)
    np.subtract(t, shift, out=t)  # -e log 2 - shift
    np.subtract(t, out, out=out)  # -(e log 2 + log m) - shift
    return out


def _erfinv_f32(x: np.ndarray, s: _Scratch, out: np.ndarray, tails: bool) -> np.ndarray:
    """out = erfinv(x) for float32 x in (-1, 1) (Giles, single precision).

    With ``tails=False`` the caller promises |x| <= erf(sqrt 2), where w <= 2.42 < 5 and the
    central branch alone is exact to the polynomial's accuracy. Uses ``s.y``, ``s.w`` and what
    ``_neg_log_f32`` uses; ``x`` and ``out`` must be other buffers.
    """
    y, w = s.y, s.w
    np.subtract(np.float32(1.0), x, out=y)
    np.add(np.float32(1.0), x, out=s.t)
    np.multiply(y, s.t, out=y)  # (1 - x)(1 + x): more accurate than 1 - x^2 near |x| = 1
    _neg_log_f32(y, s, w, np.float32(2.5))  # w - 2.5
    _horner(_GILES_CENTRAL, w, out)
    if tails:
        np.greater_equal(w, np.float32(5.0 - 2.5), out=s.mask)
        tail_idx = np.flatnonzero(s.mask)
    if tails and tail_idx.size:
        r = np.sqrt(w[tail_idx] + np.float32(2.5)) - np.float32(3.0)
        out[tail_idx] = _horner(_GILES_TAIL, r, np.empty_like(r))
    np.multiply(out, x, out=out)
    return out


def _symmetric_f64(bits64: np.ndarray, s: _Scratch, out: np.ndarray) -> np.ndarray:
    """Uniform on the odd multiples of 2^-52 in (-1, 1), exactly, from 64 random bits."""
    q = s.j
    np.right_shift(bits64, 11, out=q.view(np.uint64))
    np.bitwise_or(q, 1, out=q)
    np.subtract(q, 1 << 52, out=q)
    np.copyto(out, q, casting="unsafe")  # exact: |q| < 2^53
    np.multiply(out, 2.0**-52, out=out)
    return out


def _neg_log_f64(r: np.ndarray) -> np.ndarray:
    """-log(r) for normal float64 r > 0 (small arrays: the tail of AS241)."""
    ri = r.view(np.int64)
    e = (ri >> 52) - 1023
    m = ((ri & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
    big = m > 2.0 * _SQRT_HALF  # normalise m to [sqrt(1/2), sqrt(2)) for a short series
    m = np.where(big, m * 0.5, m)
    e = e + big
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = np.empty_like(s)
    _horner(_ATANH_F64, s2, p)
    return -(p * s + e.astype(np.float64) * LN2)


def _rational(num: Sequence[float], den: Sequence[float], x: np.ndarray) -> np.ndarray:
    a = np.empty_like(x)
    b = np.empty_like(x)
    return _horner(num, x, a) / _horner(den, x, b)


def _ppnd16(q: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = Phi^-1(1/2 + q) for float64 q in (-1/2, 1/2): AS241 written in terms of q so the
    central branch never forms 1/2 + q (no cancellation)."""
    aq = np.abs(q)
    central = aq <= 0.425
    qc = q[central]
    r = 0.180625 - qc * qc
    out[central] = qc * _rational(_AS241_A, _AS241_B, r)
    idx = np.flatnonzero(~central)
    if idx.size:
        qt = q[idx]
        r = np.sqrt(_neg_log_f64(0.5 - np.abs(qt)))  # 0.5 - |q| = min(p, 1 - p), exact
        val = np.empty_like(r)
        near = r <= 5.0
        val[near] = _rational(_AS241_C, _AS241_D, r[near] - 1.6)
        val[~near] = _rational(_AS241_E, _AS241_F, r[~near] - 5.0)
        out[idx] = np.where(qt < 0, -val, val)
    return out


# --- the sampler -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorSampler:
    """Computes any flat element range of one full tensor drawn from ``dist``.

    Attributes:
        dist: the exact law of every element.
        dtype: canonical dtype name (one of FLOAT_DTYPES).
        seed: the seed.
        stream: the stream name (the tensor name in a spec).
    """

    dist: Distribution
    dtype: str
    seed: int
    stream: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in FLOAT_DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is not one of {', '.join(FLOAT_DTYPES)}")
        object.__setattr__(self, "_key", stream_key(self.seed, self.stream))

    @property
    def wide(self) -> bool:
        """float64 tensors are computed in float64 from 64 bits per element."""
        return self.dtype == "float64"

    def fill(self, start: int, out: np.ndarray, scratch: _Scratch | None = None) -> np.ndarray:
        """Fill ``out`` (1-D, this sampler's dtype) with elements ``start .. start + len(out)``."""
        n = out.shape[0]
        if self.dist.kind == "constant":
            out.fill(self.dist.loc)
            return out
        scratch = scratch or _Scratch(min(BLOCK, max(n, 1)))
        for lo in range(0, n, scratch.n):
            hi = min(n, lo + scratch.n)
            self._block(start + lo, out[lo:hi], scratch.views(hi - lo))
        return out

    def _block(self, start: int, out: np.ndarray, s: _Scratch) -> None:
        n = out.shape[0]
        if self.wide:
            bits = raw_words(self._key, start, n, s.philox)  # type: ignore[attr-defined]
            self._transform_f64(bits, s, out)
        else:
            bits = raw_bits32(self._key, start, n, s.philox)  # type: ignore[attr-defined]
            dst = out if out.dtype == np.float32 else s.res
            self._transform_f32(bits, s, dst)
            if dst is not out:
                np.copyto(out, dst, casting="unsafe")  # round to nearest even: exact IEEE
        if self.dist.kind == "uniform" and self.dist.loc != 0.0:
            # loc + v * half can round up to maxval itself (ties to even); the documented
            # interval is [minval, maxval), so clamp to the float just below, in the stored
            # dtype (a clamp in float32 could round up again when cast to bfloat16).
            np.minimum(out, self._below_max(out.dtype), out=out)

    def _below_max(self, dtype: np.dtype) -> np.ndarray:
        top = np.array(self.dist.loc + self.dist.scale, dtype=dtype)
        return np.nextafter(top, np.array(-np.inf, dtype=dtype))

    def _transform_f32(self, bits: np.ndarray, s: _Scratch, out: np.ndarray) -> None:
        d = self.dist
        kernels = compiled_kernels()
        if kernels is not None:  # the same values, fused (see _kernels.py)
            self._transform_f32_compiled(kernels, bits.view(np.int32), s, out)
        elif d.kind == "uniform":
            _symmetric_f32(bits, s, out, np.float32(d.scale))
        else:
            truncated = d.kind == "truncated_normal"
            # erfinv(x) * sqrt 2 for x uniform on (-erf(sqrt 2), erf(sqrt 2)) is a standard
            # normal truncated to [-2, 2]; on (-1, 1), an untruncated one.
            x = _symmetric_f32(bits, s, s.x, np.float32(ERF_SQRT2 if truncated else 1.0))
            _erfinv_f32(x, s, out, tails=not truncated)
            np.multiply(out, np.float32(SQRT2 * d.scale), out=out)
            if truncated:
                # The polynomial may overshoot 2 sigma by an ulp; clipping is exact.
                bound = np.float32(d.cut * d.scale)
                np.clip(out, -bound, bound, out=out)
        if d.loc != 0.0:
            np.add(out, np.float32(d.loc), out=out)

    def _transform_f32_compiled(
        self, kernels: Any, bits: np.ndarray, s: _Scratch, out: np.ndarray
    ) -> None:
        """The same values as the numpy branch of `_transform_f32`, from fused loops."""
        d = self.dist
        if d.kind == "uniform":
            kernels.uniform_f32(bits, out, np.float32(np.float32(d.scale) * np.float32(2.0**-23)))
        else:
            truncated = d.kind == "truncated_normal"
            xscale = np.float32(np.float32(ERF_SQRT2 if truncated else 1.0) * np.float32(2.0**-23))
            kernels.normal_f32(
                bits, out, xscale, np.float32(SQRT2 * d.scale), np.float32(d.cut * d.scale),
                truncated,
            )

    def _transform_f64(self, bits: np.ndarray, s: _Scratch, out: np.ndarray) -> None:
        d = self.dist
        _symmetric_f64(bits, s, out)
        if d.kind == "uniform":
            np.multiply(out, d.scale, out=out)
        else:
            truncated = d.kind == "truncated_normal"
            q = s.q
            # q = p - 1/2 uniform on (-HALF_MASS_2, HALF_MASS_2) gives Phi^-1 truncated to +-2.
            np.multiply(out, HALF_MASS_2 if truncated else 0.5, out=q)
            _ppnd16(q, out)
            np.multiply(out, d.scale, out=out)
            if truncated:
                np.clip(out, -d.cut * d.scale, d.cut * d.scale, out=out)
        if d.loc != 0.0:
            np.add(out, d.loc, out=out)


def region_runs(
    full_shape: Sequence[int], offset: Sequence[int], shape: Sequence[int]
) -> Iterator[tuple[int, int]]:
    """The region ``full[offset : offset + shape]`` as (flat start, length) runs in C order.

    Trailing axes the region spans completely merge with the first partial axis into one
    contiguous run of the full tensor's flat index space.
    """
    shape = tuple(shape)
    total = math.prod(shape)
    if total == 0:
        return
    k = len(shape)
    while k > 0 and shape[k - 1] == full_shape[k - 1] and offset[k - 1] == 0:
        k -= 1
    if k == 0:
        yield 0, total
        return
    run = math.prod(shape[k - 1 :])
    strides = [math.prod(full_shape[i + 1 :]) for i in range(len(full_shape))]
    outer = shape[: k - 1]
    for r in range(total // run):
        idx = np.unravel_index(r, outer) if outer else ()
        base = sum((offset[i] + int(idx[i])) * strides[i] for i in range(len(outer)))
        yield base + offset[k - 1] * strides[k - 1], run


@dataclass(frozen=True)
class ChunkJob:
    """One output chunk: the pieces (flat start in the full tensor, length) it is made of."""

    sampler: TensorSampler
    pieces: tuple[tuple[int, int], ...]
    count: int

    def fill(self, out: np.ndarray, scratch: _Scratch) -> np.ndarray:
        """Sample the pieces, one after the other, into ``out[:count]``; return that view."""
        pos = 0
        for start, length in self.pieces:
            self.sampler.fill(start, out[pos : pos + length], scratch)
            pos += length
        return out[: self.count]


def region_jobs(
    sampler: TensorSampler,
    full_shape: Sequence[int],
    offset: Sequence[int],
    shape: Sequence[int],
    chunk_elems: int = 1 << 20,
) -> Iterator[ChunkJob]:
    """Split the region ``full[offset : offset + shape]`` into jobs of at most
    ``chunk_elems`` elements, in C order."""
    pieces: list[tuple[int, int]] = []
    filled = 0
    for start, length in region_runs(full_shape, offset, shape):
        pos = 0
        while pos < length:
            take = min(length - pos, chunk_elems - filled)
            pieces.append((start + pos, take))
            filled += take
            pos += take
            if filled == chunk_elems:
                yield ChunkJob(sampler, tuple(pieces), filled)
                pieces, filled = [], 0
    if filled:
        yield ChunkJob(sampler, tuple(pieces), filled)


def iter_region(
    sampler: TensorSampler,
    full_shape: Sequence[int],
    offset: Sequence[int],
    shape: Sequence[int],
    chunk_elems: int = 1 << 20,
) -> Iterator[np.ndarray]:
    """Yield the region ``full[offset : offset + shape]`` in C order, in flat chunks.

    Each yielded array is a reused buffer of at most ``chunk_elems`` elements: consume it
    before advancing.
    """
    total = math.prod(shape)
    if total == 0:
        return
    out = np.empty(min(total, chunk_elems), dtype=numpy_dtype(sampler.dtype))
    scratch = _Scratch(min(BLOCK, out.shape[0]))
    for job in region_jobs(sampler, full_shape, offset, shape, out.shape[0]):
        yield job.fill(out, scratch)


def sample(
    sampler: TensorSampler,
    full_shape: Sequence[int],
    offset: Sequence[int] | None = None,
    shape: Sequence[int] | None = None,
) -> np.ndarray:
    """The whole region as one array (library convenience; the CLI streams instead)."""
    shape = tuple(full_shape if shape is None else shape)
    offset = tuple(0 for _ in shape) if offset is None else tuple(offset)
    out = np.empty(math.prod(shape), dtype=numpy_dtype(sampler.dtype))
    pos = 0
    for chunk in iter_region(sampler, full_shape, offset, shape):
        out[pos : pos + chunk.shape[0]] = chunk
        pos += chunk.shape[0]
    return out.reshape(shape)
