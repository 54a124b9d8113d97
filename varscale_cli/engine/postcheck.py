"""generate's post-write check without reading the whole file back.

The statistics of a tensor are those of the values the workers produced, so they are taken
from each chunk right after it is written, while it is in cache (`ChunkRecorder.record`: the
native moments kernel and the stratified KS subsample, per chunk, merged in chunk order at
the end, as `stats.summarize` merges its chunks).

What the check must still prove is that the file holds those chunks. Every value is a
deterministic function of its index, so the ways a correct run can still leave a wrong file
are I/O-level: a write at the wrong offset, a short or lost write, a truncated or foreign
file. `prove_written` rules those out while reading about 2 % of the file: its size;
its header byte for byte; the first and last `EDGE` bytes of every chunk (a chunk written
at the wrong place, short or not at all changes them), compared by CRC-32 with the bytes the
worker wrote; and the whole of about one chunk in `SAMPLE_EVERY` (corruption inside a
chunk). The reader then opens the file (its parser checks the header against the size).
Each tensor is judged (`stats.check_tensor`, the same family and targets as
`stats.check_file`) as soon as its last chunk is recorded, so only unfinished tensors'
subsamples are held. A tensor whose recorded extremes leave its bound is re-read from the
file for the exact out-of-bound count (a failing file only). `varscale verify` still
regenerates and compares every value.
"""

from __future__ import annotations

import math
import os
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import stats
from ..core.dtypes import numpy_dtype
from ..core.stream import compiled_kernels
from ..errors import CheckFailed
from ..formats.description import ByteLayout
from ..stats.report import DEFAULT_ALPHA, FileReport, TensorReport, check_tensor, family_size
from ..stats.summary import KS_MAX, Summary, pick, sample_values, subsample_positions, summarize
from .resolve import ResolvedTensor

#: Bytes read back at each end of every chunk: one 4 KiB page.
EDGE = 4096
#: About one chunk in this many, across the file, is read back whole.
SAMPLE_EVERY = 64


@dataclass
class _Chunk:
    offset: int
    nbytes: int
    crc: int  # of the whole chunk when `whole`, else of its first and last EDGE bytes
    whole: bool
    summary: Summary


def _edges(data: memoryview | bytes) -> int:
    """CRC-32 of a chunk's first and last EDGE bytes (all of it when shorter)."""
    if len(data) <= 2 * EDGE:
        return zlib.crc32(data)
    return zlib.crc32(data[-EDGE:], zlib.crc32(data[:EDGE]))


