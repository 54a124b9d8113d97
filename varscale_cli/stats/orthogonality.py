"""The exact check of an orthogonal tensor: Q^T Q = gain^2 I to within its rounding.

The entries' marginal law is tested like any law (mean, variance, KS against
`Distribution.cdf`); what makes the matrix orthogonal is checked here, on the whole matrix
(within `core.stream.orthogonal.MAX_ORTHOGONAL_ELEMENTS`, so it fits in memory).

Tolerance, for the Gram matrix G of the m-vectors (columns of a tall matrix, rows of a wide
one), computed here in float64: a stored entry is x = g q (1 + d) with |d| <= u, u the unit
roundoff of the stored dtype (2^-24 for float32; 2^-8 + 2^-24 + 2^-32 for bfloat16, rounded from
float32; 2^-53 for float64). Then |G_ij - g^2 (Q^T Q)_ij| <= g^2 (2 u + u^2) sum_p |q_pi q_pj|
<= g^2 (2 u + u^2) (Cauchy-Schwarz, unit columns). Q itself, from Householder in float64, is
orthogonal to within c m k u64 (Higham, Thm. 19.4; c = 4 here), and the float64 Gram product
here adds at most m u64 g^2 (1 + 2 u)^2. The sum of the three is the tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..core.distributions import Distribution

__all__ = ["gram_error", "orthogonality_tolerance"]

_U64 = 2.0**-53


def _unit_roundoff(dtype: np.dtype) -> float:
    dtype = np.dtype(dtype)
    if dtype.itemsize == 8:
        return _U64
    u32 = 2.0**-24
    if dtype.itemsize == 4:
        return u32
    u = 0.5 * float(np.finfo(dtype).eps)  # float16 2^-11, bfloat16 2^-8
    return u + u32 + u * u32  # rounded twice: float64 -> float32 -> dtype


def orthogonality_tolerance(dist: Distribution, dtype: np.dtype) -> float:
    """Largest |G_ij - gain^2 I_ij| a correct tensor stored as ``dtype`` can show."""
    u = _unit_roundoff(dtype)
    g2 = dist.scale * dist.scale
    m, k = dist.dim, min(dist.rows, dist.cols)
    return g2 * (2.0 * u + u * u + 4.0 * m * k * _U64 + m * _U64 * (1.0 + 2.0 * u) ** 2)


def gram_error(values: Iterable[np.ndarray], dist: Distribution) -> float:
    """max |G - gain^2 I| over the whole matrix (the chunks in C order)."""
    flat = np.concatenate([np.asarray(c, dtype=np.float64).reshape(-1) for c in values])
    mat = flat.reshape(dist.rows, dist.cols)
    if dist.rows < dist.cols:
        mat = mat.T  # orthonormal rows: their Gram matrix
    if not np.all(np.isfinite(mat)):
        return math.inf
    gram = mat.T @ mat
    gram[np.diag_indices_from(gram)] -= dist.scale * dist.scale
    return float(np.max(np.abs(gram))) if gram.size else 0.0
