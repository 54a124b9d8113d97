"""The compiled float32 transforms (``vskernels.c`` beside this file), called through ctypes.

They perform the numpy path's exact IEEE operations fused into one loop per element, so
the bytes are identical (tests/test_kernels.py) and the transform runs several times faster.
ctypes releases the GIL during each call, so sampling threads run in parallel.

Why C and not numba: numba gave the same bytes and speed, but importing it and loading its
LLVM-compiled code cost ~0.6 s and ~120 MB of resident memory per process, more than the
whole streaming pipeline's 100 MiB budget. The extension is built at install time when a C
compiler is present (``optional=True`` in setup.py); without it the numpy path runs.
"""

from __future__ import annotations

import ctypes
import importlib.util
import math

import numpy as np

from ..core.distributions import ERF_AS_A, ERF_AS_P
from ..core.stream.coefficients import ATANH_F32, GILES_CENTRAL, GILES_TAIL, LN2


def _library_path() -> str:
    """The built extension's file (the module is only a container for the C functions)."""
    spec = importlib.util.find_spec("varscale_cli._native.vskernels")
    if spec is None or spec.origin is None:
        raise ImportError("the C extension varscale_cli._native.vskernels is not built")
    return spec.origin


_lib = ctypes.CDLL(_library_path())
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_F = ctypes.c_float
_lib.vs_uniform_f32.argtypes = (_P, _P, _I64, _F)
_lib.vs_truncnormal_f32.argtypes = (_P, _P, _I64, _F, _F, _F, _F, _P, _P)
_lib.vs_normal_f32.argtypes = (_P, _P, _I64, _F, _F, _F, _P, _P, _P)
_D = ctypes.c_double
_lib.vs_moments_f32.argtypes = (_P, _I64, _D, _D, _P)
_U64 = ctypes.c_uint64
_INT = ctypes.c_int
_lib.vs_fill32.argtypes = (
    _U64, _U64, _U64, _U64, _I64, _INT, _INT, _F, _F, _F, _INT, _F, _F, _P, _P, _P, _P
)
_lib.vs_round_f16.argtypes = (_P, _P, _I64)
_lib.vs_round_bf16.argtypes = (_P, _P, _I64)
_lib.vs_householder_qr.argtypes = (_P, _P, _P, _P, _I64, _I64)
_lib.vs_ks_normal.argtypes = (_P, _I64, _D, _D, _D, _INT, _D, _D, _P)
_lib.vs_ks_normal.restype = _D
_lib.vs_philox_words.argtypes = (_INT, _U64, _U64, _P, _I64, _P)
_lib.vs_philox_words.restype = _INT
_lib.vs_gather32.argtypes = (_P, _P, _I64, _I64, _P)
_lib.vs_gather32.restype = None
_lib.vs_first_diff.argtypes = (_P, _P, _I64)
_lib.vs_first_diff.restype = _I64
for _fn in (
    _lib.vs_uniform_f32, _lib.vs_truncnormal_f32, _lib.vs_normal_f32, _lib.vs_moments_f32,
    _lib.vs_fill32, _lib.vs_round_f16, _lib.vs_round_bf16, _lib.vs_householder_qr,
):
    _fn.restype = None

# The very float32 values the numpy path uses, handed over as arrays (kept alive here).
_AT = np.array(ATANH_F32, dtype=np.float32)
_CE = np.array(GILES_CENTRAL, dtype=np.float32)
_TA = np.array(GILES_TAIL, dtype=np.float32)
_LN2 = np.float32(LN2)
_ERF = np.array((ERF_AS_P, *ERF_AS_A), dtype=np.float64)  # p, a1 .. a5
_TA_PTR = _AT.ctypes.data, _CE.ctypes.data, _TA.ctypes.data

#: `fill32`'s law and output codes (vsstream.c's enums).
FILL_KINDS = {"uniform": 0, "truncated_normal": 1, "normal": 2}
FILL_DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2}


def _ptr(a: np.ndarray) -> int:
    assert a.flags.c_contiguous
    return a.ctypes.data


def uniform_f32(bits: np.ndarray, out: np.ndarray, scale: np.float32) -> None:
    """out = ((int32 bits >> 8) | 1) * scale."""
    _lib.vs_uniform_f32(_ptr(bits), _ptr(out), out.shape[0], scale)


def normal_f32(
    bits: np.ndarray, out: np.ndarray, xscale: np.float32, outscale: np.float32,
    bound: np.float32, truncated: bool,
) -> None:
    """The erfinv transform and its scaling (and the clip when truncated)."""
    if truncated:
        _lib.vs_truncnormal_f32(
            _ptr(bits), _ptr(out), out.shape[0], xscale, outscale, bound, _LN2, _ptr(_AT), _ptr(_CE)
        )
    else:
        _lib.vs_normal_f32(
            _ptr(bits), _ptr(out), out.shape[0], xscale, outscale, _LN2, _ptr(_AT), _ptr(_CE), _ptr(_TA)
        )


