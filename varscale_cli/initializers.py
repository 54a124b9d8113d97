"""The initializers the seeds describe, as configurable objects, plus the presets around them.

* `VarianceScaling` is ``tf.variance_scaling_initializer`` = ``tf.keras.initializers.
  VarianceScaling``: ``scale`` / ``mode`` / ``distribution``, ``get_config`` / ``from_config``,
  ``__call__(shape, dtype=None, partition_info=None)``.
* `variance_scaling_initializer` is ``tf.contrib.layers.variance_scaling_initializer``:
  ``factor`` / ``FAN_*`` modes / ``uniform``, with the contrib code's 1.3 factor.
* Presets (He, Glorot/Xavier, LeCun; PyTorch's own kaiming/xavier) and the plain initializers a
  weight file needs (zeros, ones, constant, random_normal, truncated_normal, random_uniform).

Every initializer resolves, for a given full shape and fan convention, to an exact
`Distribution`; `core.stream.TensorSampler` draws from it. ``seed=None`` means fresh entropy on every
call (TF1's behaviour); an integer seed gives the same values on every call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .core.distributions import Distribution
from .core.dtypes import SAMPLED
from .core.fans import Axes, compute_fans
from .core.stream import TensorSampler, sample
from .core.stream.coefficients import TRUNC_STD_2

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform", "normal")
CONTRIB_MODES = ("FAN_IN", "FAN_OUT", "FAN_AVG")

#: Dtype spellings accepted on input, mapped to the canonical names used everywhere else.
DTYPE_ALIASES = {
    "float16": "float16", "half": "float16", "f16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float32": "float32", "float": "float32", "f32": "float32",
    "float64": "float64", "double": "float64", "f64": "float64",
}


def canonical_dtype(dtype: Any) -> str:
    """Canonical dtype name, or ValueError naming the value and what is allowed."""
    name = getattr(dtype, "name", dtype)
    if isinstance(dtype, type):
        name = np.dtype(dtype).name if dtype is not float else "float64"
    if isinstance(name, str) and name in DTYPE_ALIASES:
        return DTYPE_ALIASES[name]
    raise ValueError(
        f"Expected a floating point dtype, got {dtype!r}; "
        f"allowed: {', '.join(SAMPLED)}"
    )


@dataclass(frozen=True)
class PartitionInfo:
    """TF's partition description: this variable is the slice at ``var_offset`` of a tensor of
    ``full_shape``. Fans come from ``full_shape``, and values are exactly that slice of the full
    tensor (TF drew each partition independently; here the parts concatenate to the whole)."""

    full_shape: tuple[int, ...]
    var_offset: tuple[int, ...]

    def __init__(self, full_shape: Sequence[int], var_offset: Sequence[int]) -> None:
        object.__setattr__(self, "full_shape", tuple(int(d) for d in full_shape))
        object.__setattr__(self, "var_offset", tuple(int(d) for d in var_offset))
        if len(self.full_shape) != len(self.var_offset):
            raise ValueError(
                f"full_shape {list(self.full_shape)} and var_offset {list(self.var_offset)} "
                "have different ranks"
            )

    def single_offset(self, shape: Sequence[int]) -> int:
        """TF's helper: the offset along the one partitioned axis (0 if none)."""
        for off, full, dim in zip(self.var_offset, self.full_shape, shape, strict=True):
            if dim != full:
                return off
        return 0


