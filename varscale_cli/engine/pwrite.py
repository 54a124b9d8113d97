"""Every core writes: workers sample chunks and ``pwrite`` each at its place in the file.

For a format whose whole byte layout is known before any value exists (`ByteLayout` with a
header and tensor spans that tile the rest of the file: safetensors), no single writer thread
is needed. Each worker takes the next chunk job, fills its own reused buffer (the fused native
stream releases the GIL for the whole chunk) and writes it with ``os.pwrite`` at
``span.offset + first element * itemsize``; ``pwrite`` releases the GIL too. A chunk's bytes
depend only on its element range, so the file is byte for byte the one the streaming writer
produces, for every worker count and chunk size (tests/test_pwrite.py). The writes take turns
(`FILL_AHEAD`): a worker that finds the file busy samples ahead. Memory stays at two chunk
buffers per worker per dtype; the caller (`atomic_output`) fsyncs once at the end.

Formats whose bookkeeping depends on the data (zip CRCs in npz) or whose library places the
data (HDF5) keep the streaming writer: BENCHMARKS.md says what that costs.
"""

from __future__ import annotations

import ctypes
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..core.dtypes import numpy_dtype
from ..core.stream import BLOCK, ChunkJob, Scratch
from ..formats.description import ByteLayout
from .atomic import check_interrupt
from .resolve import ResolvedTensor, chunk_jobs

#: A tensor and the bytes of one of its chunks that just reached the file.
OnChunk = Callable[[ResolvedTensor, int], None]


class Recorder(Protocol):
    """Sees each chunk right after it is written (from the worker thread)."""

    def record(
        self, t: ResolvedTensor, index: int, first: int, offset: int, values: np.ndarray
    ) -> None: ...


def covers_file(layout: ByteLayout, size: int) -> bool:
    """Whether ``layout`` fixes every byte of a ``size``-byte file: the header, then the
    tensor spans back to back up to the end."""
    if not layout.header:
        return False
    pos = len(layout.header)
    for span in sorted(layout.tensors, key=lambda s: s.offset):
        if span.offset != pos:
            return False
        pos += span.nbytes
    return pos == size


@dataclass(frozen=True)
class Placed:
    """Chunk job ``index`` of tensor ``t``: elements ``first ..`` of it, at file ``offset``."""

    t: ResolvedTensor
    job: ChunkJob
    index: int
    first: int
    offset: int


def _placed_jobs(
    layout: ByteLayout, tensors: Sequence[ResolvedTensor], chunk_elems: int
) -> Iterator[Placed]:
    """Every chunk job of every tensor with the file offset of its first byte, in file order."""
    by_name = {t.name: t for t in tensors}
    for span in layout.tensors:
        t = by_name[span.name]
        itemsize = numpy_dtype(t.plan.dtype).itemsize
        first = 0
        for index, job in enumerate(chunk_jobs(t, chunk_elems)):
            yield Placed(t, job, index, first, span.offset + first * itemsize)
            first += job.count


