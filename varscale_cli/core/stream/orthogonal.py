"""Orthogonal matrices, the same bytes on every machine: a Householder QR of our own.

The frameworks (``torch.nn.init.orthogonal_``, ``keras.initializers.Orthogonal``,
``jax.nn.initializers.orthogonal``) all draw a normal matrix A of shape (max(r, c), min(r, c)),
take its QR decomposition, multiply Q's columns by the signs of R's diagonal and transpose Q
when the matrix is wide (r < c). Their LAPACK differs between builds and machines (blocking,
threads, FMA), so their bytes do too. varscale computes the same Q with its own QR:

* A[p, q] (m x k, m = max(r, c), k = min(r, c)) is element ``p k + q`` of the tensor's float64
  N(0, 1) stream (`transforms.transform_f64`: 64 bits per element, the AS241 quantile).
* Householder QR in a fixed order of IEEE double operations (``_native/vsqr.c`` documents the
  order; `householder_reference` below is the same algorithm in numpy, giving the same bytes).
  Each reflection uses alpha = -sign(x_j) ||x||, so v_j = x_j - alpha never cancels and
  v^T v = 2 ||x|| (||x|| + |x_j|) = -2 alpha v_j: tau = 2 / v^T v = -1 / (alpha v_j) needs no
  second sum. Householder keeps Q orthogonal to a few ulps whatever A's condition number
  (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., Thm. 19.4), which
  modified Gram-Schmidt does not.
* Columns are negated where R_jj < 0, which makes R's diagonal positive: Q = A R^-1 is then
  unique, Haar-distributed (Mezzadri, "How to generate random matrices from the classical
  compact groups", Notices AMS 54, 2007), the law the frameworks' sign fix gives.
* The tensor is ``gain * Q`` (wide: ``gain * Q^T``) in C order, rounded once from float64 to
  float32 and then, for float16 / bfloat16, to the stored dtype (as every other float32 law).

It is not elementwise: the whole matrix is computed once per tensor (and per partition of it:
a partition is cut from the whole matrix, so its values are those of the unpartitioned tensor).
Work is about 4 m k^2 - 4 k^3 / 3 flops and memory 16 m k bytes (A and Q in float64), hence
the limits `MAX_ORTHOGONAL_ELEMENTS` and `MAX_ORTHOGONAL_FLOPS`.
"""

from __future__ import annotations

import math

import numpy as np

from ..distributions import Distribution
from .native import compiled_kernels
from .philox import raw_words
from .transforms import Scratch, transform_f64

#: m k at most: A and Q in float64 take 16 m k bytes = 64 MiB at 2^22 elements, within the
#: 100 MiB memory budget of a run (docs/spec.md, "Orthogonal").
MAX_ORTHOGONAL_ELEMENTS = 1 << 22
#: 4 m k^2 - 4 k^3 / 3 at most: 2^35 = 3.4e10 flops. The compiled QR runs at about 2e9 flop/s
#: on one core (measured: 1024^2 in 0.94 s, 2048^2 = 2.3e10 flops in 12.2 s, 16384 x 256 in
#: 2.9 s, on a shared 2-core machine), so a QR within the limit takes at most ~20 s, and the
#: largest square one, 2048 x 2048, fits both limits (docs/spec.md, "Orthogonal").
MAX_ORTHOGONAL_FLOPS = 1 << 35


def matrix_shape(shape: tuple[int, ...], layout: str) -> tuple[int, int]:
    """(rows, columns) of the matrix a tensor is seen as: Keras / JAX (``keras``) rows =
    prod(shape[:-1]), columns = shape[-1]; torch rows = shape[0], columns = prod(shape[1:])."""
    if len(shape) < 2:
        raise ValueError(f"orthogonal needs a tensor of rank 2 or more, got shape {list(shape)}")
    if layout == "torch":
        return shape[0], math.prod(shape[1:])
    return math.prod(shape[:-1]), shape[-1]


def qr_flops(rows: int, cols: int) -> float:
    """About 2 m k^2 - 2 k^3 / 3 for R and as much again to form Q (m >= k)."""
    m, k = max(rows, cols), min(rows, cols)
    return 4.0 * m * k * k - 4.0 * k * k * k / 3.0


