"""A resolved spec written to one file: its provenance, writer items and the atomic write.

Every check that can fail without sampling (dtypes the format cannot hold, names, an existing
output, the folder, free space) runs before the first value is drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .. import __version__, formats
from ..core.dtypes import COMPLEX, numpy_dtype
from ..core.stream import STREAM_ID
from ..errors import InternalError
from ..formats.items import WriteItem, check_metadata
from ..provenance import Provenance
from ..spec import Spec
from .atomic import atomic_output, check_output
from .chunks import ChunkEngine
from .postcheck import ChunkRecorder
from .pwrite import covers_file, write_at_offsets
from .resolve import ResolvedTensor, chunk_jobs

#: Progress callback: a tensor and the bytes of its chunk that was just handed to the writer.
OnChunk = Callable[[ResolvedTensor, int], None]


def provenance(spec: Spec, seed: int, tensors: Sequence[ResolvedTensor]) -> Provenance:
    """The record of a whole run: this version, the stream, the seed, the spec and its tensors."""
    return Provenance(
        varscale_version=__version__,
        stream_id=STREAM_ID,
        seed=seed,
        spec_sha256=spec.sha256,
        tensors={t.name: t.record() for t in tensors},
    )


def write_items(
    tensors: Sequence[ResolvedTensor],
    engine: ChunkEngine | None,
    on_chunk: OnChunk | None = None,
) -> list[WriteItem]:
    """Writer items whose chunk iterators run on ``engine`` (and report progress); with no
    engine, items to check and size only (drawing their chunks is an error)."""

    def make_chunks(t: ResolvedTensor) -> Callable[[], Iterator[np.ndarray]]:
        def chunks() -> Iterator[np.ndarray]:
            if engine is None:
                raise InternalError(f"tensor '{t.name}': items made for checking were drawn")
            for arr in engine.run(chunk_jobs(t, engine.chunk_elems)):
                yield arr
                if on_chunk is not None:
                    on_chunk(t, arr.nbytes)

        return chunks

    return [
        WriteItem(
            name=t.name,
            shape=t.plan.shape,
            dtype=numpy_dtype(t.plan.dtype),
            chunks=make_chunks(t),
            attrs={"varscale": t.record().to_json()},
        )
        for t in tensors
    ]


def check_write(
    tensors: Sequence[ResolvedTensor],
    metadata: dict[str, str],
    path: Path,
    fmt: str,
    *,
    force: bool,
    items: Sequence[WriteItem] | None = None,
    new_folder: bool = False,
) -> int:
    """Every check `write_file` makes before drawing a value (the format's dtypes and names,
    the output path, the folder, the free space); return the planned file size. ``--dry-run``
    runs exactly this. ``new_folder``: the folder may be missing (a sharded run creates it)."""
    items = write_items(tensors, None) if items is None else items
    formats.check_items(fmt, items, metadata)  # the header limit counts the provenance
    planned = formats.planned_size(fmt, items, metadata)
    check_output(path, force=force, planned_bytes=planned, new_folder=new_folder)
    return planned


def write_file(
    tensors: Sequence[ResolvedTensor],
    metadata: dict[str, str],
    path: Path,
    fmt: str,
    *,
    force: bool,
    workers: int,
    on_chunk: OnChunk | None = None,
    fsync: bool = True,
    record: bool = False,
) -> ChunkRecorder | None:
    """Sample ``tensors`` on ``workers`` threads and write them atomically to ``path``
    (``fsync=False``: atomic for other processes, not durable across a power loss).

    With ``record``, returns what the post-write check needs from the chunks as they were
    written (postcheck.py) when the parallel writer ran; None when a format's streaming
    writer ran (then the check reads the file)."""
    recorder = None
    with ChunkEngine(workers) as engine:
        items = write_items(tensors, engine, on_chunk)
        planned = check_write(tensors, metadata, path, fmt, force=force, items=items)
        check_metadata(metadata)  # formats.write checks it too; the parallel writer does not call it
        # Where the format fixes every byte up front, every worker writes its own chunks at
        # their offsets (pwrite.py); else one writer streams the chunks in file order.
        layout_of = formats.get(fmt).layout
        layout = layout_of(items, metadata) if layout_of is not None else None
        with atomic_output(path, force=force, planned_bytes=planned, fsync=fsync) as tmp:
            if layout is not None and covers_file(layout, planned):
                recorder = (
                    ChunkRecorder(layout, tensors, metadata, tmp)
                    if record and all(_recordable(t) for t in tensors)
                    else None
                )
                write_at_offsets(
                    tmp, layout, tensors, workers=engine.workers,
                    chunk_elems=engine.chunk_elems, on_chunk=on_chunk, recorder=recorder,
                    durable=fsync,
                )
            else:
                formats.write(fmt, tmp, items, metadata)
    return recorder


def _recordable(t: ResolvedTensor) -> bool:
    """Whether the check can judge ``t`` from its chunks' moments as they are written: not a
    complex tensor (judged on modulus and phase) nor an orthogonal one (its Gram matrix needs
    the whole tensor); a file holding one is read back instead."""
    return t.plan.dtype not in COMPLEX and t.distribution.kind != "orthogonal"
