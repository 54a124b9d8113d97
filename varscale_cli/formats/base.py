"""What every format's reader shares: `TensorInfo`, the `WeightFile` interface, the helpers.

Every reader gives the same small interface, `WeightFile`: the tensors' names, shapes and
dtypes in file order, the file's text metadata, and each tensor's values as 1-D chunks in C
order. Memory stays bounded by the chunk size, whatever the file size: nothing is read whole.

Readers treat every file as hostile. A file that is truncated, inconsistent or built to
exhaust memory raises one `ReadError` whose message is a single line naming the file, before
anything proportional to a size the file *claims* is allocated.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import numpy as np

from ..core.dtypes import ML_DTYPES, numpy_dtype
from ..errors import ReadError
from ..inputs import open_input

__all__ = [
    "DEFAULT_CHUNK_ELEMS",
    "LOGICAL_DTYPES",
    "MAX_JSON_BYTES",
    "MAX_TENSORS",
    "TensorInfo",
    "WeightFile",
]

#: 1 Mi elements per chunk: 4 MiB of float32, 8 MiB once widened to float64 for statistics,
#: large enough that per-chunk Python overhead is negligible, small enough to stay in cache-ish
#: territory and far below any realistic memory limit.
DEFAULT_CHUNK_ELEMS = 1 << 20

#: The dtypes numpy cannot name by itself, by the names ml_dtypes, Keras (HDF5 ``dtype``
#: attribute) and varscale's npz manifest use for them.
class _LogicalDtypes(Mapping[str, np.dtype]):
    """Names -> dtypes, built on first lookup: ``ml_dtypes`` costs 0.15-0.5 s to import, which
    a run that never meets a 16- or 8-bit float does not pay (iterating and ``in`` need only
    the names)."""

    def __getitem__(self, name: str) -> np.dtype:
        if name not in ML_DTYPES:
            raise KeyError(name)
        return numpy_dtype(name)

    def __contains__(self, name: object) -> bool:
        return name in ML_DTYPES

    def __iter__(self) -> Iterator[str]:
        return iter(ML_DTYPES)

    def __len__(self) -> int:
        return len(ML_DTYPES)


LOGICAL_DTYPES: Mapping[str, np.dtype] = _LogicalDtypes()

#: The reference safetensors reader's MAX_HEADER_SIZE (safetensors/src/tensor.rs): a larger
#: header is refused before it is read, so a forged length cannot make us allocate gigabytes.
#: Every JSON text a weight file declares (the npz manifest, an HF index) is held to it too.
MAX_JSON_BYTES = 100_000_000

#: Most tensors a reader accepts in one file (or one sharded checkpoint), checked before a
#: structure per tensor is built. Derived from what a tensor costs, not from the formats (which
#: have no limit: a 100 MB safetensors header of zero-size entries lists 1.5 million): `stats`
#: holds about 4 KB per tensor (measured: 300,000 zero-size tensors, 1.25 GB resident and 52 s
#: on a 2-core machine), so 100,000 tensors stay near 400 MB, while an 80-layer transformer
#: (Llama 3 70B: 80 x 9 + 3) has 723. ``--max-tensors`` raises it for a file that needs more.
MAX_TENSORS = 100_000

#: Deflate cannot expand data by more than 1032:1 (zlib technical details: a 258-byte match
#: costs at least 2 bits, 258 * 8 / 2 = 1032). A zip member or an HDF5 dataset claiming more
#: than that of what the file stores for it is lying about its size.
DEFLATE_MAX_RATIO = 1032


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as the file declares it (already validated against the file's bytes).

    Attributes:
        name: the tensor's name ('/'-separated path for HDF5 datasets and nested npz members).
        shape: the tensor's shape.
        dtype: its logical numpy dtype, native byte order; ``ml_dtypes.bfloat16`` for bf16 and
            the ml_dtypes float8 types, never the raw storage type (uint16, void).
        nbytes: the bytes its values occupy (``prod(shape) * dtype.itemsize``).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    nbytes: int

    @property
    def count(self) -> int:
        """Number of elements."""
        return math.prod(self.shape)


@runtime_checkable
class WeightFile(Protocol):
    """An open weight file; use as a context manager so handles are closed.

    Attributes:
        path: what was opened (the index file for a sharded checkpoint).
        metadata: the file's text metadata: safetensors ``__metadata__``, HDF5 root attributes
            that are strings, or the npz manifest's ``metadata``.
    """

    path: Path
    metadata: dict[str, str]

    def tensors(self) -> list[TensorInfo]:
        """Every tensor, in file order."""
        ...

    def iter_chunks(
        self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS, *, reuse: bool = False
    ) -> Iterator[np.ndarray]:
        """The tensor's values as fresh 1-D arrays of at most ``chunk_elems`` elements, C order.
        ``reuse``: the caller reads each array only until it asks for the next, and iterates
        over one tensor of this reader at a time, so a reader may read every chunk into one
        buffer (safetensors does: no fresh pages per chunk)."""
        ...

    def close(self) -> None:
        """Release file handles (idempotent)."""
        ...

    def __enter__(self) -> WeightFile: ...

    def __exit__(self, *exc: object) -> None: ...


class BaseWeightFile:
    """Shared plumbing: context management and lookup by name."""

    path: Path
    metadata: dict[str, str]
    _infos: dict[str, TensorInfo]
    _max_tensors: int

    def _open_input(self, path: str | Path, max_tensors: int) -> io.BufferedReader:
        """What every reader starts with: the path, empty tables, the tensor limit, and the
        input opened through the one guarded open (a FIFO or device is refused before it is
        opened; every later read goes through this checked descriptor)."""
        self.path = Path(path)
        self.metadata = {}
        self._infos = {}
        self._max_tensors = max_tensors
        return open_input(self.path)

    def tensors(self) -> list[TensorInfo]:
        return list(self._infos.values())

    def iter_chunks(
        self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS, *, reuse: bool = False
    ) -> Iterator[np.ndarray]:
        """The `WeightFile` method: ``name`` and ``chunk_elems`` checked here, the values read
        by the format's `_chunks`."""
        info = self.info(name)
        check_chunk_elems(chunk_elems)
        yield from self._chunks(info, chunk_elems, reuse)

    def _chunks(self, info: TensorInfo, chunk_elems: int, reuse: bool) -> Iterator[np.ndarray]:
        """``info``'s values as 1-D arrays of at most ``chunk_elems`` elements, C order: fresh
        ones, or with ``reuse`` possibly one buffer read over (`WeightFile.iter_chunks`)."""
        raise NotImplementedError

    def info(self, name: str) -> TensorInfo:
        """The `TensorInfo` of ``name``, or ReadError if the file has no such tensor."""
        try:
            return self._infos[name]
        except KeyError:
            raise ReadError(f"'{self.path}': no tensor named {name!r}") from None

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def _check_tensor_count(self, count: int, what: str = "tensors") -> None:
        """Refuse a file that lists more tensors than this reader accepts, before they are
        parsed one by one."""
        if count > self._max_tensors:
            raise ReadError(
                f"'{self.path}': the file lists {count:,} {what}, more than the "
                f"{self._max_tensors:,} accepted (use --max-tensors to accept more)"
            )

    def _open_guarded(self, step: Callable[[], None], what: str) -> None:
        """Run the opening ``step``; on any failure close what was opened, and turn anything a
        hostile file provokes into one `ReadError` line: ``'<path>': <what>: <cause>``."""
        try:
            step()
        except ReadError:
            self.close()
            raise
        except Exception as exc:
            self.close()
            raise ReadError(
                f"'{self.path}': {what}: {one_line(f'{type(exc).__name__}: {exc}')}"
            ) from None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- helpers shared by the readers -----------------------------------------------------------


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace (numpy and HDF5 messages span lines) and cap the length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for json: a repeated key is an error, not last-wins."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads_strict(text: str) -> Any:
    """json.loads without the lenient parts: no duplicate keys, no NaN/Infinity literals."""
    return json.loads(text, object_pairs_hook=reject_duplicates, parse_constant=_reject_constant)


