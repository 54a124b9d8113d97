"""Complex values: the bits of element ``i`` -> one complex64 / complex128 value of a law.

The layout (docs/determinism.md, "Complex tensors"): element ``i`` of a complex tensor reads
two consecutive values of the counter stream, 32-bit values ``2i, 2i + 1`` (bit offset
``64 i``) for complex64 and 64-bit words ``2i, 2i + 1`` (bit offset ``128 i``) for complex128,
so any element range is computed without the rest, as for the real dtypes.

* ``complex_normal``: the first value is the real part, the second the imaginary part, each
  through the real normal transform of the parts' dtype (float32 or float64). A complex64
  normal tensor of n elements is exactly a float32 normal stream of 2n elements seen as pairs,
  so it takes the compiled kernels when they are loaded, with the same bytes.
* ``complex_uniform`` and ``complex_truncated_normal`` (JAX's two polar laws): the first value
  gives the modulus, the second the phase, both computed in float64 (for complex64 too, then
  rounded once to float32 per part): uniforms u = (b + 1/2) 2^-32 or (b' + 1/2) 2^-52 for the
  top 52 bits b' of a word, in (0, 1) and exact (b' + 1/2 < 2^52 needs 53 bits). The modulus is ``scale sqrt(u1)`` (disk:
  P(|z| <= r) = r^2 / scale^2) or ``scale sqrt(-log(1 - (1 - e^-c^2) u1))`` (JAX's inverse CDF of
  Exp(1) cut at c^2, with varscale's own logarithm); the phase 2 pi u2 is taken per octant:
  8 u2 = k + f exactly, t = f pi/4 (even k) or (1 - f) pi/4 (odd k, f and 1 - f both exact), sin
  and cos of t in [0, pi/4] by their Taylor polynomials (`coefficients.SIN_F64`), then swapped
  (odd k) and rotated by the quadrant k // 2 with exact sign changes. Only + - * / sqrt: no
  libm sin, cos, exp or log, whose last bits vary across machines.
"""

from __future__ import annotations

import numpy as np

from ..distributions import Distribution
from . import coefficients as co
from .philox import raw_bits32, raw_words
from .transforms import Scratch, _horner, neg_log_f64, transform_f32, transform_f64

#: Complex dtype -> the dtype of its parts.
PART_DTYPES: dict[str, type[np.floating]] = {"complex64": np.float32, "complex128": np.float64}


def fill_complex(
    dist: Distribution, dtype: str, key: tuple[int, int], start: int, out: np.ndarray, s: Scratch
) -> None:
    """out = elements ``start .. start + len(out)`` of a complex tensor; ``2 len(out)`` must
    not exceed ``s.n`` (the normal parts go through the real transforms' scratch)."""
    n = out.shape[0]
    wide = dtype == "complex128"
    parts = out.view(PART_DTYPES[dtype])  # re0, im0, re1, im1, ...
    if dist.kind == "complex_normal":
        part = Distribution("normal", dist.scale)
        v = s.views(2 * n)
        if wide:
            transform_f64(part, raw_words(key, 2 * start, 2 * n, s.philox), v, parts)
        else:
            transform_f32(part, raw_bits32(key, 2 * start, 2 * n, s.philox), v, parts)
        return
    u = _unit_uniforms(key, start, n, wide, s)
    radius = _radius(dist, u[0::2])
    cos, sin = _cos_sin_2pi(u[1::2])
    np.multiply(radius, cos, out=cos)
    np.multiply(radius, sin, out=sin)
    parts[0::2] = cos  # one rounding to float32 for complex64 (nearest even)
    parts[1::2] = sin


def _unit_uniforms(key: tuple[int, int], start: int, n: int, wide: bool, s: Scratch) -> np.ndarray:
    """2n uniforms in (0, 1), exact in float64: the element's two stream values."""
    if wide:
        words = raw_words(key, 2 * start, 2 * n, s.philox)
        u = (words >> np.uint64(12)).astype(np.float64)  # exact: < 2^52
        step = 2.0**-52
    else:
        u = raw_bits32(key, 2 * start, 2 * n, s.philox).astype(np.float64)
        step = 2.0**-32
    np.add(u, 0.5, out=u)
    np.multiply(u, step, out=u)  # a power of two: exact
    return u


def _radius(dist: Distribution, u: np.ndarray) -> np.ndarray:
    """The modulus from a uniform in (0, 1), in float64 (a new array)."""
    if dist.kind == "complex_uniform":
        return np.sqrt(u) * dist.scale
    if dist.cut != 2.0:
        raise ValueError(f"complex_truncated_normal is cut at 2 only, not {dist.cut!r}")
    # r^2 = -log(1 - (1 - e^-4) u) <= 4 up to the logarithm's last bit: clip it exactly.
    w = 1.0 - co.CMASS_2 * u
    r2 = np.minimum(neg_log_f64(w), 4.0)
    np.maximum(r2, 0.0, out=r2)  # the series may give -0 or -1 ulp at w -> 1
    return np.sqrt(r2) * dist.scale


def _cos_sin_2pi(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(cos 2 pi u, sin 2 pi u) for u in (0, 1), per octant (module docstring)."""
    v = u * 8.0  # exact
    k = v.astype(np.int64)  # floor: v > 0
    f = v - k  # exact
    odd = (k & 1).astype(bool)
    h = np.where(odd, 1.0 - f, f)
    t = h * co.PI_4
    t2 = t * t
    sin = _horner(co.SIN_F64, t2, np.empty_like(t))
    np.multiply(sin, t, out=sin)
    cos = _horner(co.COS_F64, t2, np.empty_like(t))
    c = np.where(odd, sin, cos)  # cos and sin of the angle within the quadrant
    s = np.where(odd, cos, sin)
    q = k >> 1
    # Rotate by q quarter turns: (c, s) -> (-s, c) -> (-c, -s) -> (s, -c); exact.
    re = np.select([q == 0, q == 1, q == 2], [c, -s, -c], s)
    im = np.select([q == 0, q == 1, q == 2], [s, c, -s], -c)
    return re, im
