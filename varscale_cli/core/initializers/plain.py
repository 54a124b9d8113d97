"""The plain initializers a weight file needs besides variance scaling: constants and fixed
normals / uniforms (Keras ``Zeros``, ``Ones``, ``Constant``, ``RandomNormal``,
``TruncatedNormal``, ``RandomUniform``). They ignore the fans.
"""

from __future__ import annotations

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
    """N(mean, stddev^2), untruncated (Keras ``RandomNormal``; defaults 0, 0.05)."""

    name = "random_normal"

    def __init__(
        self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None,
        dtype: DTypeSpec = "float32",
    ) -> None:
        self.mean = number(mean, "mean")
        self.stddev = number(stddev, "stddev")
        if self.stddev <= 0:
            raise ValueError(f"`stddev` must be positive. Received: stddev={show_py(stddev)}")
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        return self._config(mean=self.mean, stddev=self.stddev)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.stddev

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return Distribution("normal", self.stddev, loc=self.mean)


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
