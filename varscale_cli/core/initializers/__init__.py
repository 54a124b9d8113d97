"""The initializers: configurable objects that resolve, per tensor, to an exact `Distribution`.

* `base`: the `Initializer` base class, `PartitionInfo`, the shared argument checks;
* `variance_scaling`: TF / Keras `VarianceScaling` and TF contrib's variant;
* `pytorch`: ``torch.nn.init``'s kaiming / xavier and its gain table;
* `plain`: constants, fixed normals and uniforms;
* `truncated`: truncation at any bounds, and ``torch.nn.init.trunc_normal_``;
* `registry`: presets, aliases and classes by name (`get`), and the preset functions
  (`registry.he_normal` ...; ``varscale_cli`` exports them);
* `deserialize`: names, spec mappings, TF and Keras dicts -> an initializer.
"""

from __future__ import annotations

from .base import Initializer, PartitionInfo, canonical_dtype
from .deserialize import KERAS_CLASSES, deserialize
from .plain import Constant, Ones, RandomNormal, RandomUniform, TruncatedNormal, Zeros
from .pytorch import (
    NONLINEARITIES,
    TorchKaiming,
    TorchKaimingNormal,
    TorchKaimingUniform,
    TorchXavier,
    TorchXavierNormal,
    TorchXavierUniform,
    calculate_gain,
)
from .registry import ALIASES, CLASSES, PRESETS, Preset, get, names
from .truncated import TorchTruncNormal
from .variance_scaling import (
    CONTRIB_MODES,
    DISTRIBUTIONS,
    MODES,
    ContribVarianceScaling,
    VarianceScaling,
    variance_scaling_initializer,
)

__all__ = [
    "ALIASES", "CLASSES", "CONTRIB_MODES", "DISTRIBUTIONS", "KERAS_CLASSES", "MODES",
    "NONLINEARITIES", "PRESETS", "Constant", "ContribVarianceScaling", "Initializer", "Ones",
    "PartitionInfo", "Preset", "RandomNormal", "RandomUniform", "TorchKaiming",
    "TorchKaimingNormal", "TorchKaimingUniform", "TorchTruncNormal", "TorchXavier", "TorchXavierNormal",
    "TorchXavierUniform", "TruncatedNormal", "VarianceScaling", "Zeros", "calculate_gain",
    "canonical_dtype", "deserialize", "get", "names", "variance_scaling_initializer",
]
