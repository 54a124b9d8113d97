"""safetensors reader: our own header parser, validating like the reference implementation.

Why not ``safetensors.numpy``: it cannot return float8 tensors (safetensors#682), needs
ml_dtypes imported for bfloat16, and loads whole tensors. Here the header is parsed and
checked rule by rule as the Rust reader's ``read_metadata`` / ``Metadata::validate`` do
(formats.md 1.6), and values are read with positioned reads in bounded chunks, then viewed
as the tensor's dtype (ml_dtypes for bf16 and float8).

Error messages carry the reference's error name (``HeaderTooLarge``, ``InvalidOffset``, ...)
so a user can match them with what other tools report.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from ..errors import ReadError
from . import (
    DEFAULT_CHUNK_ELEMS,
    LOGICAL_DTYPES,
    BaseWeightFile,
    TensorInfo,
    check_chunk_elems,
    loads_strict,
    native,
    one_line,
)

#: The reference reader's MAX_HEADER_SIZE (safetensors/src/tensor.rs): a larger header is
#: refused before it is read, so a forged length cannot make us allocate gigabytes.
MAX_HEADER_SIZE = 100_000_000

#: Offsets and shapes are Rust ``usize``: on the 64-bit platforms that matter, < 2**64.
_USIZE_LIMIT = 1 << 64

#: dtype code -> (bits per element, numpy dtype or None if varscale cannot read it).
#: Codes and sizes from safetensors' ``enum Dtype`` / ``bitsize()`` (formats.md 1.2).
DTYPES: dict[str, tuple[int, np.dtype | None]] = {
    "BOOL": (8, np.dtype(np.bool_)),
    "F4": (4, None),
    "F6_E2M3": (6, None),
    "F6_E3M2": (6, None),
    "U8": (8, np.dtype(np.uint8)),
    "I8": (8, np.dtype(np.int8)),
    "F8_E5M2": (8, LOGICAL_DTYPES["float8_e5m2"]),
    "F8_E4M3": (8, LOGICAL_DTYPES["float8_e4m3fn"]),  # the "fn" variant: no inf, max 448
    "F8_E8M0": (8, LOGICAL_DTYPES["float8_e8m0fnu"]),
    "F8_E4M3FNUZ": (8, LOGICAL_DTYPES["float8_e4m3fnuz"]),
    "F8_E5M2FNUZ": (8, LOGICAL_DTYPES["float8_e5m2fnuz"]),
    "I16": (16, np.dtype("<i2")),
    "U16": (16, np.dtype("<u2")),
    "F16": (16, np.dtype("<f2")),
    "BF16": (16, LOGICAL_DTYPES["bfloat16"]),
    "I32": (32, np.dtype("<i4")),
    "U32": (32, np.dtype("<u4")),
    "F32": (32, np.dtype("<f4")),
    "C64": (64, np.dtype("<c8")),
    "F64": (64, np.dtype("<f8")),
    "I64": (64, np.dtype("<i8")),
    "U64": (64, np.dtype("<u8")),
}


def _is_uint(value: Any) -> bool:
    # json gives bool for true/false, and bool is an int subclass: refuse it explicitly.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _USIZE_LIMIT


class SafetensorsFile(BaseWeightFile):
    #: iter_chunks uses positional reads (preadv) and no shared cursor: safe from threads.
    thread_safe = True

    """One ``.safetensors`` file, header validated on open, values read in chunks."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = {}
        self._infos = {}
        self._spans: dict[str, tuple[int, int]] = {}
        self._codes: dict[str, str] = {}
        try:
            self._f: BinaryIO | None = open(self.path, "rb")  # closed by close()
        except OSError as exc:
            raise ReadError(f"'{self.path}': cannot open: {one_line(exc.strerror or str(exc))}") from None
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
        try:
            header = loads_strict(text)
        except (ValueError, RecursionError) as exc:
            raise self._fail(f"InvalidHeaderDeserialization: {one_line(str(exc))}") from None
        if not isinstance(header, dict):
            raise self._fail("InvalidHeaderDeserialization: the header is not a JSON object")
        self.metadata = self._parse_metadata(header.pop("__metadata__", None))
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
            bits = DTYPES[code][0]
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
            dtype = DTYPES[code][1]
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
        if not isinstance(code, str) or code not in DTYPES:
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

    def iter_chunks(self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> Iterator[np.ndarray]:
        info = self.info(name)
        check_chunk_elems(chunk_elems)
        offset, nbytes = self._spans[name]
        file_dtype = DTYPES[self._codes[name]][1]
        assert file_dtype is not None
        itemsize = file_dtype.itemsize
        done = 0
        while done < nbytes:
            take = min(nbytes - done, chunk_elems * itemsize)
            buf = bytearray(take)
            got = self._pread(buf, offset + done)
            if got != take:
                raise ReadError(
                    f"'{self.path}': tensor {name!r} is truncated: the file ended "
                    f"{nbytes - done - got} bytes early (it changed after it was opened)"
                )
            arr = np.frombuffer(buf, dtype=file_dtype)
            yield arr if arr.dtype == info.dtype else arr.astype(info.dtype)
            done += take

    def _pread(self, buf: bytearray, offset: int) -> int:
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
        if self._f is not None:
            self._f.close()
            self._f = None


class ShardedSafetensors(BaseWeightFile):
    thread_safe = True  # each shard is a thread-safe SafetensorsFile

    """A Hugging Face sharded checkpoint, read through its ``*.index.json``.

    The index is ``{"metadata": {...}, "weight_map": {tensor: shard file}}``. Every shard
    named must exist next to the index (no absolute paths, no ``..``), be a valid safetensors
    file, and hold exactly the tensors the index assigns to it: a tensor missing from its
    shard, present in another, or absent from the index is an error.

    ``metadata`` is the index's metadata (values as text) overlaid with the shards'
    ``__metadata__``; varscale provenance (key ``varscale``) is merged so its ``tensors``
    cover every shard.
    """

    def __init__(self, index_path: str | Path) -> None:
        self.path = Path(index_path)
        self.metadata = {}
        self._infos = {}
        self._shards: dict[str, SafetensorsFile] = {}
        self._where: dict[str, str] = {}
        self._open_guarded(self._open, "invalid sharded checkpoint index")

    def _fail(self, what: str) -> ReadError:
        return ReadError(f"'{self.path}': invalid sharded checkpoint index: {what}")

    def _open(self) -> None:
        try:
            size = self.path.stat().st_size
            if size > MAX_HEADER_SIZE:
                raise self._fail(f"the index has {size} bytes, more than {MAX_HEADER_SIZE}")
            text = self.path.read_bytes().decode("utf-8")
        except OSError as exc:
            raise ReadError(f"'{self.path}': cannot read: {one_line(exc.strerror or str(exc))}") from None
        except UnicodeDecodeError:
            raise self._fail("not UTF-8") from None
        try:
            index = loads_strict(text)
        except (ValueError, RecursionError) as exc:
            raise self._fail(f"not valid JSON: {one_line(str(exc))}") from None
        if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
            raise self._fail('no "weight_map" object')
        meta = index.get("metadata") or {}
        if not isinstance(meta, dict):
            raise self._fail('"metadata" is not an object')
        weight_map: dict[str, Any] = index["weight_map"]
        for tensor, shard in weight_map.items():
            if not isinstance(shard, str):
                raise self._fail(f"the shard of tensor {tensor!r} is not a file name")
        base = self.path.parent
        for shard in sorted(set(weight_map.values())):
            rel = PurePosixPath(shard.replace("\\", "/"))
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise self._fail(f"shard {shard!r} is not a file name inside the index's folder")
            if not rel.name.endswith(".safetensors"):
                raise self._fail(f"shard {shard!r} is not a .safetensors file")
            shard_path = base.joinpath(*rel.parts)
            if not shard_path.is_file():
                raise self._fail(f"shard {shard!r} listed in the index does not exist")
            self._shards[shard] = SafetensorsFile(shard_path)
        for shard, sf in self._shards.items():
            for info in sf.tensors():
                listed = weight_map.get(info.name)
                if listed is None:
                    raise self._fail(f"tensor {info.name!r} in shard {shard!r} is not in the weight_map")
                if listed != shard:
                    raise self._fail(
                        f"tensor {info.name!r} is in shard {shard!r} but the index puts it in {listed!r}"
                    )
                self._infos[info.name] = info
                self._where[info.name] = shard
        for tensor, shard in weight_map.items():
            if tensor not in self._infos:
                raise self._fail(f"the index puts tensor {tensor!r} in shard {shard!r}, which does not hold it")
        merged: dict[str, str] = {
            str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()
        }
        for sf in self._shards.values():
            for key, value in sf.metadata.items():
                if key == "varscale" and key in merged:
                    merged[key] = _merge_provenance(merged[key], value)
                else:
                    merged[key] = value
        self.metadata = merged

    def iter_chunks(self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> Iterator[np.ndarray]:
        self.info(name)
        return self._shards[self._where[name]].iter_chunks(name, chunk_elems)

    def shard_of(self, name: str) -> Path:
        """The shard file holding ``name``."""
        self.info(name)
        return self._shards[self._where[name]].path

    def close(self) -> None:
        for sf in self._shards.values():
            sf.close()


def _merge_provenance(a: str, b: str) -> str:
    """Union of two shards' varscale provenance JSON: the first's fields, both shards' tensors.

    Unparseable text is passed through unchanged so the provenance parser reports it.
    """
    if a == b:
        return a
    try:
        pa, pb = json.loads(a), json.loads(b)
        tensors = {**pa["tensors"], **pb["tensors"]}
    except (ValueError, TypeError, KeyError):
        return a
    return json.dumps({**pa, "tensors": tensors}, sort_keys=True)
