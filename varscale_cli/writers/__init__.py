"""Streaming writers for safetensors, npz and HDF5 files, and what each format can hold.

Every writer takes a sequence of :class:`WriteItem` (name, shape, dtype and a factory of chunk
iterators) and never holds more than one chunk of tensor data at a time. All three produce
byte-identical files for identical inputs. The checks here (:func:`check_items`) need only
names, shapes and dtypes, so the caller runs them before sampling a single value.

The format modules are imported lazily so that ``varscale --help`` and safetensors-only runs
never pay for importing h5py.
"""

from __future__ import annotations

import importlib
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import ml_dtypes
import numpy as np

from ..engine.atomic import check_interrupt
from ..errors import OutputError, SpecError, UnsupportedDtype

FORMATS: tuple[str, ...] = ("safetensors", "npz", "hdf5")

_SUFFIXES = {".safetensors": "safetensors", ".npz": "npz", ".h5": "hdf5", ".hdf5": "hdf5"}

BFLOAT16 = np.dtype(ml_dtypes.bfloat16)

#: The dtypes each format can store, in the order they are listed in error messages.
ALLOWED_DTYPES: dict[str, tuple[str, ...]] = {
    # safetensors has a C64 code but no C128 one.
    "safetensors": ("float16", "bfloat16", "float32", "float64", "complex64"),
    # npz stores bfloat16 as its uint16 bit pattern plus a manifest entry.
    "npz": ("float16", "bfloat16", "float32", "float64", "complex64", "complex128"),
    # HDF5 stores bfloat16 as 2-byte opaque data with attr dtype="bfloat16" (the Keras 3 way).
    "hdf5": ("float16", "bfloat16", "float32", "float64", "complex64", "complex128"),
}

#: The npz member holding the dtype manifest and the metadata; no tensor may use the name.
NPZ_MANIFEST = "__varscale__"

#: The safetensors header key reserved for the metadata map.
SAFETENSORS_METADATA = "__metadata__"

#: Dataset attribute marking bfloat16 data in HDF5 (Keras 3 reads it); item attrs may not use it.
HDF5_DTYPE_ATTR = "dtype"

#: The reference safetensors reader refuses headers larger than this (MAX_HEADER_SIZE).
SAFETENSORS_MAX_HEADER = 100_000_000

#: A zip member name is at most 65535 bytes long; ".npy" takes 4 of them.
_NPZ_MAX_NAME = 65535 - 4

_LITTLE_ENDIAN = sys.byteorder == "little"


@dataclass(frozen=True)
class WriteItem:
    """One tensor to write: its layout and a way to produce its data in chunks.

    Attributes:
        name: The tensor name; may contain '/' (HDF5 groups, npz member folders) and '.'.
        shape: The tensor shape; ``()`` for a scalar, any zero dimension for an empty tensor.
        dtype: float16, float32, float64, complex64, complex128 or ``ml_dtypes.bfloat16``.
        chunks: Each call returns a fresh iterator of 1-D C-contiguous arrays of ``dtype``
            whose concatenation is the tensor's data in C order. Yielded arrays may be reused
            buffers, so a writer consumes each one before advancing the iterator.
        attrs: Per-tensor provenance strings (JSON text); HDF5 stores them as dataset
            attributes, the other formats ignore them.
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    chunks: Callable[[], Iterator[np.ndarray]] = field(compare=False)
    attrs: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        # Normalise so that callers may pass lists and dtype-likes (np.float32, "float16").
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """The number of data bytes (Python int: no overflow for huge tensors)."""
        return self.size * self.dtype.itemsize


def format_for(path: Path, fmt: str | None) -> str:
    """The output format: ``fmt`` when given, else the one the suffix of ``path`` names.

    Args:
        path: The output path.
        fmt: An explicit format (one of :data:`FORMATS`) or None.

    Returns:
        One of :data:`FORMATS`.

    Raises:
        SpecError: ``fmt`` is unknown, or it is None and the suffix names no format.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise SpecError(f"unknown format '{fmt}'; use safetensors, npz or hdf5")
        return fmt
    found = _SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise SpecError(
            f"cannot tell the format of '{path}' from its suffix; use --format "
            "safetensors|npz|hdf5 or a .safetensors, .npz, .h5 or .hdf5 suffix"
        )
    return found


