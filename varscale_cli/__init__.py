"""varscale: reproducible variance-scaling initial weights.

    >>> from varscale_cli import VarianceScaling
    >>> init = VarianceScaling(scale=2.0, mode="fan_in", distribution="truncated_normal", seed=0)
    >>> w = init((784, 256))
    >>> w.shape, w.dtype.name
    ((784, 256), 'float32')
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.distributions import Distribution
from .core.fans import compute_fans
from .core.initializers import (
    PRESETS,
    Constant,
    ContribVarianceScaling,
    Initializer,
    Ones,
    PartitionInfo,
    RandomNormal,
    RandomUniform,
    TorchKaimingNormal,
    TorchKaimingUniform,
    TorchXavierNormal,
    TorchXavierUniform,
    TruncatedNormal,
    VarianceScaling,
    Zeros,
    calculate_gain,
    deserialize,
    get,
    variance_scaling_initializer,
)
from .core.initializers.registry import (
    glorot_normal,
    glorot_uniform,
    he_normal,
    he_uniform,
    kaiming_normal,
    kaiming_uniform,
    lecun_normal,
    lecun_uniform,
    xavier_normal,
    xavier_uniform,
)
from .core.stream import STREAM_ID, TensorSampler

if TYPE_CHECKING:
    from .frameworks import spec_from_keras, spec_from_module

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """The framework helpers load on first use (see `frameworks`): the CLI's generate, stats
    and verify never need them."""
    if name in ("spec_from_keras", "spec_from_module"):
        from . import frameworks

        value = getattr(frameworks, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "PRESETS", "STREAM_ID", "Constant", "ContribVarianceScaling", "Distribution", "Initializer",
    "Ones", "PartitionInfo", "RandomNormal", "RandomUniform", "TensorSampler",
    "TorchKaimingNormal", "TorchKaimingUniform", "TorchXavierNormal", "TorchXavierUniform",
    "TruncatedNormal", "VarianceScaling", "Zeros", "__version__", "calculate_gain",
    "compute_fans", "deserialize", "get", "glorot_normal", "glorot_uniform", "he_normal",
    "he_uniform", "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform",
    "spec_from_keras", "spec_from_module", "variance_scaling_initializer", "xavier_normal",
    "xavier_uniform",
]
