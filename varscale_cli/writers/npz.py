"""A streaming, byte-reproducible npz writer with a dtype manifest for bfloat16.

``np.savez`` needs every array in memory and takes tensor names as keyword arguments, so a
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
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

import numpy as np

from . import BFLOAT16, NPZ_MANIFEST, WriteItem, chunk_bytes

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
    """The dtype an item is stored as: bfloat16 as its uint16 bit pattern, others as is."""
    return np.dtype("<u2") if dtype == BFLOAT16 else dtype.newbyteorder("<")


def manifest_text(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> str:
    """The JSON text of the manifest member."""
    dtypes = {it.name: it.dtype.name for it in items if stored_dtype(it.dtype) != it.dtype}
    doc = {"dtypes": dtypes, "metadata": dict(metadata)}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header numpy writes for a C-order array (version 1.0, else 2.0)."""
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, d)
    except ValueError:  # header over 64 KiB (absurdly many dims); numpy falls back the same way
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def planned_size(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """A close upper bound of the file size (exact data, bounded zip bookkeeping)."""
    manifest = _manifest_member(items, metadata)
    total = _END_OVERHEAD + _MEMBER_OVERHEAD + 2 * len(_member_name(NPZ_MANIFEST)) + len(manifest)
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
        with zf.open(_zipinfo(NPZ_MANIFEST), "w", force_zip64=True) as member:
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
