"""The parallel writer (engine/pwrite.py) writes the streaming writer's bytes exactly.

Files from `write_at_offsets` on 1, 2 and 3 workers and several chunk sizes (ragged ones
included) must equal the file `formats.write` streams in order, for every sampled dtype, a
constant, an empty tensor, a partition (its pieces are not contiguous in the stream), on both
the fused native path and the numpy path; the CLI's safetensors output must equal the
streaming writer's too, and a worker's error must surface with no thread left behind.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from varscale_cli import formats
from varscale_cli.core.stream import native_path
from varscale_cli.engine import pwrite
from varscale_cli.engine.chunks import ChunkEngine
from varscale_cli.engine.generate import provenance, write_file, write_items
from varscale_cli.engine.postcheck import ChunkRecorder
from varscale_cli.engine.resolve import ResolvedTensor, resolve
from varscale_cli.spec import parse_spec

SPEC = """
version: 1
seed: 11
defaults: {dtype: float32, layout: keras, initializer: he_normal}
tensors:
  a/kernel: {shape: [300, 77]}
  b/kernel: {shape: [64, 33], dtype: bfloat16, initializer: glorot_uniform}
  c/kernel: {shape: [129, 5], dtype: float16, initializer: lecun_normal}
  d/kernel: {shape: [40, 30], dtype: float64}
  e/bias: {shape: [77], initializer: zeros}
  f/empty: {shape: [0, 4]}
  g/ones: {shape: [13], initializer: ones}
  W_part: {shape: [50, 48], partition: {of: W, full_shape: [100, 96], offset: [25, 31]}}