def _sync_file_range() -> Callable[[int, int, int], None] | None:
    """Linux's ``sync_file_range(fd, offset, nbytes, SYNC_FILE_RANGE_WRITE)``: start writing
    a range's dirty pages to the device and return without waiting (man 2 sync_file_range).
    None where the C library has no such call (macOS, Windows): there the final fsync writes
    everything, as before."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, TypeError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    fn.restype = ctypes.c_int
    write = 2  # SYNC_FILE_RANGE_WRITE in <fcntl.h>

    def start(fd: int, offset: int, nbytes: int) -> None:
        # A hint only: an error here (a file system without writeback, say) changes nothing,
        # and the caller's final fsync reports any real write error.
        fn(fd, offset, nbytes, write)

    return start


#: Starts the write-out of a chunk as soon as it is in the page cache, so that the disk
#: works while the cores sample the rest and the final fsync finds little left to write:
#: otherwise the kernel starts only when its dirty-page threshold is reached, and a file
#: below it (10% of memory by default) is written entirely by the fsync, after the sampling.
#: ctypes releases the GIL for the call.
START_WRITEBACK = _sync_file_range()


#: Chunks a worker fills before it waits for the file. Linux serialises buffered writes to one
#: file (ext4, XFS, btrfs and tmpfs all hold the inode's i_rwsem for the whole write, and a
#: second writer spins on it while the first copies), so the writes are one at a time in
#: any case; taking turns through a lock lets a worker that finds the file busy sample its
#: next chunk instead of spinning. Two keeps memory at two chunk buffers per worker.
FILL_AHEAD = 2


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    # One pwrite may write less than asked (Linux caps a call at ~2 GiB; signals), so loop.
    while data.nbytes:
        n = os.pwrite(fd, data, offset)
        data = data[n:]
        offset += n


def write_at_offsets(
    path: Path,
    layout: ByteLayout,
    tensors: Sequence[ResolvedTensor],
    *,
    workers: int,
    chunk_elems: int,
    on_chunk: OnChunk | None = None,
    recorder: Recorder | None = None,
    durable: bool = False,
) -> None:
    """Write the file ``layout`` describes at ``path`` (an existing, empty temp file) on
    ``workers`` threads. Progress, Ctrl-C and worker errors are handled on the calling thread:
    an exception there (or in any worker) stops every worker before it propagates.
    ``recorder`` sees every chunk right after it is written (postcheck.ChunkRecorder).
    ``durable``: the caller will fsync the file, so each chunk's write-out to the device
    starts right after it is written (`START_WRITEBACK`)."""
    jobs = _placed_jobs(layout, tensors, chunk_elems)
    lock = threading.Lock()  # the job iterator's
    file_lock = threading.Lock()  # held while a worker writes (see FILL_AHEAD)
    stop = threading.Event()
    done: queue.SimpleQueue[tuple[ResolvedTensor, int] | None] = queue.SimpleQueue()
    errors: list[BaseException] = []
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    writeback = START_WRITEBACK if durable else None

    def settle(item: Placed, values: np.ndarray) -> None:
        """What follows a chunk's write, outside the file lock."""
        if writeback is not None:
            writeback(fd, item.offset, values.nbytes)
        if recorder is not None:
            recorder.record(item.t, item.index, item.first, item.offset, values)
        done.put((item.t, values.nbytes))

    def work() -> None:
        free: dict[str, list[np.ndarray]] = {}  # reused buffers, per dtype
        filled: list[tuple[Placed, np.ndarray, np.ndarray]] = []  # not yet written
        scratch = Scratch(BLOCK)  # the numpy path's (float64, no extension); pages untouched

        def flush(wait: bool) -> None:
            if not filled or not file_lock.acquire(blocking=wait):
                return
            try:
                for item, values, _ in filled:
                    _pwrite_all(fd, values.view(np.uint8).data, item.offset)
            finally:
                file_lock.release()
            for item, values, buf in filled:
                settle(item, values)
                free[item.t.plan.dtype].append(buf)
            filled.clear()

        try:
            while not stop.is_set():
                with lock:
                    nxt = next(jobs, None)
                if nxt is None:
                    break
                dtype = nxt.t.plan.dtype
                spare = free.setdefault(dtype, [])
                buf = spare.pop() if spare else np.empty(chunk_elems, numpy_dtype(dtype))
                filled.append((nxt, nxt.job.fill(buf, scratch), buf))
                # Write now if the file is free; if another worker is writing, fill the next
                # chunk meanwhile, until FILL_AHEAD chunks wait.
                flush(wait=len(filled) >= FILL_AHEAD)
            if not stop.is_set():
                flush(wait=True)
        except BaseException as exc:  # reported and re-raised on the calling thread
            errors.append(exc)
            stop.set()
        finally:
            done.put(None)

    threads = [
        threading.Thread(target=work, name=f"varscale-pwrite-{i}", daemon=True)
        for i in range(max(1, workers))
    ]
    try:
        _pwrite_all(fd, memoryview(layout.header), 0)
        for th in threads:
            th.start()
        running = len(threads)
        while running:
            check_interrupt()  # Ctrl-C / SIGTERM, at a safe point of this thread
            try:
                item = done.get(timeout=0.05)
            except queue.Empty:
                continue
            if item is None:
                running -= 1
            elif on_chunk is not None:
                on_chunk(*item)
        if errors:
            raise errors[0]
    finally:
        stop.set()
        for th in threads:
            if th.is_alive():
                th.join()
        os.close(fd)
