"""npz: a zip of ``.npy`` members, read header by header and written member by member, streamed.

Reading.

``np.load`` is not used: it reads an ``.npy`` header of any claimed length before checking
it, happily decompresses a member whose header claims far more elements than it stores (and
allocates for the claim), and loses ml_dtypes identity (bfloat16 comes back as ``|V2``,
float8_e5m2 as an unloadable ``<f1``). Here every member is checked before a
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

Writing. ``np.savez`` needs every array in memory and takes tensor names as keyword arguments, so a
tensor named ``file`` raises and one named ``allow_pickle`` is silently dropped. This writer
uses the same primitives (an uncompressed zip64 member per array, the ``.npy`` header numpy
would write) but streams each tensor's chunks into its member.

``.npy`` has no bfloat16 (ml_dtypes arrays save as ``<V2`` and lose their identity), so
bfloat16 tensors are stored as their ``<u2`` bit patterns and listed in a manifest member
``__varscale__.npy``: a 0-d unicode array holding the JSON text
``{"dtypes": {name: "bfloat16", ...}, "metadata": {...}}`` (sorted keys, compact). Only tensors
whose stored dtype differs from their logical one appear in ``dtypes``. Unicode arrays load
with ``np.load(path, allow_pickle=False)``.
"""

from __future__ import annotations

import io
import json
import math
import struct
import zipfile
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ReadError, SpecError
from ._npy import MAX_NPY_HEADER, npy_header, parse_npy_header, read_exact
from .base import (
    DEFLATE_MAX_RATIO,
    LOGICAL_DTYPES,
    MAX_JSON_BYTES,
    MAX_TENSORS,
    BaseWeightFile,
    TensorInfo,
    iter_slabs,
    loads_strict,
    logical,
    native,
    one_line,
)
from .description import WRITABLE_DTYPES, ByteLayout, Format, TensorSpan
from .items import WriteItem, chunk_bytes

#: The manifest's name: the tensor name no tensor may use (np.load's key for the member).
MANIFEST_NAME = "__varscale__"
MANIFEST = MANIFEST_NAME + ".npy"

#: The manifest is JSON text of the size of a safetensors header at most: same limit.
MAX_MANIFEST_BYTES = MAX_JSON_BYTES

#: A zip member name is at most 65535 bytes long; ".npy" takes 4 of them.
MAX_NAME_BYTES = 65535 - 4

#: Slack for the deflate stream's own framing on tiny members.
_DEFLATE_SLACK = 1024

#: Why a member name is refused (zip-slip): ``unzip`` and Python's extractors would write such
#: a member outside the folder they extract into, or, on Windows, take ``\`` as a separator.
_UNSAFE_WHY = "no leading '/', no '..' component, no backslash"


def _unsafe_member(name: str) -> bool:
    """A name that is not a plain relative path once extracted (see `_UNSAFE_WHY`)."""
    return name.startswith("/") or "\\" in name or ".." in name.split("/")


_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")  # local file header; empty archive
_ZIP_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., name length, extra length
_STREAM_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, struct.error)


@dataclass(frozen=True)
class _Member:
    zinfo: zipfile.ZipInfo
    header_len: int  # bytes before the data: magic, version, length field, header text
    stored: np.dtype  # the dtype the .npy header declares
    fortran: bool


