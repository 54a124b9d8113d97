"""The one dtype table: every dtype varscale names, what it is, and which ones it can sample.

Everything else (the spec's dtype field and its schema enum, the initializers' dtype checks,
what each format stores, how readers name what they find, the statistics' notion of a float)
derives from :data:`DTYPES`. ``ml_dtypes`` is imported only when a 16- or 8-bit float is
actually needed, so a float32-only run never pays for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

Kind = Literal["float", "complex"]


@dataclass(frozen=True)
class DType:
    """One dtype.

    Attributes:
        name: the canonical name, as numpy / ml_dtypes spell it.
        kind: ``float`` (real floating point, including the ml_dtypes ones) or ``complex``.
        itemsize: bytes per element.
        sampled: varscale's random stream can produce it.
        ml_dtypes: numpy cannot name it; ``ml_dtypes`` provides it under ``name``.
        aliases: other spellings accepted on input (spec files, library calls).
    """

    name: str
    kind: Kind
    itemsize: int
    sampled: bool = False
    ml_dtypes: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def numpy(self) -> np.dtype:
        """The numpy dtype object (from ml_dtypes for bfloat16 and the float8 types)."""
        return _numpy_dtype(self.name)


DTYPES: tuple[DType, ...] = (
    DType("float16", "float", 2, sampled=True, aliases=("half", "f16")),
    DType("bfloat16", "float", 2, sampled=True, ml_dtypes=True, aliases=("bf16",)),
    DType("float32", "float", 4, sampled=True, aliases=("float", "f32")),
    DType("float64", "float", 8, sampled=True, aliases=("double", "f64")),
    DType("complex64", "complex", 8),
    DType("complex128", "complex", 16),
    # 8-bit floats: read (and judged by stats) wherever a file holds them. The two OCP FP8
    # formats are also sampled: in float32, then rounded to nearest even with saturation
    # (`rounding.SATURATING`).
    DType("float8_e4m3fn", "float", 1, sampled=True, ml_dtypes=True),
    DType("float8_e5m2", "float", 1, sampled=True, ml_dtypes=True),
    DType("float8_e4m3fnuz", "float", 1, ml_dtypes=True),
    DType("float8_e5m2fnuz", "float", 1, ml_dtypes=True),
    DType("float8_e8m0fnu", "float", 1, ml_dtypes=True),
    # 8-bit floats no format names (no safetensors code, not in Keras): judged by stats when
    # a caller hands it such an array; ml_dtypes >= 0.5 provides the first two.
    DType("float8_e4m3", "float", 1, ml_dtypes=True),
    DType("float8_e3m4", "float", 1, ml_dtypes=True),
    DType("float8_e4m3b11fnuz", "float", 1, ml_dtypes=True),
)

BY_NAME: dict[str, DType] = {d.name: d for d in DTYPES}

#: Every accepted spelling -> its canonical name.
ALIASES: dict[str, str] = {a: d.name for d in DTYPES for a in (d.name, *d.aliases)}

#: The dtypes the random stream can produce, in the order messages list them.
SAMPLED: tuple[str, ...] = tuple(d.name for d in DTYPES if d.sampled)

#: Every spelling of a sampled dtype -> its canonical name (what initializers accept).
SAMPLED_ALIASES: dict[str, str] = {
    a: d.name for d in DTYPES if d.sampled for a in (d.name, *d.aliases)
}

#: The complex dtypes.
COMPLEX: tuple[str, ...] = tuple(d.name for d in DTYPES if d.kind == "complex")

#: The dtypes numpy cannot name by itself (bfloat16 and the float8 family).
ML_DTYPES: tuple[str, ...] = tuple(d.name for d in DTYPES if d.ml_dtypes)


def canonical(name: object) -> str | None:
    """The canonical name of a spelling (``bf16`` -> ``bfloat16``), or None if unknown."""
    return ALIASES.get(name) if isinstance(name, str) else None


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype object of a canonical dtype name (KeyError for an unknown one)."""
    return BY_NAME[name].numpy


@cache
def _numpy_dtype(name: str) -> np.dtype:
    if BY_NAME[name].ml_dtypes:
        import ml_dtypes  # deferred: costs 0.15-0.5 s of start-up

        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def name_of(dtype: np.dtype) -> str:
    """The name reports and provenance use for a numpy dtype (``float32``, ``bfloat16``...)."""
    return np.dtype(dtype).name


def is_float(dtype: np.dtype) -> bool:
    """A real floating-point dtype, numpy's or one of ml_dtypes' (bfloat16, float8...)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return True
    entry = BY_NAME.get(dtype.name)
    return entry is not None and entry.ml_dtypes and entry.kind == "float"
