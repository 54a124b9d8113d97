"""HDF5 (h5py): every numeric dataset is a tensor, read in C-order slabs, written as streamed.

Reading.
Dataset names are their paths without the leading '/' (``layers/dense/vars/0``), in the
order h5py's ``visititems`` walks them. Checks made on open, before any data is read:

* every dataset is numeric: strings, compound types, variable-length data and object or
  region references are refused with the dataset's name (stats cannot mean anything there);
* bfloat16 / float8 follow the Keras 3 convention (keras/src/saving/saving_lib.py
  ``H5IOStore``): an opaque (``|V2``)
  or unsigned (``<u2``) dataset with attribute ``dtype="bfloat16"`` holds bf16 bit patterns;
  an opaque dataset without that attribute cannot be interpreted and is refused;
* external or virtual storage is refused (it would read other files);
* every filter the dataset needs is available (else every read would fail);
* a dataset may not claim more bytes than deflate could inflate from what the file stores
  for it (`~varscale_cli.formats.base.DEFLATE_MAX_RATIO`): a huge dataset with unwritten
  storage would otherwise stream gigabytes of fill values from a small file.

Root attributes that are text become ``metadata`` (``varscale`` holds the provenance JSON).
A root-level scalar string dataset named ``varscale`` or ``__varscale__`` is also taken as the
provenance (HDF5 attributes over 64 KiB need dense attribute storage, so a dataset is the
portable place for long JSON) and is not a tensor.

Writing. * '/' in a tensor name makes groups (``layers/dense/vars/0``, the Keras 3 layout).
* ``track_times=False`` on every group and dataset: HDF5 otherwise stamps object headers with
  the wall clock and two identical runs differ. Groups are created one level at a time because
  the intermediate groups HDF5 creates by itself use the default (time-tracking) properties.
* bfloat16 is stored the Keras 3 way: 2-byte opaque data (what h5py makes of an ml_dtypes
  array) plus the dataset attribute ``dtype="bfloat16"``; float8 (which h5py cannot type) as
  uint8 bit patterns with ``dtype="float8_e4m3fn"`` or ``"float8_e5m2"``.
* Chunks arrive flat, at arbitrary boundaries. Each one is written with a single
  ``H5Dwrite`` whose file selection is the union of at most ``2 * ndim - 1`` boxes covering
  its flat index range; HDF5 visits a selection in C order, which is the chunk's order.
* File format bounds (earliest, v108): readable by every HDF5 >= 1.8, hence every h5py 3.x,
  while still allowing attributes over 64 KiB (dense attribute storage) for long provenance.

h5py is imported only when an HDF5 file is opened or written, so that ``varscale --help`` and
safetensors-only runs never pay for it (this module is imported by the format registry).
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..engine.atomic import shielded
from ..errors import ReadError, SpecError
from . import base
from .description import WRITABLE_DTYPES, Format
from .items import WriteItem, check_metadata, checked_chunks

if TYPE_CHECKING:
    import h5py

#: The file signature (HDF5 File Format Specification, "Format Signature").
SIGNATURE = b"\x89HDF\r\n\x1a\n"

#: Dataset attribute marking bfloat16 data (Keras 3 reads it); item attrs may not use it.
DTYPE_ATTR = "dtype"

#: Below this a dataset may hold fill values without stored chunks (h5py allocates storage
#: lazily): reading at most 1 MiB of fill values costs nothing.
_UNSTORED_SLACK = 1 << 20

_PROVENANCE_DATASETS = ("varscale", "__varscale__")


def _most_bytes(ds: h5py.Dataset) -> tuple[int, int]:
    """The bytes the file stores for ``ds``, and the most it can hold: what deflate could
    expand them to, plus the unstored slack."""
    stored = ds.id.get_storage_size()
    return stored, base.DEFLATE_MAX_RATIO * stored + _UNSTORED_SLACK


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


class HDF5File(base.BaseWeightFile):
    """An HDF5 weight file (Keras ``.weights.h5``, legacy Keras ``.h5``, varscale's writer)."""

    def __init__(self, path: str | Path, *, max_tensors: int = base.MAX_TENSORS) -> None:
        self._h5: h5py.File | None = None
        # libhdf5 opens by name, so on Linux it is given the descriptor checked here
        # (/proc/self/fd/N names that very file): nothing can be swapped in between the check
        # and libhdf5's open.
        self._fd: io.BufferedReader | None = self._open_input(path, max_tensors)
        self._open_guarded(self._open, "not a readable HDF5 file")

    def _open(self) -> None:
        import h5py

        assert self._fd is not None
        by_fd = Path(f"/proc/self/fd/{self._fd.fileno()}")
        self._h5 = h5py.File(by_fd if by_fd.exists() else self.path, "r")
        self._scan()

    def _fail(self, name: str, what: str) -> ReadError:
        return ReadError(f"'{self.path}': dataset '/{name}' {what}")

    def _scan(self) -> None:
        import h5py

        assert self._h5 is not None
        for key, value in self._h5.attrs.items():
            text = _text(value)
            if text is not None:
                self.metadata[str(key)] = text
        found: list[tuple[str, h5py.Dataset]] = []
        provenance = 0

        def visit(name: str, obj: Any) -> None:
            nonlocal provenance
            if isinstance(obj, h5py.Dataset):
                found.append((name, obj))
                provenance += name in _PROVENANCE_DATASETS
                self._check_tensor_count(len(found) - provenance, "datasets")

        self._h5.visititems(visit)
        for name, ds in found:
            if name in _PROVENANCE_DATASETS and self._provenance_dataset(name, ds):
                continue
            self._scan_dataset(name, ds)

    def _check_storage(self, name: str, ds: h5py.Dataset) -> None:
        """Refuse storage outside the file before a byte of the dataset is read: reading an
        external (H5Pset_external) or virtual dataset opens whatever file it names."""
        if ds.is_virtual or ds.external:
            raise self._fail(name, "uses external or virtual storage, which varscale does not follow")

    def _provenance_dataset(self, name: str, ds: h5py.Dataset) -> bool:
        import h5py

        if ds.shape != () or h5py.check_string_dtype(ds.dtype) is None:
            return False
        self._check_storage(name, ds)
        if h5py.check_string_dtype(ds.dtype).length is not None:
            # A fixed-length string: reading it allocates its declared length, whatever the
            # file stores (2**31 - 1 bytes of fill value from a 2 KB file). Held to the
            # provenance text limit and to what deflate could expand from the stored bytes.
            claimed = ds.dtype.itemsize
            stored, most = _most_bytes(ds)
            if claimed > base.MAX_JSON_BYTES or claimed > most:
                raise self._fail(
                    name,
                    f"is a {claimed:,}-byte string of which the file stores {stored:,} bytes "
                    f"(provenance text is at most {base.MAX_JSON_BYTES:,} bytes), refused",
                )
        text = _text(ds[()])
        if text is None:
            return False
        self.metadata.setdefault("varscale", text)
        return True

    def _scan_dataset(self, name: str, ds: h5py.Dataset) -> None:
        import h5py

        dt = ds.dtype
        self._check_storage(name, ds)
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
        attr = _text(ds.attrs.get(DTYPE_ATTR)) if DTYPE_ATTR in ds.attrs else None
        logical: np.dtype | None = None
        if attr is not None and attr in base.LOGICAL_DTYPES:
            logical = base.LOGICAL_DTYPES[attr]
            if dt.kind not in "uiV" or dt.itemsize != logical.itemsize:
                raise self._fail(name, f"is stored as {dt}, which cannot hold {attr} bit patterns")
        elif dt.kind == "V":
            raise self._fail(
                name,
                f"is opaque ({dt.itemsize}-byte) with no dtype attribute naming what it holds "
                f"(expected one of {', '.join(base.LOGICAL_DTYPES)})",
            )
        plist = ds.id.get_create_plist()
        for i in range(plist.get_nfilters()):
            code, _, _, fname = plist.get_filter(i)
            if not h5py.h5z.filter_avail(code):
                label = fname.decode(errors="replace") if isinstance(fname, bytes) else fname
                raise self._fail(name, f"needs HDF5 filter {code} ({label}), which is not available")
        dtype = logical if logical is not None else base.native(dt)
        shape = tuple(int(d) for d in ds.shape)
        nbytes = math.prod(shape) * dtype.itemsize
        stored, most = _most_bytes(ds)
        if nbytes > most:
            raise self._fail(
                name,
                f"claims {nbytes} bytes but the file stores only {stored} for it (unwritten "
                "storage or a compression bomb), refused",
            )
        self._infos[name] = base.TensorInfo(name, shape, dtype, nbytes)

    def _chunks(self, info: base.TensorInfo, chunk_elems: int, reuse: bool) -> Iterator[np.ndarray]:
        if self._h5 is None:
            raise ReadError(f"'{self.path}': the file is closed")
        ds = self._h5[info.name]
        try:
            yield from base.iter_slabs(lambda sel: ds[sel], info, chunk_elems)
        except ReadError:
            raise
        except Exception as exc:
            raise self._fail(
                info.name, f"cannot be read: {base.one_line(f'{type(exc).__name__}: {exc}')}"
            ) from None

    def close(self) -> None:
        try:
            if self._h5 is not None:
                try:
                    self._h5.close()
                finally:
                    self._h5 = None
        finally:
            if self._fd is not None:
                self._fd.close()
                self._fd = None


# --- writing ---------------------------------------------------------------------------------

LIBVER = ("earliest", "v108")

# HDF5 quotes the OS error inside its message: "... errno = 28, error message = '...'".
_ERRNO = re.compile(r"errno = (\d+)")

# Upper bounds of HDF5 bookkeeping, measured with h5py 3.16 / HDF5 2.0 (earliest..v108 format)
# and rounded up: the superblock, root group and first global heap collection (~5 KiB); a
# dataset's object header (~380 B); a group's header, B-tree and local heap (~1 KiB); an
# attribute (~40 B plus its name and value); and dense attribute storage (fractal heap and
# B-trees, ~1 KiB), which HDF5 switches to beyond 8 attributes or for values over 64 KiB.
_FILE_OVERHEAD = 8192
_DATASET_OVERHEAD = 512
_GROUP_OVERHEAD = 1280
_NAME_FACTOR = 3
_ATTR_OVERHEAD = 128
_COMPACT_ATTRS = 8
_LARGE_ATTR = 64 * 1024
_DENSE_OVERHEAD = 2048


def planned_size(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """A close upper bound of the file size (within a few hundred bytes per tensor)."""
    groups: set[str] = set()
    for item in items:
        parts = item.name.split("/")
        groups.update("/".join(parts[:i]) for i in range(1, len(parts)))
    total = _FILE_OVERHEAD + _attrs_size(metadata)
    for group in groups:
        total += _GROUP_OVERHEAD + _NAME_FACTOR * len(group.rsplit("/", 1)[-1].encode("utf-8"))
    for item in items:
        leaf = item.name.rsplit("/", 1)[-1]
        total += _DATASET_OVERHEAD + _NAME_FACTOR * len(leaf.encode("utf-8")) + item.nbytes
        total += _attrs_size(item.attrs)
    return total


def write(path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    """Write one dataset per tensor, in item order, streaming chunks into hyperslabs.

    The whole write is `shielded`: Ctrl-C and SIGTERM take effect between chunks, because one
    landing inside an h5py call would be swallowed by h5py's cleanup callbacks.

    Raises:
        OutputError: A chunk iterator yields the wrong dtype or byte count.
        OSError: The file cannot be written (HDF5 failures included, see ``_hdf5_errors``).
    """
    with shielded():
        _write(path, items, metadata)


def _write(path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    import h5py

    with _hdf5_errors():
        f = h5py.File(path, "w", libver=LIBVER, track_order=False)
    done = False
    try:
        with _hdf5_errors():
            for key in sorted(metadata):
                f.attrs[key] = metadata[key]
        for item in items:
            with _hdf5_errors():
                ds = _create_dataset(f, item)
            _fill(ds, item)
        done = True
    finally:
        try:
            with _hdf5_errors():
                f.close()  # flushes metadata: a full disk often shows up only here
        except OSError:
            if done:  # otherwise the error that got us here is the one to report
                raise


def flat_boxes(
    begin: int, end: int, shape: tuple[int, ...]
) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Boxes ``(start, count)`` whose union is the C-order flat index range [begin, end).

    Args:
        begin: First flat index.
        end: One past the last flat index; ``begin < end <= prod(shape)``.
        shape: The array shape (at least 1-D).

    Returns:
        At most ``2 * len(shape) - 1`` disjoint boxes, in C order.
    """
    if len(shape) == 1:
        return [((begin,), (end - begin,))]
    inner = 1
    for d in shape[1:]:
        inner *= d
    rest = shape[1:]
    first, last = begin // inner, (end - 1) // inner
    if first == last:  # within one row: recurse into it
        sub = flat_boxes(begin - first * inner, end - first * inner, rest)
        return [((first, *s), (1, *c)) for s, c in sub]
    boxes: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    full_from, full_to = first, end // inner
    if begin % inner:  # a partial head row
        boxes += [((first, *s), (1, *c)) for s, c in flat_boxes(begin % inner, inner, rest)]
        full_from = first + 1
    if full_to > full_from:
        boxes.append(((full_from, *(0,) * len(rest)), (full_to - full_from, *rest)))
    if end % inner:  # a partial tail row
        boxes += [((full_to, *s), (1, *c)) for s, c in flat_boxes(0, end % inner, rest)]
    return boxes


def _create_dataset(f: h5py.File, item: WriteItem) -> h5py.Dataset:
    *parents, leaf = item.name.split("/")
    group: h5py.Group = f
    for part in parents:
        sub = group.get(part)
        group = sub if sub is not None else group.create_group(part, track_times=False)
    ds = group.create_dataset(leaf, shape=item.shape, dtype=_storage(item.dtype), track_times=False)
    for key in sorted(item.attrs):
        ds.attrs[key] = item.attrs[key]
    if item.dtype.name in base.LOGICAL_DTYPES:  # bfloat16 (Keras 3's marker) and the float8 types
        ds.attrs[DTYPE_ATTR] = item.dtype.name
    return ds


def _storage(dtype: np.dtype) -> np.dtype:
    """What a dataset holds: h5py has no float8 type, so the float8 types are stored as their
    uint8 bit patterns (the reader takes them back by the dtype attribute); others as is."""
    if dtype.name in base.LOGICAL_DTYPES and dtype.itemsize == 1:
        return np.dtype("u1")
    return dtype


def _fill(ds: h5py.Dataset, item: WriteItem) -> None:
    from h5py import h5s

    fspace = ds.id.get_space()
    pos = 0
    # The chunk iterator runs outside _hdf5_errors: its own exceptions must pass unchanged.
    with closing(checked_chunks(item)) as chunks:
        for arr in chunks:
            n = arr.size
            if n == 0:
                continue
            with _hdf5_errors():
                if not item.shape:  # a scalar dataset: its one element
                    fspace.select_all()
                else:
                    for i, (start, count) in enumerate(flat_boxes(pos, pos + n, item.shape)):
                        op = h5s.SELECT_OR if i else h5s.SELECT_SET
                        fspace.select_hyperslab(start, count, op=op)
                # The memory type follows the array (opaque 2-byte for bfloat16, like the
                # dataset), so no conversion happens.
                ds.id.write(h5s.create_simple((n,)), fspace, arr.view(_storage(arr.dtype)))
            pos += n


@contextmanager
def _hdf5_errors() -> Iterator[None]:
    """Turn h5py's failures into OSError with the errno HDF5 reported, when it reported one.

    h5py raises RuntimeError for some I/O failures (e.g. "unable to extend file properly,
    errno = 27, error message = 'File too large'" when the file is closed) and OSError without
    an errno for others; atomic_output turns OSError into a one-line OutputError.
    """
    try:
        yield
    except (RuntimeError, OSError) as exc:
        text = str(exc)
        found = _ERRNO.search(text)
        if found:
            code = int(found.group(1))
            raise OSError(code, os.strerror(code)) from exc
        if isinstance(exc, OSError):
            raise
        raise OSError(text.splitlines()[0] if text else "HDF5 error") from exc


def _attrs_size(attrs: Mapping[str, str]) -> int:
    total = 0
    dense = len(attrs) > _COMPACT_ATTRS
    for key, value in attrs.items():
        size = len(key.encode("utf-8")) + len(value.encode("utf-8"))
        total += _ATTR_OVERHEAD + size + size // 4
        dense = dense or size > _LARGE_ATTR
    return total + (_DENSE_OVERHEAD if dense else 0)


def check(items: Sequence[WriteItem], names: set[str], metadata: Mapping[str, str]) -> None:
    """Refuse names that are no HDF5 path or collide as groups, and bad or reserved attrs."""
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
        check_metadata(item.attrs, f"tensor '{item.name}' attribute")
        if DTYPE_ATTR in item.attrs:
            raise SpecError(
                f"tensor '{item.name}': attribute '{DTYPE_ATTR}' is reserved for the "
                "bfloat16 marker in HDF5"
            )


FORMAT = Format(
    name="hdf5",
    suffixes=(".h5", ".hdf5"),
    magic=(SIGNATURE,),
    # bfloat16 is stored as 2-byte opaque data with attr dtype="bfloat16" (the Keras 3 way).
    dtypes=WRITABLE_DTYPES,
    reserved=(),
    reader=HDF5File,
    write=write,
    planned_size=planned_size,
    check=check,
    layout=None,  # HDF5 chooses where each dataset's storage goes
)