def check_size(rows: int, cols: int) -> None:
    """ValueError when the QR would exceed the documented memory or time limit."""
    if rows * cols > MAX_ORTHOGONAL_ELEMENTS or qr_flops(rows, cols) > MAX_ORTHOGONAL_FLOPS:
        raise ValueError(
            f"an orthogonal {rows} x {cols} matrix is over the limit of "
            f"{MAX_ORTHOGONAL_ELEMENTS:,} elements and {MAX_ORTHOGONAL_FLOPS:.3g} QR flops "
            f"(this one: {rows * cols:,} elements, {qr_flops(rows, cols):.3g} flops; "
            "docs/spec.md, Orthogonal); use variance_scaling for a tensor this large"
        )


def normal_matrix(key: tuple[int, int], m: int, k: int) -> np.ndarray:
    """A (m x k): element p k + q of the key's float64 N(0, 1) stream at [p, q]."""
    n = m * k
    out = np.empty(n, dtype=np.float64)
    block = 1 << 16
    s = Scratch(min(block, max(n, 1)))
    unit = Distribution("normal", 1.0)
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        transform_f64(unit, raw_words(key, lo, hi - lo, s.philox), s.views(hi - lo), out[lo:hi])
    return out.reshape(m, k)


def householder_reference(at: np.ndarray) -> np.ndarray:
    """Q^T (k x m) of A = at^T with R's diagonal positive: the numpy twin of
    ``vs_householder_qr`` (the same operations in the same order; ``at`` is overwritten)."""
    k, m = at.shape
    tau = np.zeros(k)
    sgn = np.ones(k)
    for j in range(k):
        v = at[j]
        sq = v[j:] * v[j:]
        s = float(sq[0])
        for x in sq[1:].tolist():
            s += x
        nrm = math.sqrt(s)
        x0 = float(v[j])
        if nrm == 0.0:
            continue
        alpha = -nrm if x0 >= 0.0 else nrm
        v0 = x0 - alpha
        v[j] = v0
        tau[j] = -1.0 / (alpha * v0)
        sgn[j] = -1.0 if alpha < 0.0 else 1.0
        _reflect(v, float(tau[j]), at, j, j + 1)
    qt = np.eye(k, m)
    for j in range(k - 1, -1, -1):
        if tau[j] != 0.0:
            _reflect(at[j], float(tau[j]), qt, j, j)
    qt[sgn < 0.0] *= -1.0
    return qt


def _reflect(v: np.ndarray, tau: float, rows: np.ndarray, j: int, q0: int) -> None:
    """rows[q0:, j:] -= (tau * (v . row)) * v, the dot products in increasing p."""
    block = rows[q0:, j:]
    if block.shape[0] == 0:
        return
    vj = v[j:]
    w = vj[0] * block[:, 0]
    for p in range(1, vj.shape[0]):
        w = w + vj[p] * block[:, p]
    t = tau * w
    block -= t[:, None] * vj[None, :]


def orthogonal_matrix(key: tuple[int, int], rows: int, cols: int) -> np.ndarray:
    """The float64 matrix (rows x cols) with orthonormal columns (tall) or rows (wide), before
    the gain: by the compiled QR when loaded, else by `householder_reference`; same bytes."""
    check_size(rows, cols)
    m, k = max(rows, cols), min(rows, cols)
    at = np.ascontiguousarray(normal_matrix(key, m, k).T)
    kernels = compiled_kernels()
    if kernels is not None:
        qt = np.empty((k, m), dtype=np.float64)
        kernels.householder_qr(at, qt)
    else:
        qt = householder_reference(at)
    # Rounding can leave an entry of a unit vector an ulp beyond 1 (a 1 x 1 matrix gives
    # 1 - 2 = -1.0000000000000002 as easily as -1): clip to the exact bound, an exact operation.
    np.clip(qt, -1.0, 1.0, out=qt)
    # qt is Q^T (k x m): a wide matrix (rows = k < cols = m) is Q^T itself.
    return qt if rows < cols else np.ascontiguousarray(qt.T)