def moments_f32(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Finite-value moments and counts of a float32 chunk, in one C pass over memory:
    ``[n_finite, mean, m2, m3, m4, min, max, zeros, nans, infs, below, above]``."""
    out = np.empty(12, dtype=np.float64)
    _lib.vs_moments_f32(_ptr(x), x.shape[0], lo, hi, _ptr(out))
    return out


def ks_normal(
    xs: np.ndarray, loc: float, scale: float, cuts: tuple[float, float] | None
) -> float:
    """Kolmogorov-Smirnov distance of the sorted float64 sample ``xs`` from the normal law
    (loc, scale), truncated when ``cuts`` gives the standard normal CDF at both cut points."""
    assert xs.dtype == np.float64
    lo, hi = cuts if cuts is not None else (0.0, 1.0)
    return float(_lib.vs_ks_normal(
        _ptr(xs), xs.shape[0], loc, scale, math.sqrt(2.0), cuts is not None, lo, hi, _ptr(_ERF)
    ))


def gather32(x: np.ndarray, positions: np.ndarray, first: int) -> np.ndarray:
    """``x[positions - first]`` for a contiguous 1-D ``x`` of a 4-byte dtype and int64
    ``positions`` inside ``first .. first + len(x)``, in one C loop."""
    assert x.dtype.itemsize == 4 and x.flags.c_contiguous and positions.dtype == np.int64
    pos = np.ascontiguousarray(positions)
    out = np.empty(pos.shape[0], dtype=x.dtype)
    _lib.vs_gather32(_ptr(x), _ptr(pos), pos.shape[0], first, _ptr(out))
    return out


def first_diff(a: np.ndarray, b: np.ndarray) -> int:
    """The index of the first byte where the equally long contiguous arrays ``a`` and ``b``
    differ, or -1."""
    assert a.nbytes == b.nbytes
    return int(_lib.vs_first_diff(_ptr(a), _ptr(b), a.nbytes))


def fill32(
    key: tuple[int, int], first: int, out: np.ndarray, kind: str, odtype: str,
    xscale: np.float32, outscale: np.float32, bound: np.float32, loc: np.float32 | None,
) -> None:
    """Elements ``first .. first + len(out)`` of the 32-bit stream ``key``, transformed by
    ``kind``'s float32 kernel (plus ``loc``), rounded to ``odtype``, in one pass (vsstream.c)."""
    at, ce, ta = _TA_PTR
    _lib.vs_fill32(
        key[0], key[1], first & 0xFFFFFFFFFFFFFFFF, first >> 64, out.shape[0],
        FILL_KINDS[kind], FILL_DTYPES[odtype], xscale, outscale, bound,
        loc is not None, 0.0 if loc is None else loc, _LN2, at, ce, ta, _ptr(out),
    )


#: vsphilox.h's Philox versions, for `philox_words`.
PHILOX_PATHS = {"scalar": 0, "avx2": 1, "avx512": 2}


def philox_words(path: str, key: tuple[int, int], block: int, nblocks: int) -> np.ndarray | None:
    """The 64-bit words of Philox blocks ``block + 1 .. block + nblocks`` of ``key`` (numpy's
    counter ``block`` onwards) by version ``path``, or None when this CPU lacks it: for the
    tests that hold every version to numpy's words (the stream itself runs the widest)."""
    out = np.empty(4 * nblocks, dtype=np.uint64)
    ctr = np.array([(block >> (64 * j)) & 0xFFFFFFFFFFFFFFFF for j in range(4)], dtype=np.uint64)
    if _lib.vs_philox_words(PHILOX_PATHS[path], key[0], key[1], _ptr(ctr), nblocks, _ptr(out)) < 0:
        return None
    return out.view("<u8")


def round16(x: np.ndarray, out: np.ndarray, odtype: str) -> None:
    """float32 ``x`` rounded to nearest even into ``out``'s 16-bit ``odtype`` (the fused
    stream's conversion, exported so tests can compare it with numpy / ml_dtypes)."""
    fn = _lib.vs_round_f16 if odtype == "float16" else _lib.vs_round_bf16
    fn(_ptr(x), _ptr(out), x.shape[0])


def householder_qr(at: np.ndarray, qt: np.ndarray) -> None:
    """qt = Q^T (k x m, R's diagonal positive) of A = at^T; ``at`` (k x m float64, C order)
    is overwritten by the reflectors (``vsqr.c``; its numpy twin is
    ``core.stream.orthogonal.householder_reference``)."""
    k, m = at.shape
    assert at.dtype == qt.dtype == np.float64 and qt.shape == (k, m) and m >= k
    work = np.empty(2 * max(k, 1), dtype=np.float64)
    _lib.vs_householder_qr(_ptr(at), _ptr(qt), _ptr(work), _ptr(work[k:]), m, k)
