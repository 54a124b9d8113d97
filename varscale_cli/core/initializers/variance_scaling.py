"""Variance scaling as TF, Keras and the TF contrib code define it.

* `VarianceScaling` is ``tf.variance_scaling_initializer`` = ``tf.keras.initializers.
  VarianceScaling``: ``scale`` / ``mode`` / ``distribution``, ``get_config`` / ``from_config``,
  ``__call__(shape, dtype=None, partition_info=None)``.
* `variance_scaling_initializer` is ``tf.contrib.layers.variance_scaling_initializer``:
  ``factor`` / ``FAN_*`` modes / ``uniform``, with the contrib code's 1.3 factor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...echo import show_py
from ..distributions import Distribution
from ..fans import compute_keras_axes_fans, keras_axes
from ..stream.coefficients import CTRUNC_STD_2, JAX_CTRUNC_STD_2, SQRT2
from . import truncated
from .base import (
    Config,
    DTypeSpec,
    Initializer,
    PartitionInfo,
    fan_n,
    finite_float,
)

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")
CONTRIB_MODES = ("FAN_IN", "FAN_OUT", "FAN_AVG")
#: What ``corrected`` accepts besides true / false: JAX's complex truncation divisor.
CORRECTED_NAMES = ("jax",)


class VarianceScaling(Initializer):
    """Samples with variance ``scale / n``, ``n`` from the fans and ``mode``.

    * ``truncated_normal`` (and its alias ``normal``, the TF/Keras meaning): a normal cut at
      +-2 of its own std, that std being ``sqrt(scale / n) / 0.87962566103423978`` so the
      variance *after* truncation is exactly ``scale / n``. With ``corrected=False``, TF <= 1.12's
      variant: underlying std ``sqrt(scale / n)``, actual variance 0.774 ``scale / n``.
    * ``untruncated_normal``: std ``sqrt(scale / n)``.
    * ``uniform``: on [-limit, limit] with ``limit = sqrt(3 scale / n)`` (a uniform on
      [-a, a] has variance a^2 / 3).

    complex64 / complex128 (JAX's ``variance_scaling`` with a complex dtype), E|z|^2 = scale / n:

    * ``truncated_normal`` / ``normal``: JAX's modulus-truncated complex normal, |z| cut at 2
      units, the unit ``sqrt(scale / n) / 0.96196182800821354`` so E|z|^2 is exactly
      ``scale / n`` (`coefficients.CTRUNC_STD_2` derives it). ``corrected="jax"``: JAX's own
      divisor 0.95311164380491208, E|z|^2 = 1.01866 ``scale / n``; ``corrected=False``: unit
      ``sqrt(scale / n)``, E|z|^2 = 0.92536 ``scale / n``.
    * ``untruncated_normal``: real and imaginary parts N(0, scale / (2 n)) (JAX's ``normal``).
    * ``uniform``: uniform on the disk of radius ``sqrt(2 scale / n)`` (JAX's ``uniform``).

    Args:
        scale: positive finite float.
        mode: ``fan_in``, ``fan_out``, ``fan_avg`` or JAX's ``fan_geo_avg`` (sqrt(in * out)).
        distribution: ``truncated_normal``, ``untruncated_normal``, ``uniform`` or ``normal``.
        seed: None (fresh values every call) or an integer (the same values every call).
        dtype: default dtype of ``__call__``; floating only.
        corrected: False reproduces the uncorrected truncated normal of TF <= 1.12; ``"jax"``
            JAX's divisor for complex dtypes (for real ones it is True's, as in JAX).
        lower, upper: truncation bounds in units of the underlying std (Haiku's meaning),
            truncated_normal only; default -2, 2. The correction divides by the std of
            N(0, 1) cut to [lower, upper] (`truncated.correction`), so the variance stays
            exactly ``scale / n``; asymmetric bounds give a law whose mean is not 0.
        input_axes, output_axes: Keras 3's fan axes (lists of ints). When *both* are set, the
            fans are the products of exactly those axes, with no receptive field, whatever the
            layout (`fans.compute_keras_axes_fans`); with one alone Keras ignores it, and so
            does this. A tensor's own in_axis/out_axis/batch_axis cannot be combined with them.
        preset: the preset name it is built from (set by `registry.Preset.build`); not part of
            the config.

    Raises:
        ValueError: scale <= 0 or not finite, unknown mode or distribution, non-floating dtype.
    """

    name = "variance_scaling"
    complex_ok = True

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        dtype: DTypeSpec = "float32",
        corrected: bool | str = True,
        *,
        lower: float = -2.0,
        upper: float = 2.0,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
        preset: str | None = None,
    ) -> None:
        value = finite_float(scale)
        if value is None or value <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={show_py(scale)}")
        if mode not in MODES:
            raise ValueError(
                f"Invalid `mode` argument: {show_py(mode)}. Please use one of {', '.join(MODES)}."
            )
        dist = distribution.lower() if isinstance(distribution, str) else distribution
        if dist not in DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution` argument: {show_py(distribution)}. "
                f"Please use one of {', '.join(DISTRIBUTIONS)}."
            )
        if not isinstance(corrected, bool) and corrected not in CORRECTED_NAMES:
            raise ValueError(
                f"`corrected` must be true, false or 'jax'. Received: {show_py(corrected)}"
            )
        self.scale = value
        self.mode = mode
        self.distribution_name = dist
        self._seeded(seed, dtype)
        self.corrected = corrected
        self.lower, self.upper = truncated.bounds(lower, upper)
        cut = (self.lower, self.upper) != (truncated.DEFAULT_LOWER, truncated.DEFAULT_UPPER)
        if cut and dist not in ("truncated_normal", "normal"):
            raise ValueError(
                f"`lower` / `upper` apply to distribution truncated_normal only, not {dist!r}"
            )
        self.input_axes = keras_axes(input_axes, "input_axes")
        self.output_axes = keras_axes(output_axes, "output_axes")
        self.preset = preset

    def get_config(self) -> Config:
        config = self._config(
            scale=self.scale, mode=self.mode, distribution=self.distribution_name
        )
        if self.corrected is not True:
            config["corrected"] = self.corrected  # only when it changes the meaning
        if (self.lower, self.upper) != (truncated.DEFAULT_LOWER, truncated.DEFAULT_UPPER):
            config["lower"], config["upper"] = self.lower, self.upper
        for key, axes in (("input_axes", self.input_axes), ("output_axes", self.output_axes)):
            if axes is not None:  # only when set: existing configs and records stay as they were
                config[key] = list(axes)
        return config

    def _own_fans(self, shape: Sequence[int], axes_given: bool) -> tuple[int, int] | None:
        if self.input_axes is None or self.output_axes is None:
            return None
        if axes_given:
            raise ValueError(
                "the Keras input_axes/output_axes of the initializer already set the fans; "
                "drop the tensor's in_axis/out_axis/batch_axis, or drop input_axes/output_axes"
            )
        return compute_keras_axes_fans(shape, self.input_axes, self.output_axes)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return math.sqrt(self.scale / fan_n(self.mode, fan_in, fan_out))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        std = self.target_std(fan_in, fan_out)
        kind = self.distribution_name
        if kind in ("truncated_normal", "normal"):
            c = truncated.correction(self.lower, self.upper) if self.corrected else 1.0
            return truncated.truncated(std / c, self.lower, self.upper)
        if kind == "untruncated_normal":
            return Distribution("normal", std)
        return Distribution("uniform", math.sqrt(3.0) * std)

    def complex_distribution(self, fan_in: float, fan_out: float) -> Distribution:
        std = self.target_std(fan_in, fan_out)  # sqrt(E|z|^2)
        kind = self.distribution_name
        if (self.lower, self.upper) != (truncated.DEFAULT_LOWER, truncated.DEFAULT_UPPER):
            raise ValueError(
                "`lower` / `upper` apply to real dtypes only: the complex truncated normal "
                "(JAX's) cuts the modulus at 2"
            )
        if kind in ("truncated_normal", "normal"):
            if self.corrected is True:
                std = std / CTRUNC_STD_2
            elif self.corrected == "jax":
                std = std / JAX_CTRUNC_STD_2
            return Distribution("complex_truncated_normal", std)
        if kind == "untruncated_normal":
            return Distribution("complex_normal", std / SQRT2)  # E|z|^2 = 2 scale^2
        return Distribution("complex_uniform", SQRT2 * std)  # E|z|^2 = radius^2 / 2


_JAX = "JAX jax.nn.initializers.variance_scaling with a complex dtype (Flax complex layers)"

#: The complex laws, for ``varscale presets``: (distribution, corrected, reference).
COMPLEX_VARIANTS: tuple[tuple[str, bool | str, str], ...] = (
    ("truncated_normal", True, f"{_JAX}: its shape, with E|z|^2 = scale / n exactly"),
    ("truncated_normal", "jax", f"{_JAX}: its divisor 0.95311, E|z|^2 1.87 % high"),
    ("untruncated_normal", True, f"{_JAX}, distribution 'normal'"),
    ("uniform", True, f"{_JAX}, distribution 'uniform'"),
)


class ContribVarianceScaling(Initializer):
    """``tf.contrib.layers.variance_scaling_initializer`` as its code behaves.

    ``n`` from ``FAN_IN`` / ``FAN_OUT`` / ``FAN_AVG`` (uppercase only); with ``uniform=False`` a
    normal truncated at +-2 of an underlying std ``sqrt(1.3 factor / n)`` (1.3 ~ 1 / 0.8796^2
    = 1.2925, so the variance is 1.0059 ``factor / n``); with ``uniform=True`` limit
    ``sqrt(3 factor / n)``. ``partition_info`` is ignored: fans come from the shape passed.

    Recipes from its documentation: He et al. "Delving Deep into Rectifiers" is the default
    (2.0, FAN_IN, normal); Caffe is (1.0, FAN_IN, uniform); Glorot & Bengio is
    (1.0, FAN_AVG, uniform); ``xavier_initializer`` is (1.0, FAN_AVG, uniform or normal).

    Raises:
        TypeError: unknown mode (at creation, as the documentation says).
        ValueError: non-floating dtype (at creation).
    """

    name = "variance_scaling_initializer"

    def __init__(
        self,
        factor: float = 2.0,
        mode: str = "FAN_IN",
        uniform: bool = False,
        seed: int | None = None,
        dtype: DTypeSpec = "float32",
    ) -> None:
        if mode not in CONTRIB_MODES:
            raise TypeError(f"Unknown mode {show_py(mode)}; allowed: {', '.join(CONTRIB_MODES)}")
        value = finite_float(factor)
        if value is None or value <= 0.0:
            # The contrib code divides by nothing to guard this; a non-positive factor can only
            # give NaN or zero weights, so refuse it like VarianceScaling refuses scale <= 0.
            raise ValueError(f"`factor` must be a positive float. Received: factor={show_py(factor)}")
        if not isinstance(uniform, bool):
            raise ValueError(f"`uniform` must be true or false. Received: uniform={show_py(uniform)}")
        self.factor = value
        self.mode = mode
        self.uniform = uniform
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        return self._config(factor=self.factor, mode=self.mode, uniform=self.uniform)

    def _n(self, fan_in: float, fan_out: float) -> float:
        return fan_n(self.mode.lower(), fan_in, fan_out)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return math.sqrt(self.factor / self._n(fan_in, fan_out))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        n = self._n(fan_in, fan_out)
        if self.uniform:
            return Distribution("uniform", math.sqrt(3.0 * self.factor / n))
        return Distribution("truncated_normal", math.sqrt(1.3 * self.factor / n))

    def _region(
        self, shape: tuple[int, ...], partition_info: PartitionInfo | None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        # contrib ignores partition_info: the shape passed is the whole tensor.
        return super()._region(shape, None)


#: ``tf.contrib.layers.variance_scaling_initializer(factor, mode, uniform, seed, dtype)``: the
#: class itself, so that its arguments and defaults are written once.
variance_scaling_initializer = ContribVarianceScaling