def check_chunk_elems(chunk_elems: int) -> int:
    if isinstance(chunk_elems, bool) or not isinstance(chunk_elems, int) or chunk_elems < 1:
        raise ValueError(f"chunk_elems must be a positive integer, got {chunk_elems!r}")
    return chunk_elems


def native(dtype: np.dtype) -> np.dtype:
    """The same dtype in native byte order (ml_dtypes types have no byte order)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")


def as_native(arr: np.ndarray) -> np.ndarray:
    """``arr`` with native byte order, swapping bytes if the file stored the other order."""
    if arr.dtype.isnative:
        return arr
    return arr.byteswap().view(native(arr.dtype))


def logical(arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` as the tensor's logical ``dtype``: native byte order, and stored bit patterns
    (uint16, opaque bytes) viewed as the bfloat16 / float8 they hold."""
    arr = as_native(arr)
    return arr if arr.dtype == dtype else arr.view(dtype)


def iter_slabs(
    read: Callable[[tuple[Any, ...]], np.ndarray], info: TensorInfo, chunk_elems: int
) -> Iterator[np.ndarray]:
    """Read ``info``'s N-d array in C order through ``read(selection)``, at most
    ``chunk_elems`` at once, each slab flat and in ``info.dtype`` (`logical`).

    Picks the outermost axis ``k`` such that one index along it covers at most
    ``chunk_elems`` elements (``prod(shape[k+1:])``), then reads ``chunk_elems // that``
    consecutive indices of axis ``k`` per call, for every index of the axes before ``k``.
    Consecutive slabs are consecutive in C order, so the raveled slabs are the flat array.
    """
    shape = info.shape
    if not shape:
        yield logical(np.asarray(read(())).reshape(-1), info.dtype)
        return
    if math.prod(shape) == 0:
        return
    k, tail = len(shape) - 1, 1
    while k > 0 and tail * shape[k] <= chunk_elems:
        tail *= shape[k]
        k -= 1
    step = max(1, chunk_elems // tail)
    for outer in np.ndindex(*shape[:k]):
        for j in range(0, shape[k], step):
            sel = tuple(int(i) for i in outer) + (slice(j, min(j + step, shape[k])),)
            yield logical(np.ascontiguousarray(read(sel)).reshape(-1), info.dtype)
