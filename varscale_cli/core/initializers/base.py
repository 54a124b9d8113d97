"""What every initializer shares: the base class, TF's partition description, and the checks
of the arguments they all take (seed, dtype, finite numbers).

Every initializer resolves, for a given full shape and fan convention, to an exact
`Distribution`; `core.stream.TensorSampler` draws from it. ``seed=None`` means fresh entropy on
every call (TF1's behaviour); an integer seed gives the same values on every call.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...echo import show_py
from ..distributions import Distribution
from ..dtypes import ALIASES, COMPLEX, SAMPLED, SAMPLED_ALIASES
from ..fans import Axes, compute_fans
from ..stream import TensorSampler, sample

#: A dtype as callers give it: a name (``"bf16"``), a numpy dtype, or a scalar type.
DTypeSpec = str | np.dtype | type
#: A value in a ``get_config()`` mapping (lists: Keras's ``input_axes`` / ``output_axes``).
ConfigValue = float | str | bool | list[int] | None
Config = dict[str, ConfigValue]


def canonical_dtype(dtype: object) -> str:
    """Canonical dtype name (floating or complex), or ValueError naming the value and what
    is allowed; whether an initializer can produce it is `Initializer.supports_dtype`."""
    name = getattr(dtype, "name", dtype)
    if isinstance(dtype, type):
        name = np.dtype(dtype).name if dtype is not float else "float64"
    if isinstance(name, str) and name in SAMPLED_ALIASES:
        return SAMPLED_ALIASES[name]
    if isinstance(name, str) and ALIASES.get(name) in COMPLEX:
        return ALIASES[name]
    raise ValueError(
        f"Expected a floating point dtype, got {show_py(dtype)}; "
        f"allowed: {', '.join(SAMPLED)} (complex64, complex128 for variance_scaling)"
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


def finite_float(value: object) -> float | None:
    """float(value) if it is a finite real number (not bool), else None; never raises."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return None
    try:
        f = float(value)
    except OverflowError:  # an int beyond the float range
        return None
    return f if math.isfinite(f) else None


def check_seed(seed: object) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**63:
        raise ValueError(f"`seed` must be None or an integer in [0, 2**63). Received: seed={show_py(seed)}")
    return int(seed)


