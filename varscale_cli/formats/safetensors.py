"""safetensors: our own header parser and a streaming writer, byte for byte the reference's.

Reading. Why not ``safetensors.numpy``: it cannot return float8 tensors (safetensors#682),
needs ml_dtypes imported for bfloat16, and loads whole tensors. Here the header is parsed and
checked rule by rule as the Rust reader's ``read_metadata`` / ``Metadata::validate`` do
(safetensors/src/tensor.rs), and values are read with positioned reads in bounded chunks, then
viewed as the tensor's dtype (ml_dtypes for bf16 and float8). Error messages carry the
reference's error name (``HeaderTooLarge``, ``InvalidOffset``, ...) so a user can match them
with what other tools report.

Writing. The layout matches the reference writer (``tensor.rs`` ``prepare``) so that files are
interchangeable byte for byte where the reference is deterministic:

* 8-byte little-endian u64 header length, then compact JSON, space-padded to a multiple of 8;
* ``__metadata__`` first (keys sorted here; the reference uses hash order, which is why it is
  only reproducible with a single key), then the tensors in offset order;
* tensors sorted by dtype alignment descending (the reference ``Dtype`` enum order), ties by
  name, offsets consecutive with no holes, so every tensor is aligned to its element size.

The ``safetensors`` package is not used for writing: it needs every tensor in memory at once.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from ..core.dtypes import ML_DTYPES, numpy_dtype
from ..errors import ReadError, SpecError
from .base import (
    MAX_JSON_BYTES,
    MAX_TENSORS,
    BaseWeightFile,
    TensorInfo,
    loads_strict,
    native,
    one_line,
)
from .description import WRITABLE_DTYPES, ByteLayout, Format, TensorSpan
from .items import WriteItem, chunk_bytes

#: The reference reader's limit on the header length (MAX_HEADER_SIZE in tensor.rs).
MAX_HEADER_SIZE = MAX_JSON_BYTES

#: The header key reserved for the metadata map.
METADATA_KEY = "__metadata__"

#: Offsets and shapes are Rust ``usize``: on the 64-bit platforms that matter, < 2**64.
_USIZE_LIMIT = 1 << 64

#: dtype code -> (bits per element, dtype name or None if varscale cannot read it), in the
#: order of safetensors' ``enum Dtype`` (codes and sizes from its ``bitsize()``). The writer
#: sorts tensors by position in this enum, descending: the enum is declared in increasing
#: alignment order, so F64 > C64 > F32 > BF16 > F16 (verified against safetensors 0.8.0).
DTYPE_CODES: dict[str, tuple[int, str | None]] = {
    "BOOL": (8, "bool"),
    "F4": (4, None),
    "F6_E2M3": (6, None),
    "F6_E3M2": (6, None),
    "U8": (8, "uint8"),
    "I8": (8, "int8"),
    "F8_E5M2": (8, "float8_e5m2"),
    "F8_E4M3": (8, "float8_e4m3fn"),  # the "fn" variant: no inf, max 448
    "F8_E8M0": (8, "float8_e8m0fnu"),
    "F8_E4M3FNUZ": (8, "float8_e4m3fnuz"),
    "F8_E5M2FNUZ": (8, "float8_e5m2fnuz"),
    "I16": (16, "int16"),
    "U16": (16, "uint16"),
    "F16": (16, "float16"),
    "BF16": (16, "bfloat16"),
    "I32": (32, "int32"),
    "U32": (32, "uint32"),
    "F32": (32, "float32"),
    "C64": (64, "complex64"),
    "F64": (64, "float64"),
    "I64": (64, "int64"),
    "U64": (64, "uint64"),
}


@functools.cache
def file_dtype(code: str) -> np.dtype | None:
    """The little-endian numpy dtype a dtype code is read as (None: varscale cannot read it);
    looked up when a file holds the code, so ml_dtypes is imported only for files with
    bfloat16 or float8 tensors."""
    name = DTYPE_CODES[code][1]
    if name is None:
        return None
    # safetensors stores little-endian; ml_dtypes types have no byte order.
    return numpy_dtype(name) if name in ML_DTYPES else np.dtype(name).newbyteorder("<")

#: dtype name -> (its code, its rank in the reference enum), for the dtypes varscale writes.
_WRITE_CODES: dict[str, tuple[str, int]] = {
    name: (code, rank)
    for rank, (code, (_, name)) in enumerate(DTYPE_CODES.items())
    if name in WRITABLE_DTYPES
}


#: A JSON string literal (the unrolled form of ``"(?:[^"\\]|\\.)*"``, linear in its length),
#: or a ``{`` outside of one (group 1).
_STRING_OR_BRACE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|(\{)')


def _objects(raw: bytes, enough: int) -> int:
    """How many JSON objects the header text holds, counted before json builds one dict each.

    Every tensor entry is an object, and so are ``__metadata__`` and the header itself. A ``{``
    byte outside a string literal opens an object, and JSON escapes cannot spell one, so the
    count of ``{`` bytes is an upper bound (one pass in C); only when it is over ``enough``
    (string values such as provenance JSON hold braces too) are the braces outside string
    literals counted exactly, one match at a time (no copy of the header).
    """
    upper = raw.count(b"{")
    if upper <= enough:
        return upper
    return sum(1 for m in _STRING_OR_BRACE.finditer(raw) if m.lastindex)


def _is_uint(value: Any) -> bool:
    # json gives bool for true/false, and bool is an int subclass: refuse it explicitly.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _USIZE_LIMIT


class SafetensorsFile(BaseWeightFile):
    """One ``.safetensors`` file, header validated on open, values read in chunks."""

    #: iter_chunks uses positional reads (preadv) and no shared cursor: safe from threads.
    thread_safe = True

    def __init__(self, path: str | Path, *, max_tensors: int = MAX_TENSORS) -> None:
        self._spans: dict[str, tuple[int, int]] = {}
        self._codes: dict[str, str] = {}
        self._reused = bytearray()  # the one read buffer of iter_chunks(reuse=True)
        self._f: io.BufferedReader | None = self._open_input(path, max_tensors)  # close() closes it
        self._open_guarded(self._parse, "invalid safetensors file")

    def _fail(self, what: str) -> ReadError:
        return ReadError(f"'{self.path}': invalid safetensors header: {what}")

    def _parse(self) -> None:
        assert self._f is not None
        size = os.fstat(self._f.fileno()).st_size
        if size < 8:
            raise self._fail(f"HeaderTooSmall: the file has {size} bytes, fewer than the 8-byte header length")
        (n,) = struct.unpack("<Q", self._f.read(8))
        if n > MAX_HEADER_SIZE:
            raise self._fail(f"HeaderTooLarge: header length {n} exceeds the limit {MAX_HEADER_SIZE}")
        if 8 + n > size:
            raise self._fail(
                f"InvalidHeaderLength: header length {n} runs past the end of the {size}-byte file"
            )
        raw = self._f.read(n)
        if len(raw) != n:
            raise self._fail("InvalidHeaderLength: the file shrank while the header was read")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._fail(f"InvalidHeader: the header is not UTF-8 (byte {exc.start})") from None
        # The header object itself and __metadata__ are objects too (an escaped spelling of
        # the key only makes this count one higher than the exact check after parsing).
        others = 1 + (b'"__metadata__"' in raw)
        self._check_tensor_count(
            _objects(raw, self._max_tensors + others) - others, "entries in its header"
        )
        try:
            header = loads_strict(text)
        except (ValueError, RecursionError) as exc:
            raise self._fail(f"InvalidHeaderDeserialization: {one_line(str(exc))}") from None
        if not isinstance(header, dict):
            raise self._fail("InvalidHeaderDeserialization: the header is not a JSON object")
        self.metadata = self._parse_metadata(header.pop(METADATA_KEY, None))
        self._check_tensor_count(len(header))
        entries = [self._parse_entry(name, info) for name, info in header.items()]
        # The reference sorts by data_offsets, then requires them to tile the buffer exactly.
        entries.sort(key=lambda e: (e[3], e[4]))
        start = 0
        for name, code, shape, begin, end in entries:
            if begin != start or end < begin:
                raise self._fail(
                    f"InvalidOffset: invalid offset for tensor {name!r}: data_offsets "
                    f"[{begin}, {end}], expected a span starting at {start}"
                )
            bits = DTYPE_CODES[code][0]
            nbits = math.prod(shape) * bits
            if nbits >= _USIZE_LIMIT * 8:
                raise self._fail(f"ValidationOverflow: tensor {name!r} shape {list(shape)} overflows")
            if nbits % 8:
                raise self._fail(
                    f"MisalignedSlice: tensor {name!r} ({code} {list(shape)}) is not a whole number of bytes"
                )
            if end - begin != nbits // 8:
                raise self._fail(
                    f"TensorInvalidInfo: tensor {name!r} ({code} {list(shape)}) needs "
                    f"{nbits // 8} bytes but its data_offsets span {end - begin}"
                )
            start = end
        if 8 + n + start != size:
            what = "trailing bytes after" if size > 8 + n + start else "the file is truncated before"
            raise self._fail(
                f"MetadataIncompleteBuffer: {what} the tensor data (tensors end at byte "
                f"{8 + n + start}, the file has {size})"
            )
        for name, code, shape, begin, end in entries:
            dtype = file_dtype(code)
            if dtype is None:
                raise ReadError(
                    f"'{self.path}': tensor {name!r} has the packed sub-byte dtype {code}, "
                    "which varscale cannot read"
                )
            self._infos[name] = TensorInfo(name, shape, native(dtype), end - begin)
            self._spans[name] = (8 + n + begin, end - begin)
            self._codes[name] = code

    def _parse_metadata(self, meta: Any) -> dict[str, str]:
        if meta is None:
            return {}
        if not isinstance(meta, dict):
            raise self._fail("InvalidHeaderDeserialization: __metadata__ is not an object")
        for key, value in meta.items():
            if not isinstance(value, str):
                raise self._fail(
                    f"InvalidHeaderDeserialization: __metadata__ value of {key!r} is not a string"
                )
        return dict(meta)

    def _parse_entry(self, name: str, info: Any) -> tuple[str, str, tuple[int, ...], int, int]:
        bad = f"InvalidHeaderDeserialization: tensor {name!r}"
        if not isinstance(info, dict):
            raise self._fail(f"{bad} is not an object")
        missing = [k for k in ("dtype", "shape", "data_offsets") if k not in info]
        if missing:
            raise self._fail(f"{bad} has no {', '.join(missing)}")
        code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(code, str) or code not in DTYPE_CODES:
            raise self._fail(f"{bad} has an unknown dtype {code!r}")
        if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
            raise self._fail(f"{bad} has an invalid shape {one_line(json.dumps(shape), 80)}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_uint(o) for o in offsets)
        ):
            raise self._fail(f"{bad} has invalid data_offsets {one_line(json.dumps(offsets), 80)}")
        return name, code, tuple(shape), offsets[0], offsets[1]

    def dtype_code(self, name: str) -> str:
        """The safetensors dtype code (``"BF16"``, ``"F8_E4M3"``...) of a tensor."""
        self.info(name)
        return self._codes[name]

    def _chunks(self, info: TensorInfo, chunk_elems: int, reuse: bool) -> Iterator[np.ndarray]:
        name = info.name
        offset, nbytes = self._spans[name]
        stored = file_dtype(self._codes[name])
        assert stored is not None
        step = chunk_elems * stored.itemsize
        done = 0
        if reuse and len(self._reused) < min(nbytes, step):
            self._reused = bytearray(min(nbytes, step))
        while done < nbytes:
            take = min(nbytes - done, step)
            buf = memoryview(self._reused)[:take] if reuse else bytearray(take)
            got = self._pread(buf, offset + done)
            if got != take:
                raise ReadError(
                    f"'{self.path}': tensor {name!r} is truncated: the file ended "
                    f"{nbytes - done - got} bytes early (it changed after it was opened)"
                )
            arr = np.frombuffer(buf, dtype=stored)
            yield arr if arr.dtype == info.dtype else arr.astype(info.dtype)
            done += take

    def _pread(self, buf: bytearray | memoryview, offset: int) -> int:
        if self._f is None:
            raise ReadError(f"'{self.path}': the file is closed")
        view = memoryview(buf)
        got = 0
        try:
            while got < len(buf):
                if hasattr(os, "preadv"):
                    n = os.preadv(self._f.fileno(), [view[got:]], offset + got)
                else:  # pragma: no cover - Windows
                    self._f.seek(offset + got)
                    n = self._f.readinto(view[got:]) or 0
                if n == 0:
                    break
                got += n
        except OSError as exc:
            raise ReadError(f"'{self.path}': read failed: {one_line(exc.strerror or str(exc))}") from None
        return got

    def close(self) -> None:
        self._reused = bytearray()
        if self._f is not None:
            self._f.close()
            self._f = None


# --- writing ---------------------------------------------------------------------------------


def layout(
    items: Sequence[WriteItem], metadata: Mapping[str, str]
) -> tuple[bytes, list[WriteItem]]:
    """The padded header (without the 8-byte length) and the items in offset order.

    Args:
        items: The tensors, in any order.
        metadata: The ``__metadata__`` map (str -> str).

    Returns:
        ``(header, ordered)``: the JSON header padded with spaces to a multiple of 8, and the
        items in the order their bytes must follow it.
    """
    # Python compares str by code point, which is the UTF-8 byte order Rust's String uses.
    ordered = sorted(items, key=lambda it: (-_WRITE_CODES[it.dtype.name][1], it.name))
    header: dict[str, object] = {METADATA_KEY: {k: metadata[k] for k in sorted(metadata)}}
    offset = 0
    for item in ordered:
        end = offset + item.nbytes
        header[item.name] = {
            "dtype": _WRITE_CODES[item.dtype.name][0],
            "shape": list(item.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    # serde_json writes UTF-8 as is and escapes only '"', '\\' and control characters (as
    # \n, \t, ... or \u00xx in lowercase hex), exactly what ensure_ascii=False does.
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8), ordered


def header_length(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """The padded JSON header length in bytes."""
    return len(layout(items, metadata)[0])


def byte_layout(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> ByteLayout:
    """The file's first bytes (length and header) and every tensor's absolute byte range."""
    header, ordered = layout(items, metadata)
    start = 8 + len(header)
    spans = []
    for item in ordered:
        spans.append(TensorSpan(item.name, start, item.nbytes))
        start += item.nbytes
    return ByteLayout(len(header).to_bytes(8, "little") + header, tuple(spans))


def planned_size(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """The exact file size."""
    return 8 + header_length(items, metadata) + sum(item.nbytes for item in items)


def write(path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    """Write the header, then stream every tensor in header order with unbuffered writes.

    Raises:
        OutputError: A chunk iterator yields the wrong dtype or byte count (detected before
            anything beyond the tensor's extent is written).
        OSError: The file cannot be written.
    """
    header, ordered = layout(items, metadata)
    # Unbuffered: chunks are large, so a buffer would only add a copy.
    with open(path, "wb", buffering=0) as f:
        _write_all(f, len(header).to_bytes(8, "little") + header)
        for item in ordered:
            with closing(chunk_bytes(item)) as views:
                for view in views:
                    _write_all(f, view)


def _write_all(f: io.FileIO, data: bytes | memoryview) -> None:
    # A raw FileIO write may be partial (Linux caps one write at ~2 GiB), so loop.
    view = memoryview(data)
    while view.nbytes:
        view = view[f.write(view) or 0 :]


def check(items: Sequence[WriteItem], names: set[str], metadata: Mapping[str, str]) -> None:
    """Refuse the reserved metadata key as a tensor name, then a header over the reference
    reader's limit, the metadata included: varscale's provenance holds a record per tensor
    (~290 bytes each), so it can be most of the header (a 250,000-tensor file: 125 MB, of which
    the entries alone are 38 MB)."""
    if METADATA_KEY in names:
        raise SpecError(
            f"tensor name '{METADATA_KEY}' is reserved for the safetensors metadata; "
            "rename the tensor"
        )
    size = header_length(items, metadata)
    if size > MAX_HEADER_SIZE:
        raise SpecError(
            f"the safetensors header would be {size:,} bytes (tensor entries and the "
            f"provenance in __metadata__), over the {MAX_HEADER_SIZE} byte limit of the "
            "reference reader; split the tensors over several files (--max-shard-size)"
        )


def _sniff(head: bytes) -> bool:
    # No magic bytes: an 8-byte length, then a JSON object (the reference tolerates leading
    # whitespace before it).
    return len(head) == 9 and head[8:9] in (b"{", b" ", b"\t", b"\n", b"\r")


FORMAT = Format(
    name="safetensors",
    suffixes=(".safetensors",),
    magic=(),
    sniff=_sniff,
    # safetensors has a C64 code but no C128 one.
    dtypes=tuple(name for name in WRITABLE_DTYPES if name in _WRITE_CODES),
    reserved=(METADATA_KEY,),
    limits={"max_header_bytes": MAX_HEADER_SIZE},
    reader=SafetensorsFile,
    write=write,
    planned_size=planned_size,
    check=check,
    layout=byte_layout,
)