"""


def _resolved() -> tuple[list[ResolvedTensor], dict[str, str]]:
    spec = parse_spec(SPEC, path=Path("pwrite.yaml"))
    tensors = resolve(spec, 11)
    return tensors, provenance(spec, 11, tensors).file_metadata()


def _streamed(tmp_path: Path, tensors: list[ResolvedTensor], metadata: dict[str, str]) -> bytes:
    out = tmp_path / "streamed.safetensors"
    with ChunkEngine(1) as engine:
        formats.write("safetensors", out, write_items(tensors, engine), metadata)
    return out.read_bytes()


def _placed(
    tmp_path: Path, tensors: list[ResolvedTensor], metadata: dict[str, str], workers: int,
    chunk: int,
) -> bytes:
    out = tmp_path / f"placed-{workers}-{chunk}.safetensors"
    out.touch()
    with ChunkEngine(1) as engine:
        items = write_items(tensors, engine)
    layout = formats.get("safetensors").layout
    assert layout is not None
    lay = layout(items, metadata)
    assert pwrite.covers_file(lay, formats.planned_size("safetensors", items, metadata))
    pwrite.write_at_offsets(out, lay, tensors, workers=workers, chunk_elems=chunk)
    return out.read_bytes()


@pytest.mark.parametrize("compiled", [True, False])
def test_every_worker_count_and_chunk_size_gives_the_streamed_bytes(
    tmp_path: Path, compiled: bool
) -> None:
    tensors, metadata = _resolved()
    with native_path(compiled):
        want = _streamed(tmp_path, tensors, metadata)
        for workers in (1, 2, 3):
            for chunk in (1, 7, 1000, 4096, 1 << 20):
                if chunk == 1 and workers != 2:
                    continue  # one-element chunks are slow; one run shows they work
                got = _placed(tmp_path, tensors, metadata, workers, chunk)
                assert hashlib.sha256(got).digest() == hashlib.sha256(want).digest(), (workers, chunk)


def test_generate_uses_the_parallel_writer_and_matches_the_stream(tmp_path: Path) -> None:
    tensors, metadata = _resolved()
    want = _streamed(tmp_path, tensors, metadata)
    calls: list[int] = []
    real = pwrite.write_at_offsets

    def spy(*args: object, **kwargs: object) -> None:
        calls.append(1)
        real(*args, **kwargs)  # type: ignore[arg-type]

    import varscale_cli.engine.generate as gen

    for workers in (1, 3):
        out = tmp_path / f"gen-{workers}.safetensors"
        seen: list[int] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(gen, "write_at_offsets", spy)
            write_file(
                tensors, metadata, out, "safetensors", force=False, workers=workers,
                on_chunk=lambda t, n, seen=seen: seen.append(n), fsync=False,
            )
        assert out.read_bytes() == want
        assert sum(seen) == sum(t.nbytes for t in tensors)  # progress saw every byte
    assert len(calls) == 2


def test_covers_file_refuses_partial_layouts(tmp_path: Path) -> None:
    tensors, metadata = _resolved()
    with ChunkEngine(1) as engine:
        items = write_items(tensors, engine)
    npz_layout = formats.get("npz").layout
    assert npz_layout is not None
    # npz knows its offsets but not its bytes (zip CRCs): it keeps the streaming writer.
    assert not pwrite.covers_file(npz_layout(items, metadata), formats.planned_size("npz", items, metadata))
    layout = formats.get("safetensors").layout
    assert layout is not None
    lay = layout(items, metadata)
    size = formats.planned_size("safetensors", items, metadata)
    assert pwrite.covers_file(lay, size) and not pwrite.covers_file(lay, size + 1)


def test_a_worker_error_stops_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tensors, metadata = _resolved()
    real = pwrite._pwrite_all
    writes: list[int] = []

    def failing(fd: int, data: memoryview, offset: int) -> None:
        writes.append(offset)
        if len(writes) == 5:
            raise OSError(28, "No space left on device")
        real(fd, data, offset)

    monkeypatch.setattr(pwrite, "_pwrite_all", failing)
    before = threading.active_count()
    with pytest.raises(OSError, match="No space"):
        _placed(tmp_path, tensors, metadata, 3, 100)
    assert threading.active_count() == before


# --- the post-write check (engine/postcheck.py) ------------------------------------------------


def _recorded(tmp_path: Path, workers: int = 2) -> tuple[Path, ChunkRecorder]:
    tensors, metadata = _resolved()
    out = tmp_path / f"rec-{workers}.safetensors"
    recorder = write_file(
        tensors, metadata, out, "safetensors", force=True, workers=workers, fsync=False,
        record=True,
    )
    assert recorder is not None
    return out, recorder


def test_recorded_summaries_give_the_read_back_report(tmp_path: Path) -> None:
    """The report from the chunks as written equals the report of the file read back, up to
    float64 summation order (the merge granularity differs) and verdict for verdict."""
    from varscale_cli import stats
    from varscale_cli.formats import open_weights

    for workers in (1, 3):
        out, recorder = _recorded(tmp_path, workers)
        recorder.prove_written(out)
        fast = recorder.report(out)
        with open_weights(out) as wf:
            slow = stats.check_file(wf, stats.targets_from_provenance(wf.metadata, str(out)) or {})
        assert fast.ok and slow.ok and fast.family_size == slow.family_size
        for a, b in zip(fast.tensors, slow.tensors, strict=True):
            assert (a.name, a.verdict, a.zeros, a.nans, a.out_of_bound) == (b.name, b.verdict, b.zeros, b.nans, b.out_of_bound)
            assert (a.min, a.max) == (b.min, b.max)
            if b.mean is not None:
                assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-15)
                assert a.std == pytest.approx(b.std, rel=1e-9)
            for key, t in (b.tests or {}).items():  # the same KS subsample, same statistics
                assert a.tests[key]["statistic"] == pytest.approx(t["statistic"], rel=1e-6)


@pytest.mark.parametrize("damage", ["flip", "flip-tail", "truncate", "header"])
def test_a_file_that_lost_its_bytes_fails_the_proof(tmp_path: Path, damage: str) -> None:
    from varscale_cli.errors import CheckFailed

    out, recorder = _recorded(tmp_path)
    data = bytearray(out.read_bytes())
    span = recorder.layout.tensors[0]
    if damage == "flip":  # a byte in a chunk's first page (every chunk's edges are read back)
        data[span.offset + 5] ^= 0x40
    elif damage == "flip-tail":  # the last byte of the last tensor
        last = max(recorder.layout.tensors, key=lambda t: t.offset)
        data[last.offset + last.nbytes - 1] ^= 0x01
    elif damage == "truncate":
        del data[-3:]
    else:
        data[10] ^= 0x01
    out.write_bytes(bytes(data))
    with pytest.raises(CheckFailed, match="differ|holds"):
        recorder.prove_written(out)


def test_generate_cli_checks_without_reading_everything(tmp_path: Path) -> None:
    """The CLI's default check passes on a good file; the streamed formats still read back."""
    from click.testing import CliRunner

    from varscale_cli.cli import cli

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    for suffix in ("safetensors", "npz"):
        res = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(tmp_path / f"c.{suffix}"), "--workers", "2"])
        assert res.exit_code == 0, res.output
        assert "pass" in res.output or "ok" in res.output.lower()


