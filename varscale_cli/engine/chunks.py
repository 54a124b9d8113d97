"""The threaded chunk engine that both generation and verification run on.

Chunks of every tensor are produced by a pool of threads (numpy releases the GIL in
``random_raw`` and in ufuncs, so threads scale on the sampler's work) and handed to the
consumer strictly in order. A chunk's values depend only on its element range, so the output
bytes are identical for every worker count and chunk size.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from ..core.dtypes import numpy_dtype
from ..core.stream import BLOCK, ChunkJob, Scratch

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

#: Elements per chunk handed to the writer: 1 Mi float32 = 4 MiB. Large enough that the
#: per-chunk overhead (a Philox construction, a write call) is noise, small enough that
#: 2 x workers chunks in flight stay far below the 100 MiB memory budget.
CHUNK_ELEMS = 1 << 20


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def worker_count(requested: int | None) -> int:
    """The threads to run: ``requested``, or all cores this process may use when None."""
    return requested or default_workers()


class ChunkEngine:
    """Runs chunk jobs on ``workers`` threads and yields their results in submission order.

    Output buffers come from a pool and are recycled once the consumer moves on, and each
    thread keeps its own sampler scratch: no page is freshly faulted in steady state.
    """

    def __init__(self, workers: int, chunk_elems: int = CHUNK_ELEMS) -> None:
        self.workers = max(1, workers)
        self.chunk_elems = chunk_elems
        self.depth = 2 * self.workers  # jobs in flight: keeps every thread busy
        self._local = threading.local()
        self._pool: dict[str, list[np.ndarray]] = {}
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None  # started by the first threaded run

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ChunkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _buffer(self, dtype: str) -> np.ndarray:
        with self._lock:
            free = self._pool.setdefault(dtype, [])
            if free:
                return free.pop()
        return np.empty(self.chunk_elems, dtype=numpy_dtype(dtype))

    def _release(self, dtype: str, buf: np.ndarray) -> None:
        with self._lock:
            self._pool.setdefault(dtype, []).append(buf)

    def _run(self, job: ChunkJob) -> np.ndarray:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = Scratch(BLOCK)
        buf = self._buffer(job.sampler.dtype)
        job.fill(buf, scratch)
        return buf

    def run(self, jobs: Iterator[ChunkJob]) -> Iterator[np.ndarray]:
        """Yield each job's values (a pooled buffer, valid until the next item is requested)."""
        if self.workers == 1:
            for job in jobs:
                buf = self._run(job)
                yield buf[: job.count]
                self._release(job.sampler.dtype, buf)
            return
        if self._executor is None:
            # Imported here, not at the top (~5 ms of every start-up): the parallel
            # safetensors writer (pwrite.py) uses its own threads, not this pool.
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="varscale")
        pending: deque[tuple[ChunkJob, Future[np.ndarray]]] = deque()
        jobs = iter(jobs)
        try:
            for job in jobs:
                pending.append((job, self._executor.submit(self._run, job)))
                if len(pending) >= self.depth:
                    yield from self._drain_one(pending)
            while pending:
                yield from self._drain_one(pending)
        finally:
            for _, fut in pending:
                fut.cancel()

    def _drain_one(self, pending: deque[tuple[ChunkJob, Future[np.ndarray]]]) -> Iterator[np.ndarray]:
        job, fut = pending.popleft()
        buf = fut.result()
        yield buf[: job.count]
        self._release(job.sampler.dtype, buf)
