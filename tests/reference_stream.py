"""varscale's random stream re-implemented from docs/determinism.md alone.

This module imports nothing from varscale_cli: it is the doc turned into code, section by
section (the comments name the sections), and tests/test_reference_stream.py checks that it
reproduces every golden hash of the real sampler. Where the two disagreed, the doc was fixed.

Philox is plain Python integers; the transforms are numpy float32 / float64 array arithmetic,
each operation one correctly rounded IEEE operation, in the order the doc gives.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left
from fractions import Fraction
from functools import cache

import ml_dtypes
import numpy as np

STREAM_ID = "varscale-philox4x64-10-v1"
M64 = (1 << 64) - 1
F32 = np.float32
DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32,
          "float64": np.float64}


# --- 1. Key derivation ------------------------------------------------------------------------

def stream_key(seed: int, name: str) -> tuple[int, int]:
    digest = hashlib.sha256(
        STREAM_ID.encode("utf-8") + b"\x00" + seed.to_bytes(8, "little") + name.encode("utf-8")
    ).digest()
    return int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")


# --- 2. Random words: Philox4x64-10 -----------------------------------------------------------

def philox4x64_10(counter: int, key: tuple[int, int]) -> list[int]:
    c = [(counter >> (64 * j)) & M64 for j in range(4)]
    k0, k1 = key
    for _ in range(10):
        p0 = 0xD2E7470EE14C6C93 * c[0]
        p1 = 0xCA5A826395121157 * c[2]
        c = [(p1 >> 64) ^ c[1] ^ k0, p1 & M64, (p0 >> 64) ^ c[3] ^ k1, p0 & M64]
        k0, k1 = (k0 + 0x9E3779B97F4A7C15) & M64, (k1 + 0xBB67AE8584CAA73B) & M64
    return c


def words(key: tuple[int, int], first: int, count: int) -> np.ndarray:
    """64-bit words first .. first + count of the key's stream: word w is output w mod 4 of the
    block at counter w // 4 + 1."""
    blocks = range(first // 4, (first + count + 3) // 4)
    out = [x for b in blocks for x in philox4x64_10(b + 1, key)]
    skip = first % 4
    return np.array(out[skip : skip + count], dtype=np.uint64)


# --- 3. Which bits belong to which element ----------------------------------------------------

def bits32(key: tuple[int, int], start: int, n: int) -> np.ndarray:
    w = words(key, start // 2, (start + n + 1) // 2 - start // 2)
    halves = np.empty(2 * w.size, dtype=np.uint32)
    halves[0::2] = w & np.uint64(0xFFFFFFFF)  # even element: low half
    halves[1::2] = w >> np.uint64(32)  # odd element: high half
    return halves[start % 2 : start % 2 + n]


# --- 4. Bits to a symmetric uniform -----------------------------------------------------------

def uniform32(u: np.ndarray, c: float) -> np.ndarray:
    k = (u.view(np.int32) >> 8) | 1
    return k.astype(F32) * (F32(c) * F32(2.0**-23))


def uniform64(u: np.ndarray) -> np.ndarray:
    q = ((u >> np.uint64(11)) | np.uint64(1)).astype(np.int64) - (1 << 52)
    return q.astype(np.float64) * 2.0**-52


# --- 5. Constants (as printed in the doc) -----------------------------------------------------

ERF_SQRT2 = 0.95449973610364158560
LN2 = 0.69314718055994530942
SQRT_HALF = 0.70710678118654752440
GILES_P = [F32(c) for c in (
    2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)]
GILES_Q = [F32(c) for c in (
    -0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)]
ATANH32 = [F32(2.0 / (2 * j + 1)) for j in range(6, -1, -1)]  # 2/13, 2/11, ..., 2/3, 2
ATANH64 = [2.0 / (2 * j + 1) for j in range(11, -1, -1)]  # 2/23, ..., 2/3, 2
AS241_A = (2.5090809287301226727e3, 3.3430575583588128105e4, 6.7265770927008700853e4,
           4.5921953931549871457e4, 1.3731693765509461125e4, 1.9715909503065514427e3,
           1.3314166789178437745e2, 3.3871328727963666080e0)
AS241_B = (5.2264952788528545610e3, 2.8729085735721942674e4, 3.9307895800092710610e4,
           2.1213794301586595867e4, 5.3941960214247511077e3, 6.8718700749205790830e2,
           4.2313330701600911252e1, 1.0)
AS241_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
           1.27045825245236838258e0, 3.64784832476320460504e0, 5.76949722146069140550e0,
           4.63033784615654529590e0, 1.42343711074968357734e0)
AS241_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
           1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e0,
           2.05319162663775882187e0, 1.0)
