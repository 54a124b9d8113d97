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


class TorchDefaultBias(_TorchBase):
    """PyTorch's default bias of ``nn.Linear``, ``nn.Bilinear``, ``nn.ConvNd`` and
    ``nn.ConvTransposeNd``: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the fan_in of the layer's
    *weight*, not of the bias (``torch/nn/modules/linear.py`` and ``conv.py``,
    ``reset_parameters``: ``fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)``,
    ``bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0``). A weight with fan_in 0 gives an
    all-zero bias, as there.

    In a spec it names its weight, ``{name: torch.default_bias, weight: fc.weight}``, or its
    sibling, ``weight: .weight`` (a name starting with ``.`` replaces the last ``.``-part of the
    bias's own name: ``fc.bias`` -> ``fc.weight``, so one rule covers every layer). The
    resolver takes that tensor's fans from its shape, layout and axes (``nn.Bilinear``'s
    ``in_axis: 1, batch_axis: 2`` give 1/sqrt(in1), as its ``reset_parameters``). The bound
    form records ``fan_in`` too, so a file's provenance rebuilds it without the spec.

    Args:
        weight: the name of the weight tensor whose fan_in sets the bound.
        fan_in: that fan_in, when known (the resolver fills it in).
    """

    name = "torch.default_bias"
    uses_fans = False

    takes_fans = True

    def __init__(
        self, weight: str | None = None, fan_in: int | None = None, seed: int | None = None,
        dtype: DTypeSpec = "float32",
    ) -> None:
        self._seeded(seed, dtype)
        if weight is not None and (not isinstance(weight, str) or not weight):
            raise ValueError(f"`weight` must be a tensor name. Received: weight={weight!r}")
        if fan_in is not None and (
            isinstance(fan_in, bool) or not isinstance(fan_in, int) or fan_in < 0
        ):
            raise ValueError(f"`fan_in` must be an integer >= 0. Received: fan_in={fan_in!r}")
        self.weight = weight
        self.fan_in = fan_in

    def get_config(self) -> Config:
        params: Config = {}
        if self.weight is not None:
            params["weight"] = self.weight
        if self.fan_in is not None:
            params["fan_in"] = self.fan_in
        return self._config(**params)

    def fans_of(self, name: str) -> str | None:
        if self.weight is not None and self.weight.startswith("."):
            return name.rpartition(".")[0] + self.weight  # fc.bias + .weight -> fc.weight
        return self.weight

    def bind_fans(self, fan_in: int, fan_out: int, weight: str | None = None) -> TorchDefaultBias:
        if self.fan_in is not None and self.fan_in != fan_in:
            raise ValueError(
                f"fan_in {self.fan_in} differs from the fan_in {fan_in} of its weight "
                f"{weight or self.weight!r}; drop fan_in"
            )
        return TorchDefaultBias(weight or self.weight, int(fan_in), self.seed, self.dtype)

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        if self.fan_in is None:
            raise ValueError(
                "torch.default_bias needs the fan_in of its weight: name the weight "
                "(`weight: NAME`) in a spec, or give fan_in"
            )
        if self.fan_in == 0:
            return Distribution("constant", 0.0, loc=0.0)
        return Distribution("uniform", 1.0 / math.sqrt(self.fan_in))


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