class NpzFile(BaseWeightFile):
    """An ``.npz`` archive (``np.savez``, ``np.savez_compressed`` or varscale's writer)."""

    def __init__(self, path: str | Path, *, max_tensors: int = MAX_TENSORS) -> None:
        self._members: dict[str, _Member] = {}
        self._zf: zipfile.ZipFile | None = None
        self._raw: io.BufferedReader | None = self._open_input(path, max_tensors)
        self._open_guarded(self._open, "not a readable npz file")

    def _open(self) -> None:
        assert self._raw is not None
        self._zf = zipfile.ZipFile(self._raw)
        self._scan()

    def _fail(self, member: str, what: str) -> ReadError:
        return ReadError(f"'{self.path}': member {member!r} {what}")

    def _scan(self) -> None:
        assert self._zf is not None
        zinfos = [z for z in self._zf.infolist() if not z.is_dir()]
        tensors = sum(1 for z in zinfos if z.filename != MANIFEST)
        self._check_tensor_count(tensors, "array members")
        seen: set[str] = set()
        for z in zinfos:
            if z.filename in seen:
                raise self._fail(z.filename, "appears twice in the archive")
            seen.add(z.filename)
            if _unsafe_member(z.filename):
                raise self._fail(z.filename, f"is not a relative path inside the archive ({_UNSAFE_WHY})")
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
            raw = read_exact(fp, z.file_size)[hlen:]  # type: ignore[arg-type]
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

    def _chunks(self, info: TensorInfo, chunk_elems: int, reuse: bool) -> Iterator[np.ndarray]:
        member = self._members[info.name]
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

    def _c_chunks(self, info: TensorInfo, member: _Member, chunk_elems: int) -> Iterator[np.ndarray]:
        assert self._zf is not None
        itemsize = member.stored.itemsize
        with self._zf.open(member.zinfo) as fp:
            read_exact(fp, member.header_len)  # type: ignore[arg-type]
            left = info.nbytes
            while left > 0:
                take = min(left, chunk_elems * itemsize)
                data = read_exact(fp, take)  # type: ignore[arg-type]
                if len(data) != take:
                    raise EOFError(f"the member ended {left - len(data)} bytes early")
                yield logical(np.frombuffer(data, dtype=member.stored).copy(), info.dtype)
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
        assert self._raw is not None
        raw = self._raw
        raw.seek(member.zinfo.header_offset)
        sig, name_len, extra_len = _ZIP_LOCAL_HEADER.unpack(raw.read(_ZIP_LOCAL_HEADER.size))
        if sig != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        offset = member.zinfo.header_offset + _ZIP_LOCAL_HEADER.size + name_len + extra_len
        mm = np.memmap(
            raw, dtype=member.stored, mode="r", offset=offset + member.header_len,
            shape=info.shape, order="F",
        )
        yield from iter_slabs(lambda sel: np.array(mm[sel]), info, chunk_elems)

    def close(self) -> None:
        try:
            if self._zf is not None:
                self._zf.close()
                self._zf = None
        finally:
            if self._raw is not None:
                self._raw.close()
                self._raw = None


# --- writing ---------------------------------------------------------------------------------

#: Fixed member timestamp (the zip epoch, also numpy's default) so output is reproducible.
_DATE_TIME = (1980, 1, 1, 0, 0, 0)

#: Member permission bits (rw-r--r--) and "made by Unix", fixed whatever the host.
_EXTERNAL_ATTR = 0o100644 << 16
_CREATE_SYSTEM = 3

# Upper bounds of the zip bookkeeping per member: local header (30) + zip64 extra (20, always
# present with force_zip64) and central directory entry (46) + zip64 extra (at most 28); the
# name appears in both. Plus the end records: zip64 end (56) + locator (20) + end (22).
_MEMBER_OVERHEAD = 30 + 20 + 46 + 28
_END_OVERHEAD = 56 + 20 + 22


def stored_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype an item is stored as: bfloat16 as its uint16 bit pattern, the float8 types as
    their uint8 bit patterns, others as is."""
    # By name: comparing with the bfloat16 dtype would import ml_dtypes for every run.
    if dtype.name == "bfloat16":
        return np.dtype("<u2")
    if dtype.name in LOGICAL_DTYPES:
        return np.dtype("|u1")
    return dtype.newbyteorder("<")


def manifest_text(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> str:
    """The JSON text of the manifest member."""
    dtypes = {it.name: it.dtype.name for it in items if stored_dtype(it.dtype) != it.dtype}
    doc = {"dtypes": dtypes, "metadata": dict(metadata)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def planned_size(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """A close upper bound of the file size (exact data, bounded zip bookkeeping)."""
    manifest = _manifest_member(items, metadata)
    total = _END_OVERHEAD + _MEMBER_OVERHEAD + 2 * len(_member_name(MANIFEST_NAME)) + len(manifest)
    for item in items:
        total += _MEMBER_OVERHEAD + 2 * len(_member_name(item.name))
        total += len(npy_header(item.shape, stored_dtype(item.dtype))) + item.nbytes
    return total


def write(path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    """Write the manifest member, then one streamed ``.npy`` member per tensor, in item order.

    Raises:
        OutputError: A chunk iterator yields the wrong dtype or byte count.
        OSError: The file cannot be written.
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        with zf.open(_zipinfo(MANIFEST_NAME), "w", force_zip64=True) as member:
            member.write(_manifest_member(items, metadata))
        for item in items:
            # force_zip64: the size is not known to zipfile up front and may exceed 4 GiB.
            with zf.open(_zipinfo(item.name), "w", force_zip64=True) as member:
                member.write(npy_header(item.shape, stored_dtype(item.dtype)))
                with closing(chunk_bytes(item)) as views:
                    for view in views:
                        member.write(view)


