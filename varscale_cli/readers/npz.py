"""npz reader: a zip of ``.npy`` members, parsed header by header, streamed member by member.

``np.load`` is not used: it reads an ``.npy`` header of any claimed length before checking
it, happily decompresses a member whose header claims far more elements than it stores (and
allocates for the claim), and loses ml_dtypes identity (bfloat16 comes back as ``|V2``,
float8_e5m2 as an unloadable ``<f1``; formats.md 4). Here every member is checked before a
byte of its data is read:

* the ``.npy`` magic and version, a header length of at most `MAX_NPY_HEADER` bytes, then
  numpy's own header parser on those bytes only;
* no object dtype (it would need pickle: refused), no structured or string dtypes;
* ``prod(shape) * itemsize`` equal to the member's size minus its header (a shape "bomb" that
  claims more than it holds, or a member cut short, is refused);
* a deflated member cannot claim more than deflate's maximum ratio of its compressed size.

varscale's writer adds a manifest member ``__varscale__.npy``: a 0-d unicode array holding
JSON ``{"dtypes": {name: "bfloat16", ...}, "metadata": {...}}``; tensors listed in
``dtypes`` are stored as bit patterns (``<u2`` for bf16, ``|u1`` for float8) and read back
as the logical ml_dtypes type.
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import ReadError
from . import (
    DEFAULT_CHUNK_ELEMS,
    LOGICAL_DTYPES,
    BaseWeightFile,
    TensorInfo,
    as_native,
    check_chunk_elems,
    iter_slabs,
    loads_strict,
    native,
    one_line,
)

MANIFEST = "__varscale__.npy"

#: numpy's own default ``max_header_size`` (numpy.lib.format._MAX_HEADER_SIZE): np.load refuses
#: larger headers without allow_pickle, and no plain numeric array needs more.
MAX_NPY_HEADER = 10_000

#: The manifest is JSON text of the size of a safetensors header at most: same limit.
MAX_MANIFEST_BYTES = 100_000_000

#: Deflate cannot expand data by more than 1032:1 (zlib technical details: a 258-byte match
#: costs at least 2 bits, 258 * 8 / 2 = 1032). A member claiming more is lying about its size.
DEFLATE_MAX_RATIO = 1032

#: Slack for the deflate stream's own framing on tiny members.
_DEFLATE_SLACK = 1024

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_STREAM_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error)


@dataclass(frozen=True)
class _Member:
    zinfo: zipfile.ZipInfo
    header_len: int  # bytes before the data: magic, version, length field, header text
    stored: np.dtype  # the dtype the .npy header declares
    fortran: bool


def _read_exact(fp: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at end of stream), never more than asked for."""
    parts = []
    left = n
    while left > 0:
        piece = fp.read(left)
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def parse_npy_header(fp: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header length in bytes) of the ``.npy`` stream ``fp``.

    Reads at most 12 + `MAX_NPY_HEADER` bytes whatever the header claims.

    Raises:
        ValueError: not a .npy stream, unsupported version, oversized or malformed header.
    """
    magic = _read_exact(fp, 8)
    if len(magic) != 8 or magic[:6] != _NPY_MAGIC:
        raise ValueError("not a .npy array (bad magic bytes)")
    version = (magic[6], magic[7])
    if version == (1, 0):
        size_len, reader = 2, np.lib.format.read_array_header_1_0
    elif version in ((2, 0), (3, 0)):
        # 3.0 differs from 2.0 only by a UTF-8 header, which numeric dtypes never need.
        size_len, reader = 4, np.lib.format.read_array_header_2_0
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    size_bytes = _read_exact(fp, size_len)
    if len(size_bytes) != size_len:
        raise ValueError("the .npy header is truncated")
    hlen = int.from_bytes(size_bytes, "little")
    if hlen > MAX_NPY_HEADER:
        raise ValueError(f"its .npy header claims {hlen} bytes, more than {MAX_NPY_HEADER}")
    header = _read_exact(fp, hlen)
    if len(header) != hlen:
        raise ValueError("the .npy header is truncated")
    shape, fortran, dtype = reader(io.BytesIO(size_bytes + header), max_header_size=MAX_NPY_HEADER)
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"invalid shape {shape!r}")
    return tuple(shape), bool(fortran), dtype, 8 + size_len + hlen


class NpzFile(BaseWeightFile):
    """An ``.npz`` archive (``np.savez``, ``np.savez_compressed`` or varscale's writer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = {}
        self._infos = {}
        self._members: dict[str, _Member] = {}
        self._zf: zipfile.ZipFile | None = None
        self._open_guarded(self._open, "not a readable npz file")

    def _open(self) -> None:
        self._zf = zipfile.ZipFile(self.path)
        self._scan()

    def _fail(self, member: str, what: str) -> ReadError:
        return ReadError(f"'{self.path}': member {member!r} {what}")

    def _scan(self) -> None:
        assert self._zf is not None
        zinfos = [z for z in self._zf.infolist() if not z.is_dir()]
        seen: set[str] = set()
        for z in zinfos:
            if z.filename in seen:
                raise self._fail(z.filename, "appears twice in the archive")
            seen.add(z.filename)
        manifest = self._read_manifest(next((z for z in zinfos if z.filename == MANIFEST), None))
        logical = manifest.get("dtypes", {})
        for z in zinfos:
            if z.filename == MANIFEST:
                continue
            self._scan_member(z, logical)
        unknown = sorted(k[: -len(".npy")] for k in logical if k[: -len(".npy")] not in self._members)
        if unknown:
            raise self._fail(MANIFEST, f"lists dtypes for tensors the archive lacks: {', '.join(map(repr, unknown[:5]))}")

    def _check_zinfo(self, z: zipfile.ZipInfo) -> None:
        if z.flag_bits & 0x1:
            raise self._fail(z.filename, "is encrypted")
        if z.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise self._fail(
                z.filename,
                f"uses zip compression method {z.compress_type}; only stored and deflated members "
                "(what numpy writes) are read",
            )
        if z.compress_type == zipfile.ZIP_STORED and z.file_size != z.compress_size:
            raise self._fail(z.filename, "is stored but its sizes disagree")
        if (
            z.compress_type == zipfile.ZIP_DEFLATED
            and z.file_size > DEFLATE_MAX_RATIO * z.compress_size + _DEFLATE_SLACK
        ):
            raise self._fail(
                z.filename,
                f"claims {z.file_size} bytes from {z.compress_size} compressed, beyond deflate's "
                f"{DEFLATE_MAX_RATIO}:1 maximum (a zip bomb), refused",
            )

    def _header(self, z: zipfile.ZipInfo) -> tuple[tuple[int, ...], bool, np.dtype, int]:
        assert self._zf is not None
        try:
            with self._zf.open(z) as fp:
                return parse_npy_header(fp)  # type: ignore[arg-type]
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as exc:
            raise self._fail(z.filename, f"has an invalid .npy header: {one_line(str(exc))}") from None

    def _read_manifest(self, z: zipfile.ZipInfo | None) -> dict[str, Any]:
        if z is None:
            return {}
        assert self._zf is not None
        self._check_zinfo(z)
        shape, _, dtype, hlen = self._header(z)
        if dtype.kind != "U" or shape != ():
            raise self._fail(MANIFEST, "is not a 0-d unicode array")
        if dtype.itemsize > MAX_MANIFEST_BYTES or z.file_size - hlen != dtype.itemsize:
            raise self._fail(MANIFEST, "has an invalid size")
        with self._zf.open(z) as fp:
            raw = _read_exact(fp, z.file_size)[hlen:]  # type: ignore[arg-type]
        try:
            text = str(np.frombuffer(raw, dtype=dtype)[0])
            manifest = loads_strict(text)
        except (ValueError, RecursionError) as exc:
            raise self._fail(MANIFEST, f"is not valid JSON: {one_line(str(exc))}") from None
        if not isinstance(manifest, dict):
            raise self._fail(MANIFEST, "is not a JSON object")
        dtypes = manifest.get("dtypes", {})
        if not isinstance(dtypes, dict) or not all(
            isinstance(v, str) and v in LOGICAL_DTYPES for v in dtypes.values()
        ):
            raise self._fail(
                MANIFEST, f"has invalid 'dtypes' (values must be among {', '.join(LOGICAL_DTYPES)})"
            )
        meta = manifest.get("metadata", {})
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise self._fail(MANIFEST, "has invalid 'metadata' (must map names to strings)")
        self.metadata = dict(meta)
        return {"dtypes": {f"{k}.npy": v for k, v in dtypes.items()}}

    def _scan_member(self, z: zipfile.ZipInfo, logical: dict[str, str]) -> None:
        if not z.filename.endswith(".npy"):
            raise self._fail(z.filename, "is not a .npy array")
        self._check_zinfo(z)
        shape, fortran, stored, hlen = self._header(z)
        if stored.hasobject:
            raise self._fail(z.filename, "has an object dtype, which needs pickle: refused")
        if stored.fields is not None or stored.subdtype is not None:
            raise self._fail(z.filename, f"has the structured dtype {stored}; only numeric arrays are read")
        name = z.filename[: -len(".npy")]
        target = logical.get(z.filename)
        if target is not None:
            dtype = LOGICAL_DTYPES[target]
            if stored.kind not in "uiV" or stored.itemsize != dtype.itemsize:
                raise self._fail(z.filename, f"is stored as {stored}, which cannot hold {target} bit patterns")
        elif stored.kind in "biufc":
            dtype = native(stored)
        elif stored.kind == "V":
            raise self._fail(
                z.filename,
                f"has the opaque dtype {stored.str} and no manifest entry says what it holds "
                "(numpy saves ml_dtypes bfloat16/float8 arrays this way and loses their type)",
            )
        else:
            raise self._fail(z.filename, f"is not numeric (dtype {stored.str})")
        count = math.prod(shape)
        claimed = count * stored.itemsize
        held = z.file_size - hlen
        if claimed != held:
            raise self._fail(
                z.filename,
                f"claims shape {list(shape)} of {stored.str} = {claimed} bytes but holds {held} "
                "(a shape bomb or a truncated member), refused",
            )
        self._members[name] = _Member(z, hlen, stored, fortran and len(shape) > 1)
        self._infos[name] = TensorInfo(name, shape, dtype, claimed)

    def iter_chunks(self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> Iterator[np.ndarray]:
        info = self.info(name)
        check_chunk_elems(chunk_elems)
        member = self._members[name]
        if self._zf is None:
            raise ReadError(f"'{self.path}': the file is closed")
        try:
            if member.fortran:
                yield from self._fortran_chunks(info, member, chunk_elems)
            else:
                yield from self._c_chunks(info, member, chunk_elems)
        except ReadError:
            raise
        except _STREAM_ERRORS as exc:
            raise self._fail(
                member.zinfo.filename, f"cannot be read: {one_line(f'{type(exc).__name__}: {exc}')}"
            ) from None

    def _convert(self, arr: np.ndarray, info: TensorInfo) -> np.ndarray:
        arr = as_native(arr)
        return arr if arr.dtype == info.dtype else arr.view(info.dtype)

    def _c_chunks(self, info: TensorInfo, member: _Member, chunk_elems: int) -> Iterator[np.ndarray]:
        assert self._zf is not None
        itemsize = member.stored.itemsize
        with self._zf.open(member.zinfo) as fp:
            _read_exact(fp, member.header_len)  # type: ignore[arg-type]
            left = info.nbytes
            while left > 0:
                take = min(left, chunk_elems * itemsize)
                data = _read_exact(fp, take)  # type: ignore[arg-type]
                if len(data) != take:
                    raise EOFError(f"the member ended {left - len(data)} bytes early")
                yield self._convert(np.frombuffer(data, dtype=member.stored).copy(), info)
                left -= take

    def _fortran_chunks(self, info: TensorInfo, member: _Member, chunk_elems: int) -> Iterator[np.ndarray]:
        """Fortran-ordered members (``np.savez(w.T)``), yielded in C order all the same."""
        assert self._zf is not None
        if info.count == 0:
            return
        if info.count <= chunk_elems:
            whole = np.concatenate(list(self._c_chunks(info, member, chunk_elems)))
            yield np.ascontiguousarray(whole.reshape(info.shape, order="F")).reshape(-1)
            return
        if member.zinfo.compress_type != zipfile.ZIP_STORED:
            raise self._fail(
                member.zinfo.filename,
                "is Fortran-ordered and compressed: it cannot be read in C order with bounded "
                "memory (save it with np.ascontiguousarray, or uncompressed)",
            )
        # Stored: map the member's bytes in place and copy C-order slabs out of the mapping.
        with open(self.path, "rb") as raw:
            raw.seek(member.zinfo.header_offset)
            sig, name_len, extra_len = _ZIP_LOCAL_HEADER.unpack(raw.read(_ZIP_LOCAL_HEADER.size))
        if sig != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        offset = member.zinfo.header_offset + _ZIP_LOCAL_HEADER.size + name_len + extra_len
        mm = np.memmap(
            self.path, dtype=member.stored, mode="r", offset=offset + member.header_len,
            shape=info.shape, order="F",
        )
        for slab in iter_slabs(lambda sel: np.array(mm[sel]), info.shape, chunk_elems):
            yield self._convert(slab, info)

    def close(self) -> None:
        if self._zf is not None:
            self._zf.close()
            self._zf = None