def test_a_tensor_beyond_its_bound_is_re_read_for_exact_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Values the check must count exactly (here: out of bound) come from the file itself."""
    from varscale_cli.stats import law

    real = law.stored_bounds

    def tight(dist, dtype):  # type: ignore[no-untyped-def]
        lo, hi, bound = real(dist, dtype)
        return lo / 2, hi / 2, bound

    import varscale_cli.stats.report as report_module

    monkeypatch.setattr(report_module, "stored_bounds", tight)
    out, recorder = _recorded(tmp_path)
    rep = recorder.report(out)
    a = next(r for r in rep.tensors if r.name == "a/kernel")
    assert a.verdict == "fail" and a.out_of_bound > 0
    from varscale_cli import stats
    from varscale_cli.formats import open_weights

    with open_weights(out) as wf:
        slow = stats.check_file(wf, stats.targets_from_provenance(wf.metadata, str(out)) or {})
    assert a.out_of_bound == next(r for r in slow.tensors if r.name == "a/kernel").out_of_bound


def test_a_durable_write_starts_each_chunks_write_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With fsync on, every chunk's byte range is handed to the kernel's write-out as soon as
    it is written (so the disk works during sampling), the ranges tile the tensor data, and
    the bytes stay the streamed ones; without fsync nothing is asked."""
    tensors, metadata = _resolved()
    want = _streamed(tmp_path, tensors, metadata)
    lock = threading.Lock()
    for durable in (True, False):
        ranges: list[tuple[int, int]] = []

        def record(fd: int, offset: int, nbytes: int, ranges: list = ranges) -> None:
            with lock:
                ranges.append((offset, nbytes))

        monkeypatch.setattr(pwrite, "START_WRITEBACK", record)
        out = tmp_path / f"durable-{durable}.safetensors"
        write_file(tensors, metadata, out, "safetensors", force=False, workers=2, fsync=durable)
        assert out.read_bytes() == want
        if not durable:
            assert ranges == []
            continue
        header = len(want) - sum(t.nbytes for t in tensors)
        pos = header
        for offset, nbytes in sorted(ranges):
            assert offset == pos
            pos += nbytes
        assert pos == len(want)


@pytest.mark.skipif(pwrite.START_WRITEBACK is None, reason="no sync_file_range in this C library")
def test_start_writeback_is_a_harmless_hint(tmp_path: Path) -> None:
    """The real call on a real file (and on a range past its end) changes no byte."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 10000)
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"y" * 100, 5000)
        pwrite.START_WRITEBACK(fd, 5000, 100)
        pwrite.START_WRITEBACK(fd, 1 << 40, 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
    assert path.read_bytes() == b"x" * 5000 + b"y" * 100 + b"x" * 4900
