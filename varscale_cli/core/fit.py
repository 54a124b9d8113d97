"""Whether a tensor's law fits its dtype: every value the sampler can produce must be finite
once stored, and the law's moments (which provenance records and ``stats`` tests) must be
finite float64 numbers. Checked when a spec is resolved, before any value is drawn.

The extremes of each law, as the sampler draws it (`varscale_cli.core.stream.transforms`):

* constant: its value;
* uniform: ``loc +- scale`` (the sampler's values lie strictly inside and round to at most
  these; rounding is monotone, so if both ends fit, every value does);
* truncated normal: ``loc + lower_cut * scale`` to ``loc + cut * scale`` (the sampler clips
  there; symmetric: ``+- cut``);
* normal: ``loc +- z_max * scale``, where ``z_max`` is the largest |z| the sampler's inverse
  CDF returns for any input bits, measured on the extreme bit patterns by the sampler itself
  (`max_abs_z`): about 5.4 from 32 bits (float16, bfloat16, float32) and 8.3 from 64 bits
  (float64).

The 16- and 8-bit floats are computed in float32 and rounded once more, so an end point
must survive ``round_to(round_to(x, "float32"), dtype)``: `varscale_cli.core.rounding`, exact
integer rounding, never a library cast. The moments: the variance is ``scale * scale`` times a
constant, so ``scale`` must stay below sqrt(DBL_MAX) = 1.34e154.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .distributions import MAX_DISTRIBUTION_PARAM, Distribution, param_beyond_limit
from .rounding import _FLOAT32, FORMATS, SATURATING, round_to

#: The float each dtype's values are stored as (complex: per component); the small floats
#: (16- and 8-bit) are those `rounding.FORMATS` describes.
_STORAGE = {
    **{name: name for name in FORMATS},
    "float32": "float32",
    "float64": "float64",
    "complex64": "float32",
    "complex128": "float64",
}

#: The largest finite value of each storage float, from `rounding` (float64's is
#: sys.float_info.max).
_MAX = {
    **{name: f.max for name, f in FORMATS.items()},
    "float32": _FLOAT32.max,
    "float64": (2.0 - 2.0**-52) * 2.0**1023,
}

#: scale * scale stays finite below this: sqrt(DBL_MAX) rounded down to a power of two,
#: 2^511 = 6.7e153 (sqrt(2^1024) = 2^512, and the variance constants reach 1/3).
MAX_SCALE = 2.0**511


@functools.cache
def max_abs_z(wide: bool) -> float:
    """The largest |value| the sampler's standard normal takes, from 32 bits (``wide``
    False: the float32 path) or 64 bits (the float64 path), computed by the sampler itself on
    the bit patterns that give the extreme uniforms (largest and smallest k, see
    ``symmetric_f32`` / ``symmetric_f64``)."""
    from .stream.transforms import Scratch, transform_f32, transform_f64

    unit = Distribution("normal", 1.0)
    s = Scratch(4)
    if wide:
        bits64 = np.array([0, 2**63 - 1, 2**63, 2**64 - 1], dtype=np.uint64)
        out64 = np.empty(4, dtype=np.float64)
        transform_f64(unit, bits64, s, out64)
        return float(np.max(np.abs(out64)))
    bits32 = np.array([0, 2**31 - 1, 2**31, 2**32 - 1], dtype=np.uint64).astype(np.uint32)
    out32 = np.empty(4, dtype=np.float32)
    transform_f32(unit, bits32, s, out32)
    return float(np.max(np.abs(out32)))


def _stored(x: float, dtype: str, one_step: bool = False) -> float:
    """``x`` as the sampler stores it in ``dtype``'s storage float: through float32 for a
    sampled value, in one step (``one_step``) for a constant, as the writers round them."""
    storage = _STORAGE[dtype]
    if storage == "float64":
        return x
    if one_step:
        return round_to(x, storage)
    x32 = round_to(x, "float32")
    return x32 if storage == "float32" else round_to(x32, storage)


def law_problem(dist: Distribution, dtype: str) -> str | None:
    """Why ``dist`` cannot be stored in ``dtype`` (a phrase naming the value, the dtype and
    its range), or None if every value it can produce is finite there.

    Args:
        dist: the tensor's law.
        dtype: a spec dtype name (float16, bfloat16, float32, float64, complex64, complex128).
    """
    storage = _STORAGE.get(dtype)
    if storage is None or dtype in SATURATING:
        # The sampled float8 types saturate by design (`rounding.SATURATING`: out-of-range
        # values become +-max, the OCP saturation mode), so every value fits.
        return None
    top = _MAX[storage]
    limit = f"{dtype}'s finite range is +-{top:.8g}"
    if not (math.isfinite(dist.loc) and math.isfinite(dist.scale)):
        # Only a uniform gets here: its half-width is (maxval - minval) / 2.
        return (
            f"the {dist.kind} law's width overflows float64 (maxval - minval must be at most "
            f"{_MAX['float64']:.8g})"
        )
    if dist.kind == "constant":
        ends: tuple[tuple[str, float], ...] = (("the value is", dist.loc),)
    else:
        if dist.scale > MAX_SCALE:
            return (
                f"its {dist.kind} law has scale {dist.scale:g}, whose variance overflows "
                f"float64 (the scale must be at most 2**511 = {MAX_SCALE:.5g})"
            )
        if dist.kind == "normal":
            reach = max_abs_z(storage == "float64") * dist.scale
            what = f"values (up to {max_abs_z(storage == 'float64'):.4g} std from the centre) reach"
            ends = ((what, dist.loc - reach), (what, dist.loc + reach))
        elif dist.kind == "truncated_normal":
            # [lower_cut, cut] in units of the scale (symmetric: [-cut, cut]).
            ends = (
                ("values reach", dist.loc + dist.lower_cut * dist.scale),
                ("values reach", dist.loc + dist.cut * dist.scale),
            )
        else:
            ends = (("values reach", dist.loc - dist.scale), ("values reach", dist.loc + dist.scale))
    for what, x in ends:
        if not math.isfinite(x) or not math.isfinite(_stored(x, dtype, dist.kind == "constant")):
            return f"{what} {x:.8g}, which {dtype} cannot hold ({limit})"
    # Storable, but beyond what a recorded law may hold: the provenance parser would refuse
    # the file varscale had just written (and stats could not take its moments).
    beyond = param_beyond_limit(dist.loc, dist.scale, dist.cut, dist.lower)
    if beyond is not None:
        key, v = beyond
        what = "value" if dist.kind == "constant" and key == "loc" else key
        return (
            f"its {dist.kind} law has {what} {v:g}, beyond the {MAX_DISTRIBUTION_PARAM:g} "
            "varscale can check (stats takes the law's moments to the sixth power in float64)"
        )
    return None