def check_items(fmt: str, items: Sequence[WriteItem]) -> None:
    """Refuse, before any sampling, every tensor that ``fmt`` cannot store as asked.

    Args:
        fmt: One of :data:`FORMATS`.
        items: The tensors to write.

    Raises:
        UnsupportedDtype: A dtype the format cannot store (the message names the tensor, the
            dtype and what the format allows).
        SpecError: An unknown format, a duplicate, empty or format-invalid name, names that
            collide as HDF5 groups or npz members, or a safetensors header over 100 MB.
    """
    if fmt not in FORMATS:
        raise SpecError(f"unknown format '{fmt}'; use safetensors, npz or hdf5")
    allowed = ALLOWED_DTYPES[fmt]
    seen: set[str] = set()
    for item in items:
        _check_name(item.name)
        if item.name in seen:
            raise SpecError(f"tensor name '{item.name}' appears more than once")
        seen.add(item.name)
        if any(d < 0 for d in item.shape):
            raise SpecError(f"tensor '{item.name}' has a negative dimension in shape {item.shape}")
        if item.dtype.name not in allowed:
            raise UnsupportedDtype(
                f"tensor '{item.name}' has dtype {item.dtype.name}, which {fmt} cannot store; "
                f"{fmt} stores {_join(allowed)}"
            )
    if fmt == "safetensors":
        _check_safetensors(items, seen)
    elif fmt == "npz":
        _check_npz(items, seen)
    else:
        _check_hdf5(items, seen)


