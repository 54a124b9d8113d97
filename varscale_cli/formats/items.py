"""What the writers take: `WriteItem`, its checked chunk streams, and the name checks.

Every writer takes a sequence of :class:`WriteItem` (name, shape, dtype and a factory of chunk
iterators) and never holds more than one chunk of tensor data at a time. The checks here need
only names, shapes and dtypes, so the caller runs them before sampling a single value.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field

import numpy as np

from ..engine.atomic import check_interrupt
from ..errors import InternalError, SpecError

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


def checked_chunks(item: WriteItem) -> Generator[np.ndarray, None, None]:
    """The chunks of ``item`` as 1-D arrays, verified to add up to exactly ``item.size``.

    Raises InternalError (a producer broke its contract: a bug, not a user error) before a
    chunk that would overflow the tensor is handed on, so no writer ever writes past the bytes
    its header promised; the shortfall check runs once the iterator is exhausted. A wrong dtype
    is also an InternalError: bfloat16 and float16 have the same size,
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
                raise InternalError(
                    f"internal error: tensor '{item.name}' produced a {arr.dtype.name} chunk but "
                    f"its dtype is {item.dtype.name}"
                )
            # A no-op for the contracted 1-D C-contiguous chunks; copies anything else rather
            # than writing strided memory as if it were contiguous.
            flat = np.ascontiguousarray(arr).reshape(-1)
            if done + flat.size > total:
                raise InternalError(
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
        raise InternalError(
            f"internal error: tensor '{item.name}' produced {done * item.dtype.itemsize} bytes "
            f"but its shape {item.shape} and dtype {item.dtype.name} need "
            f"{total * item.dtype.itemsize}"
        )


def chunk_bytes(item: WriteItem) -> Generator[memoryview, None, None]:
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
            yield flat.view(np.uint8).data


def join(names: Sequence[str]) -> str:
    """``a, b and c``: how messages list what a format stores."""
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def check_name(name: object) -> None:
    """Refuse a name no format can store: not a string, empty, with NUL, or not encodable."""
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


def check_metadata(metadata: Mapping[str, str], where: str = "metadata") -> None:
    """Refuse metadata that is not str -> str, or that HDF5's C strings cannot hold."""
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise SpecError(f"{where} entry {key!r}: {value!r} is not a string -> string pair")
        if not key or "\x00" in key or "\x00" in value:
            # HDF5 attribute names and string values are C strings.
            raise SpecError(f"{where} entry {key!r} has an empty key or a NUL character")