def _finite_float(value: Any) -> float | None:
    """float(value) if it is a finite real number (not bool), else None; never raises."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    try:
        f = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return f if math.isfinite(f) else None


def _check_seed(seed: Any) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise ValueError(f"`seed` must be None or an integer in [0, 2**63). Received: seed={seed!r}")
    return int(seed)


class Initializer:
    """Base class: a config, a `Distribution` per (full shape, fans), and sampling.

    Subclasses set ``name`` (the registry name), ``default_layout`` and implement
    ``get_config`` and ``distribution``.
    """

    name: ClassVar[str] = ""
    default_layout: ClassVar[str] = "keras"
    #: Uses fans (variance scaling); the plain initializers do not.
    uses_fans: ClassVar[bool] = True

    seed: int | None
    dtype: str

    def get_config(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Initializer:
        """Rebuild the initializer from ``get_config()`` output: ``cls(**config)``."""
        return cls(**dict(config))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        """The exact law of every element for these fans."""
        raise NotImplementedError

    def target_std(self, fan_in: float, fan_out: float) -> float:
        """The std the documentation promises (``sqrt(scale / n)`` for variance scaling)."""
        return self.distribution(fan_in, fan_out).std

    def supports_dtype(self, dtype: str) -> bool:
        return dtype in SAMPLED

    def to_spec(self) -> dict[str, Any]:
        """The spec mapping form: ``{"name": ..., **params}`` (no seed/dtype)."""
        cfg = {k: v for k, v in self.get_config().items() if k not in ("seed", "dtype")}
        return {"name": self.name, **cfg}

    def fans(
        self,
        shape: Sequence[int],
        layout: str | None = None,
        in_axis: Axes = None,
        out_axis: Axes = None,
        batch_axis: Axes = None,
    ) -> tuple[int, int]:
        return compute_fans(shape, layout or self.default_layout, in_axis, out_axis, batch_axis)

    def __call__(
        self,
        shape: Sequence[int],
        dtype: Any = None,
        partition_info: PartitionInfo | None = None,
        *,
        stream: str = "",
        layout: str | None = None,
        in_axis: Axes = None,
        out_axis: Axes = None,
        batch_axis: Axes = None,
    ) -> np.ndarray:
        """Sample a tensor of ``shape`` as a numpy array.

        Args:
            shape: the shape of the returned array (a partition's own shape if
                ``partition_info`` is given).
            dtype: overrides the constructor's dtype; must be floating.
            partition_info: fans from its ``full_shape``; values are the slice at ``var_offset``.
            stream: the stream name; tensors with different names get independent values.
            layout, in_axis, out_axis, batch_axis: the fan convention (see `fans.compute_fans`).
        """
        dtype = canonical_dtype(dtype if dtype is not None else self.dtype)
        shape = tuple(int(d) for d in shape)
        full_shape, offset = self._region(shape, partition_info)
        fan_in, fan_out = self.fans(full_shape, layout, in_axis, out_axis, batch_axis)
        dist = self.distribution(fan_in, fan_out)
        seed = self.seed if self.seed is not None else _fresh_seed()
        sampler = TensorSampler(dist, dtype, seed, stream)
        return sample(sampler, full_shape, offset, shape)

    def _region(
        self, shape: tuple[int, ...], partition_info: PartitionInfo | None
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if partition_info is None:
            return shape, (0,) * len(shape)
        full, off = partition_info.full_shape, partition_info.var_offset
        if len(full) != len(shape) or any(
            o < 0 or o + d > f for o, d, f in zip(off, shape, full, strict=True)
        ):
            raise ValueError(
                f"a partition of shape {list(shape)} at offset {list(off)} does not fit "
                f"inside full_shape {list(full)}"
            )
        return full, off

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


def _fan_n(mode: str, fan_in: float, fan_out: float) -> float:
    if mode == "fan_in":
        n = fan_in
    elif mode == "fan_out":
        n = fan_out
    elif mode == "fan_avg":
        n = (fan_in + fan_out) / 2.0
    else:
        n = math.sqrt(fan_in * fan_out)
    return max(1.0, float(n))  # TF/Keras guard: a zero-size tensor never divides by zero


class VarianceScaling(Initializer):
    """Samples with variance ``scale / n``, ``n`` from the fans and ``mode``.

    * ``truncated_normal`` (and its alias ``normal``, the TF/Keras meaning): a normal cut at
      +-2 of its own std, that std being ``sqrt(scale / n) / 0.87962566103423978`` so the
      variance *after* truncation is exactly ``scale / n``. With ``corrected=False``, TF <= 1.12's
      variant: underlying std ``sqrt(scale / n)``, actual variance 0.774 ``scale / n``.
    * ``untruncated_normal``: std ``sqrt(scale / n)``.
    * ``uniform``: on [-limit, limit] with ``limit = sqrt(3 scale / n)`` (a uniform on
      [-a, a] has variance a^2 / 3).

    Args:
        scale: positive finite float.
        mode: ``fan_in``, ``fan_out``, ``fan_avg`` or JAX's ``fan_geo_avg`` (sqrt(in * out)).
        distribution: ``truncated_normal``, ``untruncated_normal``, ``uniform`` or ``normal``.
        seed: None (fresh values every call) or an integer (the same values every call).
        dtype: default dtype of ``__call__``; floating only.
        corrected: False reproduces the uncorrected truncated normal of TF <= 1.12.

    Raises:
        ValueError: scale <= 0 or not finite, unknown mode or distribution, non-floating dtype.
    """

    name = "variance_scaling"

    def __init__(
        self,
        scale: float = 1.0,
        mode: str = "fan_in",
        distribution: str = "truncated_normal",
        seed: int | None = None,
        dtype: Any = "float32",
        corrected: bool = True,
    ) -> None:
        value = _finite_float(scale)
        if value is None or value <= 0.0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={scale!r}")
        if mode not in MODES:
            raise ValueError(
                f"Invalid `mode` argument: {mode!r}. Please use one of {', '.join(MODES)}."
            )
        dist = distribution.lower() if isinstance(distribution, str) else distribution
        if dist not in DISTRIBUTIONS:
            raise ValueError(
                f"Invalid `distribution` argument: {distribution!r}. "
                f"Please use one of {', '.join(DISTRIBUTIONS)}."
            )
        if not isinstance(corrected, bool):
            raise ValueError(f"`corrected` must be true or false. Received: {corrected!r}")
        self.scale = value
        self.mode = mode
        self.distribution_name = dist
        self.seed = _check_seed(seed)
        self.dtype = canonical_dtype(dtype)
        self.corrected = corrected

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "scale": self.scale,
            "mode": self.mode,
            "distribution": self.distribution_name,
            "seed": self.seed,
            "dtype": self.dtype,
        }
        if not self.corrected:
            config["corrected"] = False  # only when it changes the meaning
        return config

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return math.sqrt(self.scale / _fan_n(self.mode, fan_in, fan_out))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        std = self.target_std(fan_in, fan_out)
        kind = self.distribution_name
        if kind in ("truncated_normal", "normal"):
            return Distribution(
                "truncated_normal", std / TRUNC_STD_2 if self.corrected else std
            )
        if kind == "untruncated_normal":
            return Distribution("normal", std)
        return Distribution("uniform", math.sqrt(3.0) * std)


class ContribVarianceScaling(Initializer):
    """``tf.contrib.layers.variance_scaling_initializer`` as its code behaves.

    ``n`` from ``FAN_IN`` / ``FAN_OUT`` / ``FAN_AVG`` (uppercase only); with ``uniform=False`` a
    normal truncated at +-2 of an underlying std ``sqrt(1.3 factor / n)`` (1.3 ~ 1 / 0.8796^2
    = 1.2925, so the variance is 1.0059 ``factor / n``); with ``uniform=True`` limit
    ``sqrt(3 factor / n)``. ``partition_info`` is ignored: fans come from the shape passed.

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
        dtype: Any = "float32",
    ) -> None:
        if mode not in CONTRIB_MODES:
            raise TypeError(f"Unknown mode {mode!r}; allowed: {', '.join(CONTRIB_MODES)}")
        value = _finite_float(factor)
        if value is None or value <= 0.0:
            # The contrib code divides by nothing to guard this; a non-positive factor can only
            # give NaN or zero weights, so refuse it like VarianceScaling refuses scale <= 0.
            raise ValueError(f"`factor` must be a positive float. Received: factor={factor!r}")
        if not isinstance(uniform, bool):
            raise ValueError(f"`uniform` must be true or false. Received: uniform={uniform!r}")
        self.factor = value
        self.mode = mode
        self.uniform = uniform
        self.seed = _check_seed(seed)
        self.dtype = canonical_dtype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            "factor": self.factor,
            "mode": self.mode,
            "uniform": self.uniform,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    def _n(self, fan_in: float, fan_out: float) -> float:
        return _fan_n(self.mode.lower(), fan_in, fan_out)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return math.sqrt(self.factor / self._n(fan_in, fan_out))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        n = self._n(fan_in, fan_out)
        if self.uniform:
            return Distribution("uniform", math.sqrt(3.0 * self.factor / n))
        return Distribution("truncated_normal", math.sqrt(1.3 * self.factor / n))

    def __call__(  # type: ignore[override]
        self,
        shape: Sequence[int],
        dtype: Any = None,
        partition_info: PartitionInfo | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        # contrib ignores partition_info: the shape passed is the whole tensor.
        return super().__call__(shape, dtype, None, **kwargs)


def variance_scaling_initializer(
    factor: float = 2.0,
    mode: str = "FAN_IN",
    uniform: bool = False,
    seed: int | None = None,
    dtype: Any = "float32",
) -> ContribVarianceScaling:
    """``tf.contrib.layers.variance_scaling_initializer``: returns the initializer.

    Recipes from its documentation: He et al. "Delving Deep into Rectifiers" is the default
    (2.0, FAN_IN, normal); Caffe is (1.0, FAN_IN, uniform); Glorot & Bengio is
    (1.0, FAN_AVG, uniform); ``xavier_initializer`` is (1.0, FAN_AVG, uniform or normal).
    """
    return ContribVarianceScaling(factor, mode, uniform, seed, dtype)


# --- PyTorch's own semantics -------------------------------------------------------------------

_LINEAR_GAINS = (
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid",
)
NONLINEARITIES = (*_LINEAR_GAINS, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """PyTorch's ``torch.nn.init.calculate_gain`` table (the weight std is gain / sqrt(fan))."""
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, bool) or not isinstance(param, int | float):
            raise ValueError(f"negative_slope {param!r} not a valid number")
        else:
            slope = float(param)
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0  # PyTorch's empirical value (PR #50664); not LeCun's
    raise ValueError(
        f"Unsupported nonlinearity {nonlinearity!r}; allowed: {', '.join(NONLINEARITIES)}"
    )


class _TorchBase(Initializer):
    default_layout = "torch"
    dtype = "float32"

    def __init__(self, seed: int | None = None, dtype: Any = "float32") -> None:
        self.seed = _check_seed(seed)
        self.dtype = canonical_dtype(dtype)


class TorchKaiming(_TorchBase):
    """``torch.nn.init.kaiming_{normal,uniform}_``: std = gain / sqrt(fan), untruncated.

    ``a`` is the leaky_relu negative slope (default 0, i.e. gain sqrt(2), not 0.01's), ``mode``
    is ``fan_in`` or ``fan_out``. Uniform bound = sqrt(3) std. ``nn.Linear``'s default init is
    ``torch.kaiming_uniform`` with ``a = sqrt(5)``: U(+-1/sqrt(fan_in)).
    """

    uniform: ClassVar[bool] = False

    def __init__(
        self,
        a: float = 0.0,
        mode: str = "fan_in",
        nonlinearity: str = "leaky_relu",
        seed: int | None = None,
        dtype: Any = "float32",
    ) -> None:
        super().__init__(seed, dtype)
        if _finite_float(a) is None:
            raise ValueError(f"`a` must be a finite number. Received: a={a!r}")
        if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
            raise ValueError(f"Mode {mode!r} not supported, please use one of fan_in, fan_out")
        self.gain = calculate_gain(nonlinearity, a)
        self.a = float(a)
        self.mode = mode.lower()
        self.nonlinearity = nonlinearity

    def get_config(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "mode": self.mode,
            "nonlinearity": self.nonlinearity,
            "seed": self.seed,
            "dtype": self.dtype,
        }

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.gain / math.sqrt(_fan_n(self.mode, fan_in, fan_out))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        std = self.target_std(fan_in, fan_out)
        if self.uniform:
            return Distribution("uniform", math.sqrt(3.0) * std)
        return Distribution("normal", std)


class TorchKaimingNormal(TorchKaiming):
    name = "torch.kaiming_normal"


class TorchKaimingUniform(TorchKaiming):
    name = "torch.kaiming_uniform"
    uniform = True


class TorchXavier(_TorchBase):
    """``torch.nn.init.xavier_{normal,uniform}_``: std = gain sqrt(2 / (fan_in + fan_out))."""

    uniform: ClassVar[bool] = False

    def __init__(self, gain: float = 1.0, seed: int | None = None, dtype: Any = "float32") -> None:
        super().__init__(seed, dtype)
        value = _finite_float(gain)
        if value is None or value <= 0:
            raise ValueError(f"`gain` must be a positive number. Received: gain={gain!r}")
        self.gain = value

    def get_config(self) -> dict[str, Any]:
        return {"gain": self.gain, "seed": self.seed, "dtype": self.dtype}

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.gain * math.sqrt(2.0 / max(1.0, float(fan_in + fan_out)))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        std = self.target_std(fan_in, fan_out)
        if self.uniform:
            return Distribution("uniform", math.sqrt(3.0) * std)
        return Distribution("normal", std)


class TorchXavierNormal(TorchXavier):
    name = "torch.xavier_normal"


class TorchXavierUniform(TorchXavier):
    name = "torch.xavier_uniform"
    uniform = True


# --- the plain initializers --------------------------------------------------------------------


def _number(value: Any, what: str) -> float:
    f = _finite_float(value)
    if f is None:
        raise ValueError(f"`{what}` must be a finite number. Received: {what}={value!r}")
    return f


class _Plain(Initializer):
    uses_fans = False

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.distribution(fan_in, fan_out).std


class Constant(_Plain):
    """Every element equals ``value``."""

    name = "constant"

    def __init__(self, value: float = 0.0, seed: int | None = None, dtype: Any = "float32") -> None:
        self.value = _number(value, "value")
        self.seed = _check_seed(seed)
        self.dtype = canonical_dtype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.value, "dtype": self.dtype}

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return Distribution("constant", 0.0, loc=self.value)


