"""PyTorch's own initializers (``torch.nn.init``): its gain table, kaiming and xavier.

They differ from the Keras presets of the same papers: untruncated normals, gains instead of
scales, and the ``(out, in, *k)`` weight layout by default.
"""

from __future__ import annotations

import math
from typing import ClassVar

from ...echo import show_py
from ..distributions import Distribution
from .base import Config, DTypeSpec, Initializer, fan_n, finite_float

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
            raise ValueError(f"negative_slope {show_py(param)} not a valid number")
        else:
            slope = float(param)
        # slope * slope, not slope**2: ** is libm's pow, which is not correctly rounded (glibc
        # differs from the exact square's rounding for ~0.07% of slopes, other libms
        # elsewhere); one IEEE multiply is the same everywhere. torch writes slope**2, so its
        # own std may differ from ours in the last bit; its samples differ anyway.
        return math.sqrt(2.0 / (1.0 + slope * slope))
    if nonlinearity == "selu":
        return 3.0 / 4.0  # PyTorch's empirical value (PR #50664); not LeCun's
    raise ValueError(
        f"Unsupported nonlinearity {show_py(nonlinearity)}; allowed: {', '.join(NONLINEARITIES)}"
    )


class _TorchBase(Initializer):
    """PyTorch's ``(out, in, *k)`` layout for the fans, and its laws: an untruncated normal with
    the target std, or the uniform with that std (bound sqrt(3) std: U(-b, b) has variance
    b^2 / 3)."""

    default_layout = "torch"
    uniform: ClassVar[bool] = False

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        std = self.target_std(fan_in, fan_out)
        if self.uniform:
            return Distribution("uniform", math.sqrt(3.0) * std)
        return Distribution("normal", std)


class TorchKaiming(_TorchBase):
    """``torch.nn.init.kaiming_{normal,uniform}_``: std = gain / sqrt(fan), untruncated.

    ``a`` is the leaky_relu negative slope (default 0, i.e. gain sqrt(2), not 0.01's), ``mode``
    is ``fan_in`` or ``fan_out``. Uniform bound = sqrt(3) std. ``nn.Linear``'s default init is
    ``torch.kaiming_uniform`` with ``a = sqrt(5)``: U(+-1/sqrt(fan_in)).
    """

    def __init__(
        self,
        a: float = 0.0,
        mode: str = "fan_in",
        nonlinearity: str = "leaky_relu",
        seed: int | None = None,
        dtype: DTypeSpec = "float32",
    ) -> None:
        self._seeded(seed, dtype)
        if finite_float(a) is None:
            raise ValueError(f"`a` must be a finite number. Received: a={show_py(a)}")
        if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
            raise ValueError(f"Mode {show_py(mode)} not supported, please use one of fan_in, fan_out")
        self.gain = calculate_gain(nonlinearity, a)
        self.a = float(a)
        self.mode = mode.lower()
        self.nonlinearity = nonlinearity

    def get_config(self) -> Config:
        return self._config(a=self.a, mode=self.mode, nonlinearity=self.nonlinearity)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.gain / math.sqrt(fan_n(self.mode, fan_in, fan_out))

class TorchKaimingNormal(TorchKaiming):
    """``torch.nn.init.kaiming_normal_``: N(0, (gain / sqrt(fan))^2), untruncated (unlike the
    bare ``kaiming_normal``, Keras' truncated HeNormal)."""

    name = "torch.kaiming_normal"


class TorchKaimingUniform(TorchKaiming):
    """``torch.nn.init.kaiming_uniform_``: U(-b, b) with b = sqrt(3) gain / sqrt(fan)."""

    name = "torch.kaiming_uniform"
    uniform = True


class TorchXavier(_TorchBase):
    """``torch.nn.init.xavier_{normal,uniform}_``: std = gain sqrt(2 / (fan_in + fan_out))."""

    def __init__(
        self, gain: float = 1.0, seed: int | None = None, dtype: DTypeSpec = "float32"
    ) -> None:
        self._seeded(seed, dtype)
        value = finite_float(gain)
        if value is None or value <= 0:
            raise ValueError(f"`gain` must be a positive number. Received: gain={show_py(gain)}")
        self.gain = value

    def get_config(self) -> Config:
        return self._config(gain=self.gain)

    def target_std(self, fan_in: float, fan_out: float) -> float:
        return self.gain * math.sqrt(2.0 / max(1.0, float(fan_in + fan_out)))

class TorchXavierNormal(TorchXavier):
    """``torch.nn.init.xavier_normal_``: N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out)),
    untruncated (unlike the bare ``xavier_normal``, Keras' truncated GlorotNormal)."""

    name = "torch.xavier_normal"


class TorchXavierUniform(TorchXavier):
    """``torch.nn.init.xavier_uniform_``: bound sqrt(3) times the std."""

    name = "torch.xavier_uniform"
    uniform = True
