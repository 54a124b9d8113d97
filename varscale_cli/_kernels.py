"""Optional compiled float32 transforms (numba): the numpy path's exact operations, fused.

The numpy path in ``sampling.py`` is the reference. These loops perform the *same* IEEE-754
float32 operations in the *same* order, element by element (numba does not contract a * b + c
into a fused multiply-add unless ``fastmath`` is set, and it is not), so they produce
bit-identical values; tests/test_kernels.py compares both on every distribution and dtype.
The random bits are the same too: they still come from numpy's Philox.

Why: the numpy path makes ~45 passes over each cache block; fused, the transform runs several
times faster and truncated normal sampling stops being compute-bound. Import is lazy and
optional (``pip install 'varscale[fast]'``); without numba, or with ``VARSCALE_NO_NUMBA=1``,
the numpy path runs and the bytes are the same.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .sampling import _ATANH_F32, _GILES_CENTRAL, _GILES_TAIL, LN2

_F1 = np.float32(1.0)
_LN2 = np.float32(LN2)
_SHIFT = np.float32(2.5)
_TAIL_AT = np.float32(5.0 - 2.5)
_THREE = np.float32(3.0)
(_A0, _A1, _A2, _A3, _A4, _A5, _A6) = _ATANH_F32
(_C0, _C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8) = _GILES_CENTRAL
(_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8) = _GILES_TAIL


@njit(cache=True, nogil=True, error_model="numpy")
def uniform_f32(bits: np.ndarray, out: np.ndarray, scale: np.float32) -> None:  # pragma: no cover
    """out = ((int32(u) >> 8) | 1) * (limit * 2^-23): `sampling._symmetric_f32`, fused.

    ``error_model="numpy"`` everywhere: numba's default Python model guards every ``/`` with
    a ZeroDivisionError branch, which stops LLVM from vectorising; IEEE results are the same.
    """
    for i in range(bits.shape[0]):
        k = (bits[i] >> 8) | 1
        out[i] = np.float32(k) * scale


@njit(cache=True, nogil=True, error_model="numpy")
def _one_minus_square(bits: np.ndarray, xscale: np.float32, x: np.ndarray, y: np.ndarray) -> None:  # pragma: no cover
    for i in range(bits.shape[0]):
        k = (bits[i] >> 8) | 1
        xi = np.float32(k) * xscale
        x[i] = xi
        y[i] = (_F1 - xi) * (_F1 + xi)


@njit(cache=True, nogil=True, error_model="numpy")
def _split_float(yi: np.ndarray, mi: np.ndarray, e: np.ndarray) -> None:  # pragma: no cover
    """Mantissa bits (as a float in [1, 2)) and minus the exponent of each float32 y > 0."""
    for i in range(yi.shape[0]):
        b = yi[i]
        e[i] = np.int32(127) - (b >> 23)
        mi[i] = (b & np.int32(0x007FFFFF)) | np.int32(0x3F800000)


@njit(cache=True, nogil=True, error_model="numpy")
def _erfinv_scaled(
    x: np.ndarray,
    m: np.ndarray,
    e: np.ndarray,
    out: np.ndarray,
    outscale: np.float32,
    bound: np.float32,
    truncated: bool,
    tails: bool,
) -> None:  # pragma: no cover
    for i in range(x.shape[0]):
        mv = m[i]
        t = mv + _F1
        s = (mv - _F1) / t
        s2 = s * s
        p = s2 * _A0 + _A1
        p = p * s2 + _A2
        p = p * s2 + _A3
        p = p * s2 + _A4
        p = p * s2 + _A5
        p = p * s2 + _A6
        logm = p * s
        w = np.float32(e[i]) * _LN2 - _SHIFT - logm
        c = w * _C0 + _C1
        c = c * w + _C2
        c = c * w + _C3
        c = c * w + _C4
        c = c * w + _C5
        c = c * w + _C6
        c = c * w + _C7
        c = c * w + _C8
        if tails:
            # Evaluated for every element and selected, so the loop stays branch-free and
            # vectorises; sqrt of the (unused) central values is finite, never NaN.
            r = np.sqrt(w + _SHIFT) - _THREE
            q = r * _T0 + _T1
            q = q * r + _T2
            q = q * r + _T3
            q = q * r + _T4
            q = q * r + _T5
            q = q * r + _T6
            q = q * r + _T7
            q = q * r + _T8
            c = q if w >= _TAIL_AT else c
        v = c * x[i] * outscale
        if truncated:
            v = min(max(v, -bound), bound)
        out[i] = v


def normal_f32(
    bits: np.ndarray,
    out: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    m: np.ndarray,
    e: np.ndarray,
    xscale: np.float32,
    outscale: np.float32,
    bound: np.float32,
    truncated: bool,
) -> None:
    """`sampling._erfinv_f32` and the scaling around it, fused into three loops.

    ``bits`` is the int32 view of the random bits; ``x``, ``y``, ``m`` float32 and ``e`` int32
    scratch of the same length.
    """
    _one_minus_square(bits, xscale, x, y)
    _split_float(y.view(np.int32), m.view(np.int32), e)
    _erfinv_scaled(x, m, e, out, outscale, bound, truncated, not truncated)


def warm_up() -> None:
    """Call every kernel once on tiny arrays, so numba loads them before real work needs them."""
    bits = np.zeros(8, np.int32)
    f = [np.empty(8, np.float32) for _ in range(4)]
    e = np.empty(8, np.int32)
    one = np.float32(1.0)
    uniform_f32(bits, f[0], one)
    normal_f32(bits, f[0], f[1], f[2], f[3], e, one, one, one, True)