class Zeros(Constant):
    name = "zeros"

    def __init__(self, seed: int | None = None, dtype: Any = "float32") -> None:
        super().__init__(0.0, seed, dtype)

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype}


class Ones(Constant):
    name = "ones"

    def __init__(self, seed: int | None = None, dtype: Any = "float32") -> None:
        super().__init__(1.0, seed, dtype)

    def get_config(self) -> dict[str, Any]:
        return {"dtype": self.dtype}


class RandomNormal(_Plain):
    """N(mean, stddev^2), untruncated (Keras ``RandomNormal``; defaults 0, 0.05)."""

    name = "random_normal"

    def __init__(
        self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None,
        dtype: Any = "float32",
    ) -> None:
        self.mean = _number(mean, "mean")
        self.stddev = _number(stddev, "stddev")
        if self.stddev <= 0:
            raise ValueError(f"`stddev` must be positive. Received: stddev={stddev!r}")
        self.seed = _check_seed(seed)
        self.dtype = canonical_dtype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed, "dtype": self.dtype}

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.stddev

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return Distribution("normal", self.stddev, loc=self.mean)


class TruncatedNormal(RandomNormal):
    """Keras/TF ``TruncatedNormal``: N(mean, stddev^2) cut at +-2 stddev, *not* variance-corrected
    (its std is 0.8796 stddev), as those libraries define it."""

    name = "truncated_normal"

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return Distribution("truncated_normal", self.stddev, loc=self.mean)


