"""Warnings about laws a float8 tensor can barely hold.

float8_e4m3fn's smallest normal value is 2^-6 = 0.015625 and float8_e5m2's 2^-14; below them
a value has fewer significant bits (subnormal) or rounds to zero. A variance-scaling std of
sqrt(1 / 4096) = 0.0156 already puts most of an e4m3fn tensor there, which is legal but rarely
what a user wants (float8 training recipes scale tensors into the normal range first), so the
plan says so, with the fraction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..core.rounding import FORMATS, SATURATING, smallest_normal
from .resolve import ResolvedTensor

#: Warn when more than this fraction of the values would be subnormal or zero.
MOSTLY = 0.5


def subnormal_fraction(t: ResolvedTensor) -> float | None:
    """The probability that a value of ``t`` is stored as a subnormal or zero, for the sampled
    float8 types (None for other dtypes and for constants). A value rounds to a normal exactly
    when |x| reaches the midpoint between the largest subnormal and the smallest normal,
    ``2^emin - q / 2`` with the subnormal quantum ``q = 2^(emin - mantissa_bits)``."""
    dtype = t.plan.dtype
    if dtype not in SATURATING or t.distribution.kind == "constant":
        return None
    fmt = FORMATS[dtype]
    edge = smallest_normal(dtype) - 0.5 * math.ldexp(1.0, fmt.emin - fmt.mantissa_bits)
    lo, hi = t.distribution.cdf(np.array([-edge, edge]))
    return float(hi - lo)


def float8_warnings(tensors: Iterable[ResolvedTensor]) -> list[str]:
    """One line per float8 tensor most of whose values would be subnormal or zero."""
    out = []
    for t in tensors:
        frac = subnormal_fraction(t)
        if frac is not None and frac > MOSTLY:
            out.append(
                f"Warning: tensor '{t.name}': {frac:.1%} of its {t.plan.dtype} values will be "
                f"subnormal or zero (std {t.distribution.std:.3g}, smallest normal "
                f"{smallest_normal(t.plan.dtype):g}); consider bfloat16 or float16, or a "
                "larger scale"
            )
    return out
