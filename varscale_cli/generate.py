"""From a validated spec to writer items: fans, distributions, provenance, parallel chunks.

This is the only glue between the pure core (fans, initializers, sampling) and the writers.
Chunks of every tensor are produced by a pool of threads (numpy releases the GIL in
``random_raw`` and in ufuncs, so threads scale on the sampler's work) and handed to the writer
strictly in order. A chunk's values depend only on its element range, so the output bytes are
identical for every worker count and chunk size.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, sampling
from .core.distributions import Distribution
from .core.fans import compute_fans
from .formats.items import WriteItem
from .sampling import ChunkJob, region_jobs
from .spec import Spec, TensorPlan

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


@dataclass(frozen=True)
class ResolvedTensor:
    """A spec tensor with everything derived: fans, the exact distribution, its sampler."""

    plan: TensorPlan
    fan_in: int
    fan_out: int
    target_std: float
    distribution: Distribution
    sampler: sampling.TensorSampler

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def count(self) -> int:
        return math.prod(self.plan.shape)

    @property
    def nbytes(self) -> int:
        return self.count * sampling.numpy_dtype(self.plan.dtype).itemsize

    def provenance(self) -> dict[str, Any]:
        """The per-tensor record stored in every output (sorted keys when serialised)."""
        p = self.plan
        return {
            "initializer": p.initializer.to_spec(),
            "layout": p.layout,
            "in_axis": None if p.in_axis is None else list(p.in_axis),
            "out_axis": None if p.out_axis is None else list(p.out_axis),
            "batch_axis": list(p.batch_axis),
            "fan_in": self.fan_in,
            "fan_out": self.fan_out,
            "target_std": self.target_std,
            "distribution": self.distribution.to_json(),
            "shape": list(p.shape),
            "dtype": p.dtype,
            "stream": p.stream,
            "full_shape": list(p.full_shape),
            "offset": list(p.offset),
        }


def resolve(spec: Spec, seed: int) -> list[ResolvedTensor]:
    """Fans, distribution and sampler for every tensor, in spec order."""
    out = []
    for p in spec.tensors:
        fan_in, fan_out = compute_fans(
            p.full_shape, p.layout, p.in_axis, p.out_axis, p.batch_axis or None
        )
        dist = p.initializer.distribution(fan_in, fan_out)
        out.append(
            ResolvedTensor(
                plan=p,
                fan_in=fan_in,
                fan_out=fan_out,
                target_std=p.initializer.target_std(fan_in, fan_out),
                distribution=dist,
                sampler=sampling.TensorSampler(dist, p.dtype, seed, p.stream),
            )
        )
    return out


def provenance(spec: Spec, seed: int, tensors: Sequence[ResolvedTensor]) -> dict[str, Any]:
    return {
        "varscale_version": __version__,
        "stream_id": sampling.STREAM_ID,
        "seed": seed,
        "spec_sha256": spec.sha256,
        "tensors": {t.name: t.provenance() for t in tensors},
    }


def dumps(obj: Any) -> str:
    """Compact JSON with sorted keys: the same provenance always serialises to the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def file_metadata(prov: dict[str, Any]) -> dict[str, str]:
    """The str -> str metadata every format stores (HF loaders require ``format: pt``)."""
    return {"format": "pt", "varscale": dumps(prov)}


# --- chunk jobs ----------------------------------------------------------------------------------


def chunk_jobs(t: ResolvedTensor, chunk_elems: int = CHUNK_ELEMS) -> Iterator[ChunkJob]:
    """A resolved tensor's jobs (its partition region of its stream's full tensor)."""
    p = t.plan
    return region_jobs(t.sampler, p.full_shape, p.offset, p.shape, chunk_elems)


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
        self._executor = (
            ThreadPoolExecutor(self.workers, thread_name_prefix="varscale")
            if self.workers > 1
            else None
        )

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
        return np.empty(self.chunk_elems, dtype=sampling.numpy_dtype(dtype))

    def _release(self, dtype: str, buf: np.ndarray) -> None:
        with self._lock:
            self._pool.setdefault(dtype, []).append(buf)

    def _run(self, job: ChunkJob) -> np.ndarray:
        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = sampling._Scratch(sampling.BLOCK)
        buf = self._buffer(job.sampler.dtype)
        job.fill(buf, scratch)
        return buf

    def run(self, jobs: Iterator[ChunkJob]) -> Iterator[np.ndarray]:
        """Yield each job's values (a pooled buffer, valid until the next item is requested)."""
        if self._executor is None:
            for job in jobs:
                buf = self._run(job)
                yield buf[: job.count]
                self._release(job.sampler.dtype, buf)
            return
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


def write_items(
    tensors: Sequence[ResolvedTensor],
    engine: ChunkEngine,
    on_chunk: Callable[[ResolvedTensor, int], None] | None = None,
) -> list[WriteItem]:
    """Writer items whose chunk iterators run on ``engine`` (and report progress)."""

    def make_chunks(t: ResolvedTensor) -> Callable[[], Iterator[np.ndarray]]:
        def chunks() -> Iterator[np.ndarray]:
            for arr in engine.run(chunk_jobs(t, engine.chunk_elems)):
                yield arr
                if on_chunk is not None:
                    on_chunk(t, arr.nbytes)

        return chunks

    return [
        WriteItem(
            name=t.name,
            shape=t.plan.shape,
            dtype=sampling.numpy_dtype(t.plan.dtype),
            chunks=make_chunks(t),
            attrs={"varscale": dumps(t.provenance())},
        )
        for t in tensors
    ]


def write_file(
    tensors: Sequence[ResolvedTensor],
    metadata: dict[str, str],
    path: Path,
    fmt: str,
    *,
    force: bool,
    workers: int,
    on_chunk: Callable[[ResolvedTensor, int], None] | None = None,
    fsync: bool = True,
) -> None:
    """Sample ``tensors`` on ``workers`` threads and write them atomically to ``path``
    (``fsync=False``: atomic for other processes, not durable across a power loss).

    Every check that can fail without sampling (dtypes the format cannot hold, names, an
    existing output, the folder, free space) runs before the first value is drawn.
    """
    from . import formats as writers
    from .atomic import atomic_output

    with ChunkEngine(workers) as engine:
        items = write_items(tensors, engine, on_chunk)
        writers.check_items(fmt, items)
        planned = writers.planned_size(fmt, items, metadata)
        with atomic_output(path, force=force, planned_bytes=planned, fsync=fsync) as tmp:
            writers.write(fmt, tmp, items, metadata)