class RandomUniform(_Plain):
    """U[minval, maxval) (Keras ``RandomUniform``; defaults -0.05, 0.05)."""

    name = "random_uniform"

    def __init__(
        self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None,
        dtype: Any = "float32",
    ) -> None:
        self.minval = _number(minval, "minval")
        self.maxval = _number(maxval, "maxval")
        if not self.maxval > self.minval:
            raise ValueError(f"`maxval` must exceed `minval`. Received: {minval!r}, {maxval!r}")
        self.seed = _check_seed(seed)
        self.dtype = canonical_dtype(dtype)

    def get_config(self) -> dict[str, Any]:
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed, "dtype": self.dtype}

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.distribution(fan_in, fan_out).std

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        half = (self.maxval - self.minval) / 2.0
        return Distribution("uniform", half, loc=self.minval + half)


# --- presets and the registry ------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named ``VarianceScaling`` configuration and where it comes from."""

    name: str
    scale: float
    mode: str
    distribution: str
    paper: str

    def build(self, seed: int | None = None, dtype: Any = "float32") -> VarianceScaling:
        init = VarianceScaling(self.scale, self.mode, self.distribution, seed, dtype)
        init.preset = self.name  # type: ignore[attr-defined]
        return init


_HE = "He et al. 2015, Delving Deep into Rectifiers (arXiv:1502.01852)"
_GLOROT = "Glorot & Bengio 2010, Understanding the difficulty of training deep feedforward networks"
_LECUN = "LeCun et al. 1998, Efficient BackProp; Klambauer et al. 2017, Self-Normalizing Networks"

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("glorot_uniform", 1.0, "fan_avg", "uniform", _GLOROT),
        Preset("glorot_normal", 1.0, "fan_avg", "truncated_normal", _GLOROT),
        Preset("he_normal", 2.0, "fan_in", "truncated_normal", _HE),
        Preset("he_uniform", 2.0, "fan_in", "uniform", _HE),
        Preset("lecun_normal", 1.0, "fan_in", "truncated_normal", _LECUN),
        Preset("lecun_uniform", 1.0, "fan_in", "uniform", _LECUN),
    )
}
ALIASES = {
    "xavier_uniform": "glorot_uniform",
    "xavier_normal": "glorot_normal",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}

