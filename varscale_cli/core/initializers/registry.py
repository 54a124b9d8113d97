"""The names: presets (He, Glorot/Xavier, LeCun), their aliases, and every initializer class,
so `get` builds any of them from a name and parameters.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...echo import closest_match, elide, show_py
from .base import DTypeSpec, Initializer
from .orthogonal import Orthogonal
from .plain import Constant, Ones, RandomNormal, RandomUniform, TruncatedNormal, Zeros
from .pytorch import (
    TorchDefaultBias,
    TorchKaimingNormal,
    TorchKaimingUniform,
    TorchXavierNormal,
    TorchXavierUniform,
)
from .truncated import TorchTruncNormal
from .variance_scaling import ContribVarianceScaling, VarianceScaling


@dataclass(frozen=True)
class Preset:
    """A named ``VarianceScaling`` configuration and where it comes from."""

    name: str
    scale: float
    mode: str
    distribution: str
    paper: str

    def build(
        self,
        seed: int | None = None,
        dtype: DTypeSpec = "float32",
        *,
        alias: str | None = None,
        input_axes: Sequence[int] | None = None,
        output_axes: Sequence[int] | None = None,
    ) -> VarianceScaling:
        """The initializer, its ``preset`` set to ``alias`` (the name asked for) or this name.
        ``input_axes`` / ``output_axes``: Keras 3's (``GlorotUniform(seed, input_axes,
        output_axes)``), see `VarianceScaling`."""
        return VarianceScaling(
            self.scale, self.mode, self.distribution, seed, dtype, preset=alias or self.name,
            input_axes=input_axes, output_axes=output_axes,
        )


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
        TorchXavierNormal, TorchXavierUniform, TorchTruncNormal, TorchDefaultBias, Constant,
        Zeros, Ones, RandomNormal, TruncatedNormal, RandomUniform, Orthogonal,
    )
}


def names() -> list[str]:
    """Every name `get` accepts."""
    return sorted({*PRESETS, *ALIASES, *CLASSES})


def get(name: str, **params: object) -> Initializer:
    """An initializer by preset/class name with its parameters, e.g. ``get("he_normal")``.

    Raises:
        ValueError: unknown name (listing the known ones) or bad parameters.
    """
    canonical = ALIASES.get(name, name)
    if canonical in PRESETS:
        unknown = set(params) - {"seed", "dtype", "input_axes", "output_axes"}
        if unknown:
            raise ValueError(
                f"preset {show_py(name)} takes no parameters besides seed, dtype, input_axes and "
                f"output_axes, got {', '.join(elide(k) for k in sorted(unknown))}; use "
                "variance_scaling to set scale/mode/distribution"
            )
        # params are only those (checked above), from user data; VarianceScaling validates
        # them and raises ValueError, so their static type stays `object` here.
        return PRESETS[canonical].build(**params, alias=name)  # type: ignore[arg-type]
    if canonical not in CLASSES:
        close = closest_match(name, list(names()))
        hint = f"; did you mean {close!r}?" if close else ""
        raise ValueError(f"unknown initializer {show_py(name)}{hint} (see `varscale presets`)")
    cls = CLASSES[canonical]
    # ``preset`` is set by `Preset.build`, never by a caller.
    allowed = set(inspect.signature(cls.__init__).parameters) - {"self", "preset"}
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"initializer {show_py(name)} got unknown parameter(s) {', '.join(elide(k) for k in sorted(unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )
    return cls(**params)


# Convenience constructors mirroring the Keras/JAX preset functions.
def _preset_fn(preset: str) -> Callable[..., VarianceScaling]:
    entry = PRESETS[ALIASES.get(preset, preset)]

    def make(seed: int | None = None, dtype: DTypeSpec = "float32") -> VarianceScaling:
        return entry.build(seed, dtype, alias=preset)

    make.__name__ = preset
    make.__doc__ = f"``{preset}``: {entry.paper}."
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