def _member_name(name: str) -> bytes:
    return (name + ".npy").encode("utf-8")


def _zipinfo(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name + ".npy", date_time=_DATE_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = _EXTERNAL_ATTR
    info.create_system = _CREATE_SYSTEM
    return info


def _manifest_member(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.array(manifest_text(items, metadata)), allow_pickle=False)
    return buf.getvalue()


def byte_layout(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> ByteLayout:
    """Every tensor's byte range in the file `write` produces; no header (zip CRCs need the data).

    Each member is a local file header (30 bytes, the name, the 20-byte zip64 extra that
    force_zip64 always writes; zipfile(3.11) ``ZipInfo.FileHeader``), then its ``.npy`` header,
    then the tensor's bytes; members follow each other with nothing between them.
    """
    offset = 30 + len(_member_name(MANIFEST_NAME)) + 20 + len(_manifest_member(items, metadata))
    spans = []
    for item in items:
        offset += 30 + len(_member_name(item.name)) + 20
        offset += len(npy_header(item.shape, stored_dtype(item.dtype)))
        spans.append(TensorSpan(item.name, offset, item.nbytes))
        offset += item.nbytes
    return ByteLayout(b"", tuple(spans))


def check(items: Sequence[WriteItem], names: set[str], metadata: Mapping[str, str]) -> None:
    """Refuse the manifest's name, unsafe or over-long member names, and names np.load would
    confuse."""
    if MANIFEST_NAME in names:
        raise SpecError(
            f"tensor name '{MANIFEST_NAME}' is reserved for the npz dtype manifest; "
            "rename the tensor"
        )
    for item in items:
        if _unsafe_member(item.name):
            raise SpecError(
                f"tensor name {item.name!r} cannot be an npz member: it would be extracted "
                f"outside the archive's folder ({_UNSAFE_WHY}); rename the tensor"
            )
        if len(item.name.encode("utf-8")) > MAX_NAME_BYTES:
            raise SpecError(f"tensor name '{item.name[:40]}...' is too long for a zip member")
        # np.load maps both 'x' and 'x.npy' to member 'x.npy', so a tensor named 'x.npy' next
        # to a tensor (or the manifest) named 'x' could never be read back by its own name.
        if item.name.endswith(".npy"):
            base = item.name[: -len(".npy")]
            if base in names or base == MANIFEST_NAME:
                raise SpecError(
                    f"tensor names '{base}' and '{item.name}' clash in an npz file "
                    f"(np.load(...)['{item.name}'] returns '{base}'); rename one of them"
                )


FORMAT = Format(
    name="npz",
    suffixes=(".npz",),
    magic=_ZIP_SIGNATURES,
    # bfloat16 is stored as its uint16 bit pattern plus a manifest entry.
    dtypes=WRITABLE_DTYPES,
    reserved=(MANIFEST_NAME,),
    limits={
        "max_npy_header_bytes": MAX_NPY_HEADER,
        "max_manifest_bytes": MAX_MANIFEST_BYTES,
        "max_name_bytes": MAX_NAME_BYTES,
    },
    reader=NpzFile,
    write=write,
    planned_size=planned_size,
    check=check,
    layout=byte_layout,
)
