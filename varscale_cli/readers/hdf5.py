"""HDF5 reader (h5py): every numeric dataset in the file is a tensor, read in C-order slabs.

Dataset names are their paths without the leading '/' (``layers/dense/vars/0``), in the
order h5py's ``visititems`` walks them. Checks made on open, before any data is read:

* every dataset is numeric: strings, compound types, variable-length data and object or
  region references are refused with the dataset's name (stats cannot mean anything there);
* bfloat16 / float8 follow the Keras convention (formats.md 3.1, 3.4): an opaque (``|V2``)
  or unsigned (``<u2``) dataset with attribute ``dtype="bfloat16"`` holds bf16 bit patterns;
  an opaque dataset without that attribute cannot be interpreted and is refused;
* external or virtual storage is refused (it would read other files);
* every filter the dataset needs is available (else every read would fail);
* a dataset may not claim more bytes than deflate could inflate from what the file stores
  for it (`~varscale_cli.readers.npz.DEFLATE_MAX_RATIO`): a huge dataset with unwritten
  storage would otherwise stream gigabytes of fill values from a small file.

Root attributes that are text become ``metadata`` (``varscale`` holds the provenance JSON).
A root-level scalar string dataset named ``varscale`` or ``__varscale__`` is also taken as the
provenance (formats.md 3.3 advises datasets for JSON larger than an attribute can hold) and
is not a tensor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
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
    native,
    one_line,
)
from .npz import DEFLATE_MAX_RATIO

#: Below this a dataset may hold fill values without stored chunks (h5py allocates storage
#: lazily): reading at most 1 MiB of fill values costs nothing.
_UNSTORED_SLACK = 1 << 20

_PROVENANCE_DATASETS = ("varscale", "__varscale__")


def _text(value: Any) -> str | None:
    """An attribute value as text, or None if it is not a (scalar) string."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if isinstance(value, str):
        return str(value)
    return None


class HDF5File(BaseWeightFile):
    """An HDF5 weight file (Keras ``.weights.h5``, legacy Keras ``.h5``, varscale's writer)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = {}
        self._infos = {}
        self._logical: dict[str, np.dtype | None] = {}
        self._h5: h5py.File | None = None
        self._open_guarded(self._open, "not a readable HDF5 file")

    def _open(self) -> None:
        self._h5 = h5py.File(self.path, "r")
        self._scan()

    def _fail(self, name: str, what: str) -> ReadError:
        return ReadError(f"'{self.path}': dataset '/{name}' {what}")

    def _scan(self) -> None:
        assert self._h5 is not None
        for key, value in self._h5.attrs.items():
            text = _text(value)
            if text is not None:
                self.metadata[str(key)] = text
        found: list[tuple[str, h5py.Dataset]] = []

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                found.append((name, obj))

        self._h5.visititems(visit)
        for name, ds in found:
            if name in _PROVENANCE_DATASETS and self._provenance_dataset(name, ds):
                continue
            self._scan_dataset(name, ds)

    def _provenance_dataset(self, name: str, ds: h5py.Dataset) -> bool:
        if ds.shape != () or h5py.check_string_dtype(ds.dtype) is None:
            return False
        text = _text(ds[()])
        if text is None:
            return False
        self.metadata.setdefault("varscale", text)
        return True

    def _scan_dataset(self, name: str, ds: h5py.Dataset) -> None:
        dt = ds.dtype
        if h5py.check_string_dtype(dt) is not None:
            raise self._fail(name, "holds strings, not numbers; only numeric datasets can be read")
        if h5py.check_vlen_dtype(dt) is not None:
            raise self._fail(name, "holds variable-length data; only numeric datasets can be read")
        if h5py.check_ref_dtype(dt) is not None:
            raise self._fail(name, "holds object references; only numeric datasets can be read")
        if dt.fields is not None or dt.subdtype is not None:
            raise self._fail(name, f"has the compound type {dt}; only numeric datasets can be read")
        if dt.kind not in "biufcV":
            raise self._fail(name, f"is not numeric (dtype {dt}); only numeric datasets can be read")
        if ds.shape is None:
            raise self._fail(name, "has no dataspace (an empty HDF5 dataset)")
        attr = _text(ds.attrs.get("dtype")) if "dtype" in ds.attrs else None
        logical: np.dtype | None = None
        if attr in LOGICAL_DTYPES:
            logical = LOGICAL_DTYPES[attr]
            if dt.kind not in "uiV" or dt.itemsize != logical.itemsize:
                raise self._fail(name, f"is stored as {dt}, which cannot hold {attr} bit patterns")
        elif dt.kind == "V":
            raise self._fail(
                name,
                f"is opaque ({dt.itemsize}-byte) with no dtype attribute naming what it holds "
                f"(expected one of {', '.join(LOGICAL_DTYPES)})",
            )
        if ds.is_virtual or ds.external:
            raise self._fail(name, "uses external or virtual storage, which varscale does not follow")
        plist = ds.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            code, _, _, fname = plist.get_filter(i)
            if not h5py.h5z.filter_avail(code):
                label = fname.decode(errors="replace") if isinstance(fname, bytes) else fname
                raise self._fail(name, f"needs HDF5 filter {code} ({label}), which is not available")
        dtype = logical if logical is not None else native(dt)
        shape = tuple(int(d) for d in ds.shape)
        nbytes = math.prod(shape) * dtype.itemsize
        stored = ds.id.get_storage_size()
        if nbytes > DEFLATE_MAX_RATIO * stored + _UNSTORED_SLACK:
            raise self._fail(
                name,
                f"claims {nbytes} bytes but the file stores only {stored} for it (unwritten "
                "storage or a compression bomb), refused",
            )
        self._infos[name] = TensorInfo(name, shape, dtype, nbytes)
        self._logical[name] = logical

    def iter_chunks(self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS) -> Iterator[np.ndarray]:
        info = self.info(name)
        check_chunk_elems(chunk_elems)
        if self._h5 is None:
            raise ReadError(f"'{self.path}': the file is closed")
        ds = self._h5[name]
        logical = self._logical[name]
        try:
            for slab in iter_slabs(lambda sel: ds[sel], info.shape, chunk_elems):
                slab = as_native(slab)
                yield slab.view(logical) if logical is not None else slab
        except ReadError:
            raise
        except Exception as exc:
            raise self._fail(name, f"cannot be read: {one_line(f'{type(exc).__name__}: {exc}')}") from None

    def close(self) -> None:
        if self._h5 is not None:
            try:
                self._h5.close()
            finally:
                self._h5 = None
