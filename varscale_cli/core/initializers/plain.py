"""The plain initializers a weight file needs besides variance scaling: constants and fixed
normals / uniforms (Keras ``Zeros``, ``Ones``, ``Constant``, ``RandomNormal``,
``TruncatedNormal``, ``RandomUniform``). They ignore the fans.
"""

from __future__ import annotations

import math
from typing import ClassVar

from ...echo import show_py
from ..distributions import Distribution
from . import truncated
from .base import Config, DTypeSpec, Initializer, number


class _Plain(Initializer):
    """An initializer whose law does not depend on the fans."""

    uses_fans = False


class Constant(_Plain):
    """Every element equals ``value``."""

    name = "constant"

    def __init__(self, value: float = 0.0, seed: int | None = None, dtype: DTypeSpec = "float32") -> None:
        self.value = number(value, "value")
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        return {"value": self.value, "dtype": self.dtype}

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return Distribution("constant", 0.0, loc=self.value)


class _FixedConstant(Constant):
    """A constant whose value is in the name, so the config holds only the dtype."""

    fixed_value: ClassVar[float]

    def __init__(self, seed: int | None = None, dtype: DTypeSpec = "float32") -> None:
        super().__init__(self.fixed_value, seed, dtype)

    def get_config(self) -> Config:
        return {"dtype": self.dtype}


class Zeros(_FixedConstant):
    """Every element is 0 (Keras ``Zeros``)."""

    name = "zeros"
    fixed_value = 0.0


class Ones(_FixedConstant):
    """Every element is 1 (Keras ``Ones``)."""

    name = "ones"
    fixed_value = 1.0


class RandomNormal(_Plain):
    """N(mean, std^2), untruncated (Keras ``RandomNormal``; defaults 0, 0.05).

    ``residual_layers`` N makes the std ``stddev / sqrt(N)``: GPT-2's initialization of the
    projections that write into the residual stream, "scale the weights of residual layers at
    initialization by a factor of 1/sqrt(N) where N is the number of residual layers" (Radford
    et al. 2019, *Language Models are Unsupervised Multitask Learners*, sec. 2.3). transformers'
    ``GPT2PreTrainedModel._init_weights`` gives every ``c_proj.weight``
    ``normal_(std=initializer_range / math.sqrt(2 * n_layer))``: N = 2 n_layer, one attention
    and one MLP block per layer.
    """

    name = "random_normal"

    def __init__(
        self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None,
        dtype: DTypeSpec = "float32", residual_layers: int | None = None,
    ) -> None:
        self.mean = number(mean, "mean")
        self.stddev = number(stddev, "stddev")
        if self.stddev <= 0:
            raise ValueError(f"`stddev` must be positive. Received: stddev={show_py(stddev)}")
        if residual_layers is not None and (
            isinstance(residual_layers, bool) or not isinstance(residual_layers, int)
            or residual_layers < 1
        ):
            raise ValueError(
                "`residual_layers` must be a positive integer. "
                f"Received: residual_layers={show_py(residual_layers)}"
            )
        self.residual_layers = residual_layers
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        if self.residual_layers is None:  # only when it changes the law: provenance unchanged
            return self._config(mean=self.mean, stddev=self.stddev)
        return self._config(mean=self.mean, stddev=self.stddev, residual_layers=self.residual_layers)

    @property
    def scaled_stddev(self) -> float:
        """``stddev``, divided by sqrt(residual_layers) when that is set."""
        if self.residual_layers is None:
            return self.stddev
        return self.stddev / math.sqrt(self.residual_layers)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.scaled_stddev

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return Distribution("normal", self.scaled_stddev, loc=self.mean)


class TruncatedNormal(RandomNormal):
    """Keras/TF ``TruncatedNormal``: N(mean, stddev^2) cut at +-2 stddev (Haiku: lower, upper).

    *Not* variance-corrected (its std is 0.8796 stddev), as those libraries define it. ``lower``
    / ``upper`` cut elsewhere,
    in stddev units (Haiku's ``TruncatedNormal(stddev, mean, lower, upper)``; timm's
    ``trunc_normal_tf_`` is the same law); see `truncated`."""

    name = "truncated_normal"

    def __init__(
        self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None,
        dtype: DTypeSpec = "float32", lower: float = -2.0, upper: float = 2.0,
    ) -> None:
        super().__init__(mean, stddev, seed, dtype)
        self.lower, self.upper = truncated.bounds(lower, upper)

    def get_config(self) -> Config:
        config = super().get_config()
        if (self.lower, self.upper) != (truncated.DEFAULT_LOWER, truncated.DEFAULT_UPPER):
            config = {"mean": self.mean, "stddev": self.stddev, "lower": self.lower,
                      "upper": self.upper, "seed": self.seed, "dtype": self.dtype}
        return config

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return truncated.truncated(self.stddev, self.lower, self.upper, self.mean)


class RandomUniform(_Plain):
    """U[minval, maxval) (Keras ``RandomUniform``; defaults -0.05, 0.05)."""

    name = "random_uniform"

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None,
        dtype: DTypeSpec = "float32",
    ) -> None:
        self.minval = number(minval, "minval")
        self.maxval = number(maxval, "maxval")
        if not self.maxval > self.minval:
            raise ValueError(f"`maxval` must exceed `minval`. Received: {show_py(minval)}, {show_py(maxval)}")
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        return self._config(minval=self.minval, maxval=self.maxval)

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        half = (self.maxval - self.minval) / 2.0
        return Distribution("uniform", half, loc=self.minval + half)