AS241_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
           2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e0,
           5.46378491116411436990e0, 6.65790464350110377720e0)
AS241_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
           7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
           5.99832206555887937690e-1, 1.0)


def horner(coeffs, x: np.ndarray) -> np.ndarray:
    """p = c[0]; p = p * x + c[k] for k = 1, 2, ...: one rounded multiply, one rounded add."""
    p = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        p = p * x + c
    return p


# --- 5. Our logarithms ------------------------------------------------------------------------

def neg_log32_minus_2_5(y: np.ndarray) -> np.ndarray:
    """float32: ((-e) ln2 - 2.5) - log m, for y = m * 2^e, m in [1, 2)."""
    yi = y.view(np.int32)
    minus_e = 127 - (yi >> 23)
    m = ((yi & 0x007FFFFF) | 0x3F800000).view(F32)
    s = (m - F32(1)) / (m + F32(1))
    log_m = horner(ATANH32, s * s) * s
    return (minus_e.astype(F32) * F32(LN2) - F32(2.5)) - log_m


def neg_log64(y: np.ndarray) -> np.ndarray:
    """float64: -(log m + e ln2), m normalised to (fl(sqrt 2) / 2, fl(sqrt 2)]."""
    yi = y.view(np.int64)
    e = (yi >> 52) - 1023
    m = ((yi & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000).view(np.float64)
    big = m > 2.0 * SQRT_HALF
    m = np.where(big, m * 0.5, m)
    e = e + big
    s = (m - 1.0) / (m + 1.0)
    return -(horner(ATANH64, s * s) * s + e.astype(np.float64) * LN2)


# --- 5. Normal and truncated normal -----------------------------------------------------------

def normal32(u: np.ndarray, sigma: float, truncated: bool) -> np.ndarray:
    x = uniform32(u, ERF_SQRT2 if truncated else 1.0)
    y = (F32(1) - x) * (F32(1) + x)
    t = neg_log32_minus_2_5(y)  # w - 2.5
    v = horner(GILES_P, t)
    if not truncated:
        r = np.sqrt(t + F32(2.5)) - F32(3)
        v = np.where(t >= F32(2.5), horner(GILES_Q, r), v)
    v = (v * x) * F32(math.sqrt(2.0) * sigma)
    if truncated:
        bound = F32(2.0 * sigma)
        v = np.minimum(np.maximum(v, -bound), bound)
    return v


def ppnd16(q: np.ndarray) -> np.ndarray:
    """Phi^-1(1/2 + q), AS241 in q form."""
    central = q * (horner(AS241_A, 0.180625 - q * q) / horner(AS241_B, 0.180625 - q * q))
    r = np.sqrt(neg_log64(0.5 - np.abs(q)))
    near = horner(AS241_C, r - 1.6) / horner(AS241_D, r - 1.6)
    far = horner(AS241_E, r - 5.0) / horner(AS241_F, r - 5.0)
    tail = np.where(r <= 5.0, near, far)
    return np.where(np.abs(q) <= 0.425, central, np.where(q < 0, -tail, tail))


def normal64(u: np.ndarray, sigma: float, truncated: bool) -> np.ndarray:
    x = uniform64(u)
    z = ppnd16(x * (ERF_SQRT2 / 2.0 if truncated else 0.5)) * sigma
    if truncated:
        z = np.minimum(np.maximum(z, -2.0 * sigma), 2.0 * sigma)
    return z


# --- the whole stream -------------------------------------------------------------------------

@cache
def _values(dtype: str) -> tuple[list[Fraction], list[int]]:
    """Every non-negative finite value of a 16-bit dtype in increasing order with its bit
    pattern, then the value one pattern past the largest (where rounding overflows to inf)."""
    pats = np.arange(1 << 15, dtype=np.uint64).astype(np.uint16)  # sign bit clear
    with np.errstate(invalid="ignore"):
        vals = pats.view(DTYPES[dtype]).astype(np.float64)
    finite = [(Fraction(float(vals[i])), i) for i in range(1 << 15) if math.isfinite(vals[i])]
    (top, top_pat), (below_top, _) = finite[-1], finite[-2]
    finite.append((2 * top - below_top, top_pat + 1))
    return [v for v, _ in finite], [p for _, p in finite]


def round_once(x: float, dtype: str) -> float:
    """4. x rounded once, to nearest, ties to the even bit pattern, to dtype (exact fractions)."""
    if dtype in ("float32", "float64"):
        return float(np.array(x).astype(DTYPES[dtype]))  # numpy's casts round once, correctly
    vals, pats = _values(dtype)
    a = Fraction(abs(x))
    i = min(bisect_left(vals, a), len(vals) - 1)
    if vals[i] != a:
        lo, hi = i - 1, i
        d_lo, d_hi = a - vals[lo], vals[hi] - a
        i = lo if d_lo < d_hi or (d_lo == d_hi and pats[lo] % 2 == 0) else hi
    v = math.inf if i == len(vals) - 1 else float(vals[i])
    return math.copysign(v, x)


def largest_below(limit: float, dtype: str) -> float:
    """4. The largest value of dtype strictly below limit (a positive float64 here)."""
    if dtype in ("float32", "float64"):
        t = np.array(limit).astype(DTYPES[dtype])
        if float(t) >= limit:
            t = np.nextafter(t, np.array(-np.inf, dtype=DTYPES[dtype]))
        return float(t)
    if limit <= 0:
        return -largest_above(-limit, dtype)
    finite = _values(dtype)[0][:-1]
    return float(finite[bisect_left(finite, Fraction(limit)) - 1])


def largest_above(limit: float, dtype: str) -> float:
    """The smallest value of dtype strictly above a non-negative limit."""
    vals, _ = _values(dtype)
    i = bisect_left(vals, Fraction(limit))
    if vals[i] == Fraction(limit):
        i += 1
    return float(vals[i])


def sample(kind: str, scale: float, dtype: str, seed: int, name: str, n: int,
           loc: float = 0.0, start: int = 0) -> np.ndarray:
    """Elements start .. start + n of the tensor (kind, scale, loc; dtype; seed, stream name)."""
    out_dtype = DTYPES[dtype]
    if kind == "constant":
        return np.full(n, round_once(loc, dtype), dtype=np.float64).astype(out_dtype)
    key = stream_key(seed, name)
    if dtype == "float64":
        u = words(key, start, n)
        v = uniform64(u) * scale if kind == "uniform" else normal64(
            u, scale, kind == "truncated_normal")
        if loc != 0.0:
            v = v + loc
    else:
        u = bits32(key, start, n)
        v = uniform32(u, scale) if kind == "uniform" else normal32(
            u, scale, kind == "truncated_normal")
        if loc != 0.0:
            v = v + F32(loc)
        v = v.astype(out_dtype)  # 6. round to nearest even (float16, bfloat16)
    if kind == "uniform" and loc != 0.0:  # 4. [minval, maxval): clamp below maxval
        v = np.minimum(v, np.array([largest_below(loc + scale, dtype)]).astype(out_dtype))
    return v


def variance_scaling_sigma(scale: float, n: float) -> float:
    """The truncated normal's sigma of a corrected variance-scaling initializer (he_normal:
    scale 2, n = fan_in)."""
    return math.sqrt(scale / max(1.0, float(n))) / 0.87962566103423978
