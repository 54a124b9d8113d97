"""The fused native stream: a float32-computed tensor range straight from the key, in C.

``vs_fill32`` (varscale_cli/_native/vsstream.c) computes Philox4x64-10, the float32 transform,
the float32 ``+ loc`` and the round-to-nearest-even cast to float16 / bfloat16 in one pass
per L1-sized tile, into the output buffer, without the GIL. It performs the numpy reference
path's exact operations (`philox.raw_bits32`, `transforms.transform_f32`, numpy's / ml_dtypes'
casts), so the bytes are the same (tests/test_fused.py); that path remains the reference and
the fallback when the extension is not built. float64 stays on numpy (AS241 in float64).
"""

from __future__ import annotations

import numpy as np

from ..distributions import Distribution
from .native import Kernels
from .transforms import general_truncation, kernel_constants

#: Output dtypes the fused kernel writes (the 32-bit-stream dtypes).
FUSED_DTYPES = ("float32", "float16", "bfloat16")


def fused_fill(
    kernels: Kernels, dist: Distribution, dtype: str, key: tuple[int, int], start: int,
    out: np.ndarray,
) -> bool:
    """Fill ``out`` with elements ``start ..`` of the (key, dist, dtype) stream; False (and
    nothing written) when the fused kernel does not cover the case."""
    if dtype not in FUSED_DTYPES or dist.kind == "constant" or not out.flags.c_contiguous:
        return False
    if general_truncation(dist):  # other bounds than [-2, 2]: transforms.transform_f32's route
        return False
    xscale, outscale, bound = kernel_constants(dist)
    loc = np.float32(dist.loc) if dist.loc != 0.0 else None
    kernels.fill32(key, start, out, dist.kind, dtype, xscale, outscale, bound, loc)
    return True
