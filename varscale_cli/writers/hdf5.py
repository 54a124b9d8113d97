"""A streaming, byte-reproducible HDF5 writer (h5py): one contiguous dataset per tensor.

* '/' in a tensor name makes groups (``layers/dense/vars/0``, the Keras 3 layout).
* ``track_times=False`` on every group and dataset: HDF5 otherwise stamps object headers with
  the wall clock and two identical runs differ. Groups are created one level at a time because
  the intermediate groups HDF5 creates by itself use the default (time-tracking) properties.
* bfloat16 is stored the Keras 3 way: 2-byte opaque data (what h5py makes of an ml_dtypes
  array) plus the dataset attribute ``dtype="bfloat16"``.
* Chunks arrive flat, at arbitrary boundaries. Each one is written with a single
  ``H5Dwrite`` whose file selection is the union of at most ``2 * ndim - 1`` boxes covering
  its flat index range; HDF5 visits a selection in C order, which is the chunk's order.
* File format bounds (earliest, v108): readable by every HDF5 >= 1.8, hence every h5py 3.x,
  while still allowing attributes over 64 KiB (dense attribute storage) for long provenance.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import h5py
from h5py import h5s

from ..engine.atomic import shielded
from . import BFLOAT16, HDF5_DTYPE_ATTR, WriteItem, checked_chunks

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
    ds = group.create_dataset(leaf, shape=item.shape, dtype=item.dtype, track_times=False)
    for key in sorted(item.attrs):
        ds.attrs[key] = item.attrs[key]
    if item.dtype == BFLOAT16:
        ds.attrs[HDF5_DTYPE_ATTR] = "bfloat16"
    return ds


def _fill(ds: h5py.Dataset, item: WriteItem) -> None:
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
                ds.id.write(h5s.create_simple((n,)), fspace, arr)
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