class ChunkRecorder:
    """Collects, per tensor and chunk, the written bytes' CRC-32 and their `Summary`, and
    judges each tensor as soon as its last chunk is in (so at most the unfinished tensors'
    subsamples are held: memory stays flat). Thread-safe: the pwrite workers call `record`."""

    def __init__(
        self, layout: ByteLayout, tensors: Sequence[ResolvedTensor], metadata: Mapping[str, str],
        path: Path,
    ) -> None:
        self.layout = layout
        self.path = path  # the file being written (re-read for exact out-of-bound counts)
        self._tensors = list(tensors)
        self._targets = stats.targets_from_provenance(metadata, str(path)) or {}
        self._family = family_size(
            (t.count, numpy_dtype(t.plan.dtype), self._targets.get(t.name)) for t in tensors
        )
        self._positions: dict[str, np.ndarray] = {}  # of the tensors in progress only
        self._chunks: dict[str, dict[int, _Chunk]] = {t.name: {} for t in tensors}
        self._left = {t.name: t.count for t in tensors}
        self._reports: dict[str, TensorReport] = {}
        self._lock = threading.Lock()
        self._kernels = compiled_kernels()

    def record(
        self, t: ResolvedTensor, index: int, first: int, offset: int, values: np.ndarray
    ) -> None:
        """Chunk ``index`` of ``t``: ``values`` are elements ``first ..`` of the tensor, written
        at ``offset``. zlib.crc32 and the moments kernel release the GIL."""
        s = Summary()
        s.add(values, -math.inf, math.inf, self._kernels)
        with self._lock:
            pos = self._positions.get(t.name)
            if pos is None:
                pos = self._positions[t.name] = subsample_positions(t.count, KS_MAX)
        i0, i1 = np.searchsorted(pos, (first, first + values.shape[0]))
        s.sample = sample_values(pick(values, pos[i0:i1], first, self._kernels))
        data = values.view(np.uint8).data
        # A fixed pseudo-random one chunk in SAMPLE_EVERY across the file, picked by offset.
        whole = zlib.crc32(offset.to_bytes(8, "little")) % SAMPLE_EVERY == 0
        crc = zlib.crc32(data) if whole else _edges(data)
        with self._lock:
            self._chunks[t.name][index] = _Chunk(offset, values.nbytes, crc, whole, s)
            self._left[t.name] -= values.shape[0]
            complete = self._left[t.name] == 0
        if complete:
            self._judge(t)

    def _judge(self, t: ResolvedTensor) -> None:
        chunks = self._chunks[t.name]
        total = Summary()
        picked = []
        for i in range(len(chunks)):
            total.combine(chunks[i].summary)
            picked.append(chunks[i].summary.sample)
        total.sample = np.concatenate(picked) if picked else np.empty(0)

        def summary(lo: float, hi: float, sample_size: int) -> Summary:
            if total.n and (total.min < lo or total.max > hi):
                return summarize(self._reread(t), count=t.count, lo=lo, hi=hi, sample_size=sample_size)
            if not sample_size:
                total.sample = np.empty(0)
            return total

        rep = check_tensor(
            t.name, t.plan.shape, numpy_dtype(t.plan.dtype), lambda: iter(()),
            self._targets.get(t.name), n_tests=self._family, summary=summary,
        )
        with self._lock:
            self._reports[t.name] = rep
            self._positions.pop(t.name, None)
            for c in chunks.values():
                c.summary = _EMPTY  # the subsample is no longer needed

    def _reread(self, t: ResolvedTensor) -> Iterator[np.ndarray]:
        """The tensor's values from the file, chunk by chunk (a failing tensor only)."""
        dtype = numpy_dtype(t.plan.dtype)
        chunks = self._chunks[t.name]
        with open(self.path, "rb", buffering=0) as f:
            for i in range(len(chunks)):
                c = chunks[i]
                yield np.frombuffer(_pread_all(f.fileno(), c.nbytes, c.offset), dtype=dtype)

    def report(self, path: Path) -> FileReport:
        """The file's report, tensors in file order (empty tensors judged here)."""
        by_name = {t.name: t for t in self._tensors}
        reports = []
        for span in self.layout.tensors:
            t = by_name[span.name]
            if span.name not in self._reports:  # no chunk: an empty tensor
                self._reports[span.name] = check_tensor(
                    t.name, t.plan.shape, numpy_dtype(t.plan.dtype), lambda: iter(()),
                    self._targets.get(t.name), n_tests=self._family,
                )
            reports.append(self._reports[span.name])
        return FileReport(
            tensors=reports, ok=all(r.ok for r in reports), alpha=DEFAULT_ALPHA,
            family_size=self._family, missing=[], path=str(path),
        )

    def prove_written(self, path: Path, advance: Callable[[str, int], None] | None = None) -> None:
        """The file's size, header and sampled chunks are the ones written (CheckFailed if not);
        ``advance(tensor, nbytes)`` is told of each chunk's bytes once they are vouched for."""
        layout = self.layout
        size = len(layout.header) + sum(s.nbytes for s in layout.tensors)
        with open(path, "rb", buffering=0) as f:
            fd = f.fileno()
            actual = os.fstat(fd).st_size
            if actual != size:
                raise CheckFailed(f"'{path}' holds {actual} bytes, but {size} were written")
            if os.pread(fd, len(layout.header), 0) != layout.header:
                raise CheckFailed(f"'{path}': the header read back differs from the one written")
            for name, chunks in self._chunks.items():
                for c in chunks.values():
                    if c.whole:
                        crc = zlib.crc32(_pread_all(fd, c.nbytes, c.offset))
                    elif c.nbytes <= 2 * EDGE:
                        crc = _edges(_pread_all(fd, c.nbytes, c.offset))
                    else:
                        head = _pread_all(fd, EDGE, c.offset)
                        crc = zlib.crc32(_pread_all(fd, EDGE, c.offset + c.nbytes - EDGE), zlib.crc32(head))
                    if crc != c.crc:
                        raise CheckFailed(
                            f"'{path}': tensor '{name}' bytes {c.offset}..{c.offset + c.nbytes} "
                            "read back differ from the bytes written"
                        )
                    if advance is not None:
                        advance(name, c.nbytes)


_EMPTY = Summary()


def _pread_all(fd: int, nbytes: int, offset: int) -> bytes:
    parts = []
    while nbytes:
        part = os.pread(fd, nbytes, offset)
        if not part:
            break
        parts.append(part)
        nbytes -= len(part)
        offset += len(part)
    return b"".join(parts)