class Initializer:
    """Base class: a config, a `Distribution` per (full shape, fans), and sampling.

    Subclasses set ``name`` (the registry name), ``default_layout`` and implement
    ``get_config`` and ``distribution`` (``_shape_law`` where not `elementwise`); one whose
    config sets the fans itself overrides ``_own_fans``.
    """

    name: ClassVar[str] = ""
    default_layout: ClassVar[str] = "keras"
    #: Uses fans (variance scaling); the plain initializers do not.
    uses_fans: ClassVar[bool] = True
    #: Can fill complex64 / complex128 tensors (`complex_distribution`).
    complex_ok: ClassVar[bool] = False
    #: Each element's law is the same and known from the fans alone; False for orthogonal,
    #: whose law (and documented std) depends on the whole shape (`law`'s ``shape``).
    elementwise: ClassVar[bool] = True

    seed: int | None
    dtype: str
    #: The preset name this initializer was built from (``he_normal``...), None if none.
    preset: str | None = None

    def _seeded(self, seed: object, dtype: object) -> None:
        """Check and set the two arguments every initializer takes."""
        self.seed = check_seed(seed)
        self.dtype = self._supported(dtype)

    def _supported(self, dtype: object) -> str:
        """``dtype``'s canonical name if this initializer can produce it, else ValueError."""
        name = canonical_dtype(dtype)
        if not self.supports_dtype(name):
            raise ValueError(
                f"initializer {self.name!r} cannot produce {name} values; "
                f"allowed: {', '.join(d for d in (*SAMPLED, *COMPLEX) if self.supports_dtype(d))}"
            )
        return name

    def _config(self, **params: ConfigValue) -> Config:
        """``params`` followed by seed and dtype: the order every ``get_config()`` lists."""
        return {**params, "seed": self.seed, "dtype": self.dtype}

    def get_config(self) -> Config:
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: Mapping[str, ConfigValue]) -> Initializer:
        """Rebuild the initializer from ``get_config()`` output: ``cls(**config)``."""
        return cls(**dict(config))

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        """The exact law of every element of a real tensor for these fans."""
        raise NotImplementedError

    def complex_distribution(self, fan_in: float, fan_out: float) -> Distribution:
        """The exact law of every element of a complex tensor (where `complex_ok`)."""
        raise NotImplementedError

    def law(
        self,
        fan_in: float,
        fan_out: float,
        dtype: str | None = None,
        *,
        shape: Sequence[int] | None = None,
        layout: str | None = None,
    ) -> Distribution:
        """The law of every element of a ``dtype`` tensor (default: this initializer's) of the
        full ``shape`` in ``layout`` (needed where not `elementwise`: `_shape_law`)."""
        if not self.elementwise:
            if shape is None:
                raise ValueError(f"{self.name}: the law depends on the whole shape")
            return self._shape_law(tuple(int(d) for d in shape), layout or self.default_layout)
        if (dtype or self.dtype) in COMPLEX:
            return self.complex_distribution(fan_in, fan_out)
        return self.distribution(fan_in, fan_out)

    def _shape_law(self, shape: tuple[int, ...], layout: str) -> Distribution:
        """The law of a tensor of the full ``shape`` in ``layout``, where not `elementwise`."""
        raise NotImplementedError

    def target_std(self, fan_in: float, fan_out: float) -> float:
        """The std the documentation promises (``sqrt(scale / n)`` for variance scaling)."""
        return self.distribution(fan_in, fan_out).std

    def supports_dtype(self, dtype: str) -> bool:
        return dtype in SAMPLED or (self.complex_ok and dtype in COMPLEX)

    #: The law comes from fans another tensor gives (`fans_of` / `bind_fans`), not its own.
    takes_fans: ClassVar[bool] = False

    def fans_of(self, name: str) -> str | None:
        """The tensor whose fans this initializer uses instead of those of its own tensor
        ``name`` (None: its own). The spec resolver computes that tensor's fans and calls
        `bind_fans` (`varscale_cli.spec.links`)."""
        return None

    def bind_fans(self, fan_in: int, fan_out: int, weight: str | None = None) -> Initializer:
        """This initializer with the fans of the tensor `fans_of` named (``weight``, its name
        spelled out); itself if it takes none."""
        return self

    def to_spec(self) -> Config:
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
        """``(fan_in, fan_out)`` of ``shape``: the initializer's own (`_own_fans`) if it sets
        them, else from the layout (default: `default_layout`) and axes (`fans.compute_fans`)."""
        given = in_axis is not None or out_axis is not None or bool(batch_axis)
        own = self._own_fans(shape, given)
        if own is not None:
            return own
        return compute_fans(shape, layout or self.default_layout, in_axis, out_axis, batch_axis)

    def _own_fans(self, shape: Sequence[int], axes_given: bool) -> tuple[int, int] | None:
        """The fans this initializer's config sets for ``shape`` (Keras's input_axes /
        output_axes), or None; ``axes_given``: the tensor names its own axes too."""
        return None

    def __call__(
        self,
        shape: Sequence[int],
        dtype: DTypeSpec | None = None,
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
            dtype: overrides the constructor's dtype; floating, or complex where the
                initializer supports it (`supports_dtype`).
            partition_info: fans from its ``full_shape``; values are the slice at ``var_offset``.
            stream: the stream name; tensors with different names get independent values.
            layout, in_axis, out_axis, batch_axis: the fan convention (see `fans.compute_fans`).
        """
        dtype = self._supported(dtype if dtype is not None else self.dtype)
        shape = tuple(int(d) for d in shape)
        full_shape, offset = self._region(shape, partition_info)
        fan_in, fan_out = self.fans(full_shape, layout, in_axis, out_axis, batch_axis)
        dist = self.law(fan_in, fan_out, dtype, shape=full_shape, layout=layout)
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
        return (
            isinstance(other, Initializer)
            and type(self) is type(other)
            and self.get_config() == other.get_config()
        )

    def __hash__(self) -> int:
        return hash((type(self), repr(self)))


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "little") >> 1


def fan_n(mode: str, fan_in: float, fan_out: float) -> float:
    """The ``n`` of ``scale / n`` for a mode (``fan_in`` ... ``fan_geo_avg``), at least 1."""
    if mode == "fan_in":
        n = fan_in
    elif mode == "fan_out":
        n = fan_out
    elif mode == "fan_avg":
        n = (fan_in + fan_out) / 2.0
    else:
        n = math.sqrt(fan_in * fan_out)
    return max(1.0, float(n))  # TF/Keras guard: a zero-size tensor never divides by zero


def number(value: object, what: str) -> float:
    """``value`` as a float, or ValueError if it is not a finite real number."""
    f = finite_float(value)
    if f is None:
        raise ValueError(f"`{what}` must be a finite number. Received: {what}={show_py(value)}")
    return f
