"""`Format`: what a format module declares about itself, and `ByteLayout`, where its bytes go.

Each format module ends with one ``FORMAT = Format(...)``; `varscale_cli.formats.REGISTRY`
lists them, and everything that depends on the set of formats derives from that list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..core.dtypes import DTYPES
from .base import WeightFile
from .items import WriteItem

#: What the writers can store at most: what the random stream samples (float8_e4m3fn and
#: float8_e5m2 among them) plus the complex dtypes (constant initializers); the other 8-bit
#: floats are read wherever a file holds them but never written. Each format narrows this in
#: its `Format.dtypes`, in this order.
WRITABLE_DTYPES: tuple[str, ...] = tuple(
    d.name for d in DTYPES if d.sampled or d.kind == "complex"
)



@dataclass(frozen=True)
class TensorSpan:
    """Where one tensor's bytes sit in a file: ``nbytes`` bytes from ``offset``."""

    name: str
    offset: int
    nbytes: int


@dataclass(frozen=True)
class ByteLayout:
    """Where a format puts everything, known before any value is sampled.

    Attributes:
        header: the bytes the file starts with, ready to write as is; empty when the format's
            bookkeeping depends on the data (zip CRCs), so only the tensors' offsets are known.
        tensors: every tensor's byte range, in file order; a parallel engine writes each
            tensor's bytes at its offset.
    """

    header: bytes
    tensors: tuple[TensorSpan, ...]


Items = Sequence[WriteItem]
Metadata = Mapping[str, str]


@dataclass(frozen=True)
class Format:
    """Everything varscale knows about one file format; one per format module.

    Attributes:
        name: the format's name (``--format`` choice, messages).
        suffixes: file suffixes (lower case) that name it; the first is the one messages cite.
        magic: the bytes a file of this format starts with (any of them), checked when the
            suffix says nothing; empty when the format has none and relies on `sniff`.
        sniff: a test of a file's first `sniff_bytes` bytes, for formats without magic bytes.
        dtypes: the dtype names it can store, in `WRITABLE_DTYPES` order (messages list them).
        reserved: tensor names the format keeps for itself.
        limits: the format's size limits, by name, for documentation and tests.
        reader: the `WeightFile` class that opens a file of this format.
        write: writes a complete file: ``write(path, items, metadata)``.
        planned_size: the size ``write`` will produce (exact or a close upper bound).
        check: the format's own checks, before sampling (``check(items, names, metadata)``):
            its name rules, and whatever needs the metadata too (safetensors: the header size
            limit, which the provenance counts towards).
        layout: the header bytes and every tensor's byte range, or None if the format's
            library places the data itself.
    """

    name: str
    suffixes: tuple[str, ...]
    magic: tuple[bytes, ...]
    dtypes: tuple[str, ...]
    reserved: tuple[str, ...]
    reader: Callable[..., WeightFile]  # reader(path, *, max_tensors=...)
    write: Callable[[Path, Items, Metadata], None]
    planned_size: Callable[[Items, Metadata], int]
    check: Callable[[Items, set[str], Metadata], None]
    layout: Callable[[Items, Metadata], ByteLayout] | None = None
    sniff: Callable[[bytes], bool] | None = None
    limits: Mapping[str, int] = field(default_factory=dict)

    @property
    def sniff_bytes(self) -> int:
        """How many leading bytes `detects` needs."""
        return max((len(m) for m in self.magic), default=SNIFF_BYTES)

    def detects(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` is of this format."""
        if self.magic:
            return head.startswith(self.magic)
        return self.sniff is not None and self.sniff(head)


#: Leading bytes a `Format.sniff` may look at (safetensors: the 8-byte length and one more).
SNIFF_BYTES = 9