CLASSES: dict[str, type[Initializer]] = {
    cls.name: cls
    for cls in (
        VarianceScaling, ContribVarianceScaling, TorchKaimingNormal, TorchKaimingUniform,
        TorchXavierNormal, TorchXavierUniform, Constant, Zeros, Ones, RandomNormal,
        TruncatedNormal, RandomUniform,
    )
}

#: Keras class names (``keras.initializers.serialize``) and their snake_case forms.
KERAS_CLASSES: dict[str, str] = {
    "VarianceScaling": "variance_scaling",
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeNormal": "he_normal",
    "HeUniform": "he_uniform",
    "LecunNormal": "lecun_normal",
    "LecunUniform": "lecun_uniform",
    "Zeros": "zeros",
    "Ones": "ones",
    "Constant": "constant",
    "RandomNormal": "random_normal",
    "TruncatedNormal": "truncated_normal",
    "RandomUniform": "random_uniform",
}


def names() -> list[str]:
    """Every name `get` accepts."""
    return sorted({*PRESETS, *ALIASES, *CLASSES})


def get(name: str, **params: Any) -> Initializer:
    """An initializer by preset/class name with its parameters, e.g. ``get("he_normal")``.

    Raises:
        ValueError: unknown name (listing the known ones) or bad parameters.
    """
    canonical = ALIASES.get(name, name)
    if canonical in PRESETS:
        unknown = set(params) - {"seed", "dtype"}
        if unknown:
            raise ValueError(
                f"preset {name!r} takes no parameters besides seed and dtype, got "
                f"{', '.join(sorted(unknown))}; use variance_scaling to set scale/mode/distribution"
            )
        init = PRESETS[canonical].build(**params)
        init.preset = name  # type: ignore[attr-defined]
        return init
    if canonical not in CLASSES:
        import difflib

        close = difflib.get_close_matches(str(name), names(), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown initializer {name!r}{hint} (see `varscale presets`)")
    cls = CLASSES[canonical]
    import inspect

    allowed = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"initializer {name!r} got unknown parameter(s) {', '.join(sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return cls(**params)


def deserialize(obj: Any) -> Initializer:
    """An initializer from any of the accepted forms.

    * a name: ``"he_normal"``, ``"kaiming_uniform"``, ``"zeros"``...
    * a mapping with ``name`` and parameters: ``{"name": "variance_scaling", "scale": 2.0}``
      (the contrib form is ``{"name": "variance_scaling_initializer", "factor": 1.0, ...}``);
    * a TF ``get_config()`` dict: keys among scale/mode/distribution/seed/dtype, no name;
    * a Keras ``keras.initializers.serialize(...)`` dict: ``{module, class_name, config,
      registered_name}``.
    """
    if isinstance(obj, Initializer):
        return obj
    if isinstance(obj, str):
        return get(obj)
    if not isinstance(obj, Mapping):
        raise ValueError(f"an initializer is a name or a mapping, got {obj!r}")
    obj = dict(obj)
    if "class_name" in obj:
        extra = set(obj) - {"module", "class_name", "config", "registered_name"}
        if extra:
            raise ValueError(f"unknown key(s) in a Keras initializer: {', '.join(sorted(extra))}")
        cls_name = obj["class_name"]
        if cls_name not in KERAS_CLASSES:
            raise ValueError(
                f"unknown Keras initializer class {cls_name!r}; allowed: "
                f"{', '.join(sorted(KERAS_CLASSES))}"
            )
        config = dict(obj.get("config") or {})
        # Keras 3 adds input_axes/output_axes; they are fan axes, which the spec carries apart.
        for key in ("input_axes", "output_axes"):
            if config.get(key) is not None:
                raise ValueError(
                    f"Keras {key} are not taken from the initializer; set in_axis/out_axis on "
                    "the tensor instead"
                )
            config.pop(key, None)
        if isinstance(config.get("seed"), dict):
            raise ValueError("a Keras SeedGenerator seed cannot be reproduced; use an integer")
        return get(KERAS_CLASSES[cls_name], **config)
    if "name" in obj:
        name = obj.pop("name")
        if not isinstance(name, str):
            raise ValueError(f"initializer name must be a string, got {name!r}")
        return get(name, **obj)
    if set(obj) <= {"scale", "mode", "distribution", "seed", "dtype", "corrected"}:
        return VarianceScaling(**obj)  # a TF get_config() dict
    raise ValueError(
        f"cannot tell which initializer {obj!r} is: give it a `name`, or paste a TF "
        "get_config() or Keras serialize() dict"
    )


# Convenience constructors mirroring the Keras/JAX preset functions.
def _preset_fn(preset: str) -> Callable[..., VarianceScaling]:
    def make(seed: int | None = None, dtype: Any = "float32") -> VarianceScaling:
        return get(preset, seed=seed, dtype=dtype)  # type: ignore[return-value]

    make.__name__ = preset
    make.__doc__ = f"``{preset}``: {PRESETS[ALIASES.get(preset, preset)].paper}."
    return make


glorot_uniform = _preset_fn("glorot_uniform")
glorot_normal = _preset_fn("glorot_normal")
he_normal = _preset_fn("he_normal")
he_uniform = _preset_fn("he_uniform")
lecun_normal = _preset_fn("lecun_normal")
lecun_uniform = _preset_fn("lecun_uniform")
xavier_uniform = _preset_fn("xavier_uniform")
xavier_normal = _preset_fn("xavier_normal")
kaiming_normal = _preset_fn("kaiming_normal")
kaiming_uniform = _preset_fn("kaiming_uniform")