def write(fmt: str, path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    """Write the complete file at ``path``, streaming each tensor's chunks.

    Args:
        fmt: One of :data:`FORMATS`.
        path: Where to write; normally the temp path of :func:`varscale_cli.engine.atomic.atomic_output`
            (it is truncated if it exists).
        items: The tensors, in the order the caller wants them (safetensors reorders them by
            dtype size, like the reference writer, so that every tensor is aligned).
        metadata: A str -> str map: safetensors ``__metadata__``, npz manifest, HDF5 root attrs.

    Raises:
        SpecError: As :func:`check_items` (it is run again here; it is cheap).
        OutputError: A chunk iterator yielded the wrong dtype or number of bytes.
        OSError: The file could not be written (``atomic_output`` turns it into OutputError).
    """
    check_items(fmt, items)
    _check_metadata(metadata)
    _module(fmt).write(Path(path), items, metadata)


def planned_size(fmt: str, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """The file size :func:`write` will produce: exact for safetensors, a close upper bound else.

    Args:
        fmt: One of :data:`FORMATS`.
        items: The tensors.
        metadata: The metadata map that will be written.

    Returns:
        A byte count for the free-disk-space check.
    """
    if fmt not in FORMATS:
        raise SpecError(f"unknown format '{fmt}'; use safetensors, npz or hdf5")
    return int(_module(fmt).planned_size(items, metadata))


def checked_chunks(item: WriteItem) -> Iterator[np.ndarray]:
    """The chunks of ``item`` as 1-D arrays, verified to add up to exactly ``item.size``.

    Raises OutputError before a chunk that would overflow the tensor is handed on, so no writer
    ever writes past the bytes its header promised; the shortfall check runs once the iterator
    is exhausted. A wrong dtype is also an OutputError: bfloat16 and float16 have the same size,
    so a byte count alone would not notice the mix-up. Closing this generator closes the item's
    iterator; use it as ``with closing(checked_chunks(item)) as chunks:``.
    """
    total = item.size
    done = 0
    chunks = item.chunks()
    try:
        for arr in chunks:
            check_interrupt()  # Ctrl-C / SIGTERM while writing, at a safe point
            if arr.dtype != item.dtype:
                raise OutputError(
                    f"internal error: tensor '{item.name}' produced a {arr.dtype.name} chunk but "
                    f"its dtype is {item.dtype.name}"
                )
            # A no-op for the contracted 1-D C-contiguous chunks; copies anything else rather
            # than writing strided memory as if it were contiguous.
            flat = np.ascontiguousarray(arr).reshape(-1)
            if done + flat.size > total:
                raise OutputError(
                    f"internal error: tensor '{item.name}' produced more than its "
                    f"{total * item.dtype.itemsize} bytes"
                )
            done += flat.size
            yield flat
    finally:
        # Stop the producer now (its worker threads, its buffers) rather than whenever the
        # traceback that references it is freed.
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    if done != total:
        raise OutputError(
            f"internal error: tensor '{item.name}' produced {done * item.dtype.itemsize} bytes "
            f"but its shape {item.shape} and dtype {item.dtype.name} need "
            f"{total * item.dtype.itemsize}"
        )


def chunk_bytes(item: WriteItem) -> Iterator[memoryview]:
    """The checked chunks of ``item`` as little-endian byte views, ready for ``write``.

    Use it as ``with closing(chunk_bytes(item)) as views:`` so that a failed write stops the
    producer at once.
    """
    with closing(checked_chunks(item)) as chunks:
        for flat in chunks:
            if not _LITTLE_ENDIAN:  # pragma: no cover - every platform varscale runs on is LE
                flat = flat.byteswap()
            # Viewing as uint8 first: ml_dtypes arrays do not export a buffer format memoryview
            # understands, while a uint8 view of the same memory always does.
            yield memoryview(flat.view(np.uint8))


def _module(fmt: str) -> ModuleType:
    return importlib.import_module(f".{fmt}", __name__)


def _join(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _check_name(name: object) -> None:
    if not isinstance(name, str):
        raise SpecError(f"tensor name {name!r} is not a string")
    if not name:
        raise SpecError("a tensor has an empty name; every tensor needs a non-empty name")
    if "\x00" in name:
        # zip truncates member names at NUL, HDF5 names are C strings.
        raise SpecError(f"tensor name {name!r} contains a NUL character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise SpecError(f"tensor name {name!r} is not valid Unicode (lone surrogate)") from None


def _check_metadata(metadata: Mapping[str, str], where: str = "metadata") -> None:
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SpecError(f"{where} entry {key!r}: {value!r} is not a string -> string pair")
        if not key or "\x00" in key or "\x00" in value:
            # HDF5 attribute names and string values are C strings.
            raise SpecError(f"{where} entry {key!r} has an empty key or a NUL character")


def _check_safetensors(items: Sequence[WriteItem], names: set[str]) -> None:
    if SAFETENSORS_METADATA in names:
        raise SpecError(
            f"tensor name '{SAFETENSORS_METADATA}' is reserved for the safetensors metadata; "
            "rename the tensor"
        )
    from .safetensors import header_length

    # The metadata is not known here; the caller's map adds a few hundred bytes at most, far
    # inside the margin a 100 MB header would need to matter.
    size = header_length(items, {})
    if size > SAFETENSORS_MAX_HEADER:
        raise SpecError(
            f"the safetensors header would be {size} bytes, over the {SAFETENSORS_MAX_HEADER} "
            "byte limit of the reference reader; split the tensors over several files"
        )


def _check_npz(items: Sequence[WriteItem], names: set[str]) -> None:
    if NPZ_MANIFEST in names:
        raise SpecError(
            f"tensor name '{NPZ_MANIFEST}' is reserved for the npz dtype manifest; "
            "rename the tensor"
        )
    for item in items:
        if len(item.name.encode("utf-8")) > _NPZ_MAX_NAME:
            raise SpecError(f"tensor name '{item.name[:40]}...' is too long for a zip member")
        # np.load maps both 'x' and 'x.npy' to member 'x.npy', so a tensor named 'x.npy' next
        # to a tensor (or the manifest) named 'x' could never be read back by its own name.
        if item.name.endswith(".npy"):
            base = item.name[: -len(".npy")]
            if base in names or base == NPZ_MANIFEST:
                raise SpecError(
                    f"tensor names '{base}' and '{item.name}' clash in an npz file "
                    f"(np.load(...)['{item.name}'] returns '{base}'); rename one of them"
                )


def _check_hdf5(items: Sequence[WriteItem], names: set[str]) -> None:
    for item in items:
        parts = item.name.split("/")
        if any(p in ("", ".") for p in parts):
            raise SpecError(
                f"tensor name '{item.name}' is not a valid HDF5 path: it has an empty or '.' "
                "component (a leading, trailing or doubled '/')"
            )
        # 'a' and 'a/b' would need 'a' to be both a dataset and a group.
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in names:
                raise SpecError(
                    f"tensors '{prefix}' and '{item.name}' collide in HDF5: '{prefix}' would "
                    "have to be both a dataset and a group; rename one of them"
                )
        _check_metadata(item.attrs, f"tensor '{item.name}' attribute")
        if HDF5_DTYPE_ATTR in item.attrs:
            raise SpecError(
                f"tensor '{item.name}': attribute '{HDF5_DTYPE_ATTR}' is reserved for the "
                "bfloat16 marker in HDF5"
            )
