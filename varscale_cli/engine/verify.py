"""`varscale verify`: recompute every tensor and compare bytes, streaming.

The expected values come from the file's own provenance (seed, stream id, and per tensor its
initializer config, layout and axes, from which fans and the distribution are derived again,
not trusted) or from a spec. Both sides are streamed chunk by chunk, so memory stays bounded
whatever the file size; regeneration runs on the same threaded engine as ``generate``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import islice
from typing import Any

import numpy as np

from ..core.distributions import Distribution
from ..core.initializers import deserialize
from ..core.stream import ChunkJob, TensorSampler, compiled_kernels, region_jobs
from ..core.stream.sampler import zeroed_ranges
from ..errors import VarscaleError
from ..formats.base import WeightFile
from ..provenance import Provenance, record_error
from .chunks import ChunkEngine
from .resolve import ResolvedTensor, chunk_jobs


@dataclass(frozen=True)
class Expected:
    """What one stored tensor must hold."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    jobs: Callable[[int], Iterator[ChunkJob]]  # chunk size -> the jobs that regenerate it


@dataclass
class VerifyReport:
    """The outcome; ``first`` names the first differing tensor and element."""

    checked: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # expected but not in the file
    extra: list[str] = field(default_factory=list)  # in the file but not expected
    first: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.first is None and not self.missing and not self.extra

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "ok": self.ok,
            "checked": self.checked,
            "missing": self.missing,
            "extra": self.extra,
            "first_difference": self.first,
        }

    def summary(self) -> str:
        if self.ok:
            return f"identical: {len(self.checked)} tensors match their spec and seed bit for bit"
        parts = []
        if self.first is not None:
            f = self.first
            where = f"element {f['index']}" + (f" {f['position']}" if f.get("position") else "")
            parts.append(f"tensor '{f['tensor']}' differs first at {where}: {f['reason']}")
        if self.missing:
            parts.append(f"missing from the file: {', '.join(self.missing)}")
        if self.extra:
            parts.append(f"not in the spec: {', '.join(self.extra)}")
        return "; ".join(parts)


def expected_from_resolved(tensors: list[ResolvedTensor]) -> dict[str, Expected]:
    """What a spec's tensors must hold (for ``varscale verify FILE SPEC``)."""
    return {
        t.name: Expected(t.name, t.plan.shape, t.plan.dtype, partial(chunk_jobs, t))
        for t in tensors
    }


def expected_from_provenance(metadata: dict[str, str], where: str) -> dict[str, Expected]:
    """Rebuild every tensor's sampler from the provenance a varscale file carries."""
    text = metadata.get("varscale")
    if text is None:
        raise VarscaleError(f"'{where}' has no varscale provenance; give the spec: varscale verify FILE SPEC")
    prov = Provenance.from_json(text, where)
    out = {}
    for name, rec in prov.tensors.items():
        try:
            init = deserialize(dict(rec.initializer))
            fan_in, fan_out = init.fans(
                rec.full_shape, rec.layout, rec.in_axis, rec.out_axis, rec.batch_axis or None
            )
            dist = init.law(fan_in, fan_out, rec.dtype, shape=rec.full_shape, layout=rec.layout)
            zeroed = zeroed_ranges(rec.full_shape, rec.zero_rows)
            sampler = TensorSampler(dist, rec.dtype, prov.seed, rec.stream, zeroed)
        except (ValueError, KeyError, TypeError) as exc:
            raise record_error(where, name, exc) from None
        recorded = rec.distribution
        if not _same_distribution(dist, recorded):
            raise VarscaleError(
                f"'{where}': tensor '{name}': the recorded distribution {recorded.to_json()} does not "
                f"follow from its initializer and fans ({dist.to_json()}); the provenance was edited"
            )
        out[name] = Expected(
            name, rec.shape, rec.dtype,
            partial(region_jobs, sampler, rec.full_shape, rec.offset, rec.shape),
        )
    return out


def _same_distribution(a: Distribution, b: Distribution) -> bool:
    return (
        a.kind == b.kind and math.isclose(a.scale, b.scale, rel_tol=1e-15) and a.loc == b.loc
        and a.cut == b.cut and a.lower == b.lower and (a.rows, a.cols) == (b.rows, b.cols)
    )


def _raw(arr: np.ndarray) -> np.ndarray:
    """Compare bits, not values: NaN payloads and -0.0 count as differences. A complex128
    element (16 bytes, no unsigned integer that wide) is one row of two 64-bit words."""
    if arr.dtype.itemsize == 16:
        return np.ascontiguousarray(arr).view(np.uint64).reshape(-1, 2)
    return arr.view(f"u{arr.dtype.itemsize}")


