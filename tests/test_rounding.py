"""Exact float64 -> 16/8-bit rounding against a rational reference, for every tie class.

The reference knows nothing of the implementation: it lists every finite value of the format
(from its bit patterns), finds the nearest one with exact fractions, breaks ties towards the
even bit pattern, and overflows where the pattern after the largest finite value would win.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from varscale_cli.core.rounding import FORMATS, below, round_to

STORAGE = {
    "float16": (np.float16, np.uint16),
    "bfloat16": (ml_dtypes.bfloat16, np.uint16),
    "float8_e5m2": (ml_dtypes.float8_e5m2, np.uint8),
    "float8_e4m3fn": (ml_dtypes.float8_e4m3fn, np.uint8),
}


def _table(dtype: str) -> tuple[list[Fraction], list[int], Fraction, int]:
    """Non-negative finite values in increasing order with their bit patterns, and the
    'phantom' value one pattern past the largest (where rounding overflows) with its pattern."""
    real, raw = STORAGE[dtype]
    width = np.dtype(raw).itemsize * 8
    patterns = np.arange(1 << (width - 1), dtype=np.uint64).astype(raw)  # sign bit clear
    with np.errstate(invalid="ignore"):  # NaN patterns; dropped below
        values = patterns.view(real).astype(np.float64)
    finite = np.isfinite(values)
    vals = [Fraction(float(v)) for v in values[finite]]
    pats = [int(p) for p in patterns[finite]]
    order = sorted(range(len(vals)), key=vals.__getitem__)
    vals = [vals[i] for i in order]
    pats = [pats[i] for i in order]
    top, top_pat = vals[-1], pats[-1]
    step = top - vals[-2] if pats[-1] - pats[-2] == 1 else None
    assert step is not None
    return vals, pats, top + step, top_pat + 1


def _reference(x: float, table: tuple[list[Fraction], list[int], Fraction, int], has_inf: bool) -> float:
    vals, pats, phantom, phantom_pat = table
    if x == 0.0:
        return x
    a = Fraction(abs(x))
    cands = [*vals, phantom]
    cpats = [*pats, phantom_pat]
    i = bisect_left(cands, a)
    if i < len(cands) and cands[i] == a:
        pick = i
    elif i >= len(cands):
        pick = len(cands) - 1
    else:
        lo, hi = i - 1, i
        d_lo, d_hi = a - cands[lo], cands[hi] - a
        pick = lo if d_lo < d_hi or (d_lo == d_hi and cpats[lo] % 2 == 0) else hi
    if pick == len(cands) - 1:
        v = math.inf if has_inf else math.nan
    else:
        v = float(cands[pick])
    return math.copysign(v, x)


def _cases(dtype: str, table: tuple[list[Fraction], list[int], Fraction, int]) -> list[float]:
    vals, _, phantom, _ = table
    floats = [float(v) for v in vals] + [float(phantom)]
    out: list[float] = []
    rng = random.Random(20261202)
    pairs = list(zip(floats, floats[1:], strict=False))
    if len(pairs) > 4000:  # 16-bit formats: both ends, the subnormal/normal seam, a sample
        normal = next(i for i, v in enumerate(floats) if v >= 2.0 ** FORMATS[dtype].emin)
        keep = {*range(300), *range(len(pairs) - 300, len(pairs)), *range(normal - 50, normal + 50)}
        keep |= set(rng.sample(range(len(pairs)), 3000))
        pairs = [pairs[i] for i in sorted(keep)]
    for a, b in pairs:
        mid = (a + b) / 2  # exact in float64: the formats have far fewer bits
        out += [a, mid, math.nextafter(mid, -math.inf), math.nextafter(mid, math.inf)]
    out += [float(phantom) * 4, 1e300, 5e-324, floats[1] / 2, floats[1] / 4]
    out += [rng.uniform(0, float(phantom)) for _ in range(2000)]
    out += [math.ldexp(rng.random() + 0.5, rng.randint(-160, 140)) for _ in range(2000)]
    return out + [-c for c in out]


@pytest.mark.parametrize("dtype", sorted(STORAGE))
def test_round_to_matches_exact_reference_on_every_tie_class(dtype: str) -> None:
    table = _table(dtype)
    fmt = FORMATS[dtype]
    assert float(table[0][-1]) == fmt.max
    bad = []
    for x in _cases(dtype, table):
        want = _reference(x, table, fmt.has_inf)
        got = round_to(x, dtype)
        same = (math.isnan(want) and math.isnan(got)) or (
            want == got and math.copysign(1, want) == math.copysign(1, got)
        )
        if not same:
            bad.append((x, want, got))
    assert not bad, bad[:5]


@pytest.mark.parametrize("dtype", ["float16", "float8_e5m2", "float8_e4m3fn"])
def test_round_to_agrees_with_single_rounding_casts(dtype: str) -> None:
    # numpy's float64 -> float16 cast and ml_dtypes' float8 casts round once, correctly.
    real, _ = STORAGE[dtype]
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(5000) * s for s in (1e-6, 1e-3, 1.0, 100.0)])
    want = x.astype(real).astype(np.float64)
    got = np.array([round_to(float(v), dtype) for v in x])
    np.testing.assert_array_equal(got, want)


def test_the_double_rounding_case_of_ml_dtypes_0_5() -> None:
    # Just above bfloat16's midpoint 1 + 2^-8 between 1.0 and 1.0078125; float32 rounding first
    # lands on the midpoint, whose tie then goes to even (1.0): one-step rounding gives 1.0078125.
    assert round_to(1.0039062509313226, "bfloat16") == 1.0078125
    assert round_to(1.0 + 2.0**-8, "bfloat16") == 1.0  # the exact tie goes to even


def test_float32_and_float64() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(5000) * np.exp(rng.uniform(-80, 80, 5000))
    assert [round_to(float(v), "float32") for v in x] == [float(np.float32(v)) for v in x]
    assert round_to(0.1, "float64") == 0.1


@pytest.mark.parametrize("dtype", [*sorted(STORAGE), "float32"])
def test_below_is_the_largest_value_strictly_under_the_limit(dtype: str) -> None:
    rng = random.Random(5)
    top = FORMATS[dtype].max if dtype in FORMATS else float(np.finfo(np.float32).max)
    for limit in [1.0, 0.5, 3.0, 1.0039062509313226, 2.0**-20, -1.0, 0.0, -2.0**-30,
                  *(rng.uniform(-top / 2, top / 2) for _ in range(200))]:
        v = below(limit, dtype)
        assert v < limit
        assert round_to(v, dtype) == v
        # Nothing of the format lies in (v, limit): the next value up from v is >= limit.
        nxt = -below(-v, dtype)
        assert nxt >= limit, (limit, v, nxt)
