"""Exact rounding of a float64 scalar to a 16- or 8-bit float, in one step, in integers.

Per-tensor constants (a constant fill, a uniform's bounds, a truncation cut) become 16- or
8-bit values in several places. A library cast is not good enough there: ml_dtypes 0.5.x
converts float64 to bfloat16 through float32 (two roundings), 0.7 in one, so a value such as
1.0039062509313226 (just above the midpoint 1 + 2^-8 between bfloat16 1.0 and 1.0078125 after a
first rounding to float32 lands exactly on that midpoint) becomes 1.0 under one version and
1.0078125 under the other. Here the float64 value is split exactly into an integer significand
and a power of two (``math.frexp`` and ``math.ldexp`` are exact, unlike libm's transcendental
functions), and the significand is rounded to nearest, ties to even, with integer arithmetic.
The result is returned as the float64 that holds the rounded value exactly, so any later cast
to the storage dtype is exact and cannot depend on a library version.

Each format is IEEE-754-like: ``mantissa_bits`` stored fraction bits, smallest normal
exponent ``emin`` (subnormals below it, with the same quantum ``2^(emin - mantissa_bits)``),
and the largest finite value ``max``. Values whose rounding (with the exponent unbounded)
exceeds ``max`` overflow: to infinity where the format has one, else to NaN
(``float8_e4m3fn`` has no infinity: its exponent-and-mantissa-all-ones pattern is NaN, so
448 = 1.75 * 2^8 is its largest value and 464, halfway to the unrepresentable 480, rounds to
even, i.e. down to 448; ml_dtypes converts the same way).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class BinaryFormat:
    """A small binary floating-point format.

    Attributes:
        name: the dtype name.
        mantissa_bits: stored fraction bits (the significand has one more, implicit).
        emin: exponent of the smallest normal value, ``2^emin``.
        max: the largest finite value.
        has_inf: overflow gives +-inf (else NaN).
    """

    name: str
    mantissa_bits: int
    emin: int
    max: float
    has_inf: bool


# max = (2 - 2^-m) * 2^emax for IEEE formats; e4m3fn's top mantissa pattern is NaN, so 1.75.
FORMATS: dict[str, BinaryFormat] = {
    f.name: f
    for f in (
        BinaryFormat("float16", 10, -14, (2.0 - 2.0**-10) * 2.0**15, True),
        BinaryFormat("bfloat16", 7, -126, (2.0 - 2.0**-7) * 2.0**127, True),
        BinaryFormat("float8_e5m2", 2, -14, (2.0 - 2.0**-2) * 2.0**15, True),
        BinaryFormat("float8_e4m3fn", 3, -6, 1.75 * 2.0**8, False),
    )
}


#: The sampled 8-bit floats and their saturation bound. A sampler computes in float32, clamps
#: to [-max, max] (exact: a comparison and a copy), then rounds to nearest even (ml_dtypes' cast,
#: checked against `round_to` in tests/test_float8.py). Why saturate: float8_e4m3fn has no
#: infinity, and an unclamped cast turns |x| >= 464 into NaN (ml_dtypes; 464 is the midpoint to
#: the unrepresentable 480), while a varscale law must never produce NaN; float8_e5m2 would give
#: +-inf from 61440, which no weight should be either. Clamping to the largest finite value is
#: the OCP 8-bit floating point specification's saturation mode (torch's float8 scaling recipes
#: and CUDA's __NV_SATFINITE conversion do the same), so an out-of-range value becomes the
#: nearest finite one, +-448 or +-57344. Variance-scaling laws never get near either; a
#: constant or a wide uniform can.
SATURATING: dict[str, float] = {
    name: FORMATS[name].max for name in ("float8_e4m3fn", "float8_e5m2")
}


def smallest_normal(dtype: str) -> float:
    """2^emin of a small format: below it values are subnormal (fewer significant bits)."""
    return math.ldexp(1.0, FORMATS[dtype].emin)


def round_to(x: float, dtype: str) -> float:
    """``x`` rounded to nearest, ties to even, to the format ``dtype``, as an exact float64.

    float32 and float64 are handled too (float32 by the same integer rounding, float64 is the
    identity), so callers need no special case. NaN stays NaN; +-0 and +-inf stay as they are
    (inf becomes NaN in a format without infinities).
    """
    if dtype == "float64":
        return float(x)
    fmt = FORMATS.get(dtype) or _FLOAT32
    x = float(x)
    if math.isnan(x) or x == 0.0:
        return x
    if math.isinf(x):
        return x if fmt.has_inf else math.nan
    m, e = math.frexp(abs(x))  # |x| = m * 2^e, m in [1/2, 1): exact
    significand = int(math.ldexp(m, 53))  # exact integer < 2^53: |x| = significand * 2^(e - 53)
    # The quantum of the result: 2^(exponent - mantissa_bits), where the exponent of |x|
    # (in [2^(e-1), 2^e)) is e - 1, or emin for subnormals.
    quantum_exp = max(e - 1, fmt.emin) - fmt.mantissa_bits
    shift = quantum_exp - (e - 53)  # >= 53 - 1 - mantissa_bits > 0 for every format here
    units, rest = divmod(significand, 1 << shift)
    half = 1 << (shift - 1)
    if rest > half or (rest == half and units & 1):
        units += 1
    rounded = math.ldexp(units, quantum_exp)  # exact: units has at most mantissa_bits + 2 bits
    if rounded > fmt.max:
        rounded = math.inf if fmt.has_inf else math.nan
    return math.copysign(rounded, x)


def below(limit: float, dtype: str) -> float:
    """The largest value of ``dtype`` strictly below ``limit`` (a finite float64), exactly.

    This is ``round_to(limit)`` when that rounds down, else the value one quantum below it.
    """
    r = round_to(limit, dtype)
    if r < limit:
        return r
    return _next_down(r, dtype)


def _next_down(v: float, dtype: str) -> float:
    """The next value of ``dtype`` below the representable ``v``."""
    if dtype == "float64":
        return math.nextafter(v, -math.inf)
    fmt = FORMATS.get(dtype) or _FLOAT32
    if math.isinf(v) and v > 0:
        return fmt.max
    # The quantum just below v: for v > 0 a power of two 2^k is approached from below with the
    # smaller quantum of the binade under it, hence frexp of v itself for v > 0 and of the
    # binade of |v| for v <= 0 (moving away from zero keeps the binade's quantum).
    if v > 0:
        m, e = math.frexp(v)
        exp = e - 1 if m != 0.5 else e - 2  # v = 2^(e-1) exactly: step into the binade below
    elif v == 0:
        return -math.ldexp(1.0, fmt.emin - fmt.mantissa_bits)
    else:
        _, e = math.frexp(-v)
        exp = e - 1
    quantum = math.ldexp(1.0, max(exp, fmt.emin) - fmt.mantissa_bits)
    out = v - quantum  # exact: both are multiples of the quantum, well inside float64
    if out < -fmt.max:
        return -math.inf if fmt.has_inf else math.nan
    return out


_FLOAT32 = BinaryFormat("float32", 23, -126, (2.0 - 2.0**-23) * 2.0**127, True)