def _first_unequal(a: np.ndarray, b: np.ndarray) -> int | None:
    """The first element whose bits differ between two equally long 1-D arrays of one dtype."""
    kernels = compiled_kernels()
    if kernels is not None and a.flags.c_contiguous and b.flags.c_contiguous:
        byte = kernels.first_diff(a, b)  # one pass, no temporary (memcmp)
        return None if byte < 0 else byte // a.dtype.itemsize
    ne = _raw(a) != _raw(b)
    diff = np.flatnonzero(ne.any(axis=1) if ne.ndim == 2 else ne)
    return int(diff[0]) if diff.size else None


def _first_difference(actual: Iterator[np.ndarray], expected: Iterator[np.ndarray]) -> tuple[int, Any, Any] | None:
    """Index and values of the first differing element of two chunked streams, or None.

    Chunk boundaries of the two streams need not agree: only the one that runs out advances,
    so a reused buffer is never read after its iterator moved on.
    """
    pos = 0
    a = b = None
    ia = ib = 0
    while True:
        if a is None or ia == a.shape[0]:
            a, ia = next(actual, None), 0
        if b is None or ib == b.shape[0]:
            b, ib = next(expected, None), 0
        if a is None or b is None:
            if a is None and b is None:
                return None
            return pos, "end of data" if a is None else "extra data", None
        n = min(a.shape[0] - ia, b.shape[0] - ib)
        k = _first_unequal(a[ia : ia + n], b[ib : ib + n])
        if k is not None:
            return pos + k, a[ia + k].item(), b[ib + k].item()
        pos, ia, ib = pos + n, ia + n, ib + n


def _counted(chunks: Iterator[np.ndarray], name: str, on_chunk: Callable[[str, int], None]) -> Iterator[np.ndarray]:
    for chunk in chunks:
        on_chunk(name, chunk.nbytes)
        yield chunk


def verify(
    wf: WeightFile,
    expected: dict[str, Expected],
    workers: int,
    on_chunk: Callable[[str, int], None] | None = None,
) -> VerifyReport:
    """Compare every expected tensor with ``wf``'s, stopping at the first difference;
    ``on_chunk`` hears of each chunk of the file compared (tensor name, bytes)."""
    report = VerifyReport()
    infos = {info.name: info for info in wf.tensors()}
    report.missing = [n for n in expected if n not in infos]
    report.extra = [n for n in infos if n not in expected]
    with ChunkEngine(workers) as engine:
        # Tensors in order up to the first whose kind differs (the comparison stops there),
        # each with its jobs. One job stream runs through all of them, so the workers sample
        # into the next tensor while the last chunks of one are compared: a stream per tensor
        # drained the pipeline at each of the bench file's 147 tensors, a third of its time.
        plan: list[tuple[str, Expected, Any, str, list[ChunkJob]]] = []
        for name, exp in expected.items():
            info = infos.get(name)
            if info is None:
                continue
            stored = info.dtype.name  # readers give logical dtypes (bfloat16, not void16)
            same = tuple(info.shape) == exp.shape and stored == exp.dtype
            plan.append((name, exp, info, stored, list(exp.jobs(engine.chunk_elems)) if same else []))
            if not same:
                break
        stream = engine.run(job for *_, jobs in plan for job in jobs)
        try:
            for name, exp, info, stored, jobs in plan:
                report.checked.append(name)
                if tuple(info.shape) != exp.shape or stored != exp.dtype:
                    report.first = {
                        "tensor": name, "index": 0, "position": None,
                        "reason": f"the file has {stored} {list(info.shape)}, the spec {exp.dtype} {list(exp.shape)}",
                    }
                    break
                stored_chunks = wf.iter_chunks(name, reuse=True)  # compared, then dropped
                if on_chunk is not None:
                    stored_chunks = _counted(stored_chunks, name, on_chunk)
                # islice takes exactly this tensor's chunks and never asks the stream for more.
                found = _first_difference(stored_chunks, islice(stream, len(jobs)))
                if found is not None:
                    index, got, want = found
                    inside = exp.shape and index < math.prod(exp.shape)
                    position = [int(i) for i in np.unravel_index(index, exp.shape)] if inside else None
                    reason = got if isinstance(got, str) else f"file has {got!r}, expected {want!r}"
                    report.first = {"tensor": name, "index": index, "position": position, "reason": reason}
                    break
        finally:
            stream.close()
    return report
