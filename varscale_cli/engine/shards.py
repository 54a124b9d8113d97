"""Sharded safetensors checkpoints in the Hugging Face layout, planned from the spec alone.

A plan depends only on the tensors' names, dtypes and shapes (never on sampled values), so
every machine of a job array computes the same plan, writes its own shard bit for bit as the
single-machine run would, and may write the identical index.

* ``--max-shard-size``: greedy in spec order, as huggingface_hub does: a tensor joins the
  current shard if it fits, else starts a new one; a tensor larger than the limit gets a shard
  of its own. Sizes count tensor bytes only (headers excluded), like HF's ``total_size``.
* ``--num-shards N``: N contiguous shards whose largest is as small as possible (binary search
  on the capacity, then greedy packing; groups are split further if packing needed fewer).

Files: ``model-00001-of-0000N.safetensors`` (1-based, 5 digits) and
``model.safetensors.index.json`` with ``metadata.total_size`` and ``weight_map``; a single
shard is ``model.safetensors`` with no index, as HF writes it.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError, SpecError, VarscaleError
from ..formats import check_items
from ..formats.base import MAX_JSON_BYTES
from ..formats.hf import HF_INDEX_FILE as INDEX_NAME
from ..formats.hf import HF_SINGLE_FILE as SINGLE_NAME
from ..inputs import read_input
from ..provenance import Provenance, ShardRef
from ..spec import Spec, parse_spec
from . import shard_folder
from .atomic import atomic_output
from .dask_client import check_address, run_tasks
from .generate import OnChunk, check_write, provenance, write_file, write_items
from .resolve import ResolvedTensor, resolve
from .sizes import Size, parse_size


@dataclass(frozen=True)
class ShardPlan:
    """Which tensors (indices into the spec's tensor list) go to which shard file."""

    groups: tuple[tuple[int, ...], ...]

    @property
    def count(self) -> int:
        return len(self.groups)

    def filename(self, shard: int) -> str:
        if self.count == 1:
            return SINGLE_NAME
        return f"model-{shard + 1:05d}-of-{self.count:05d}.safetensors"

    def index(self, names: Sequence[str], sizes: Sequence[int]) -> str:
        """The HF index JSON text (sorted keys, 2-space indent, final newline)."""
        weight_map = {names[i]: self.filename(s) for s, g in enumerate(self.groups) for i in g}
        doc = {"metadata": {"total_size": sum(sizes)}, "weight_map": weight_map}
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def plan_by_size(sizes: Sequence[int], max_bytes: int) -> ShardPlan:
    """Greedy in spec order; an oversize tensor is a shard of its own."""
    if max_bytes <= 0:
        raise SpecError(f"--max-shard-size must be positive, got {max_bytes}")
    groups: list[list[int]] = []
    current: list[int] = []
    used = 0
    for i, size in enumerate(sizes):
        if current and used + size > max_bytes:
            groups.append(current)
            current, used = [], 0
        current.append(i)
        used += size
    if current or not groups:
        groups.append(current)
    return ShardPlan(tuple(tuple(g) for g in groups))


def _pack(sizes: Sequence[int], capacity: int) -> list[list[int]]:
    groups: list[list[int]] = [[]]
    used = 0
    for i, size in enumerate(sizes):
        if groups[-1] and used + size > capacity:
            groups.append([])
            used = 0
        groups[-1].append(i)
        used += size
    return groups


def plan_balanced(sizes: Sequence[int], shards: int) -> ShardPlan:
    """Exactly ``shards`` contiguous groups minimising the largest group's bytes."""
    if shards < 1:
        raise SpecError(f"--num-shards must be at least 1, got {shards}")
    if shards > len(sizes):
        raise SpecError(
            f"--num-shards {shards} is more than the spec's {len(sizes)} tensors; "
            "a shard cannot be empty"
        )
    lo, hi = max(sizes, default=0), max(sum(sizes), 1)
    while lo < hi:  # smallest capacity that packs into <= shards groups
        mid = (lo + hi) // 2
        if len(_pack(sizes, mid)) <= shards:
            hi = mid
        else:
            lo = mid + 1
    groups = _pack(sizes, lo)
    while len(groups) < shards:
        # Splitting a group never raises the maximum; split the largest splittable one.
        k = max(
            (j for j, g in enumerate(groups) if len(g) > 1),
            key=lambda j: (sum(sizes[i] for i in groups[j]), -j),
        )
        g = groups[k]
        groups[k : k + 1] = [g[: len(g) // 2], g[len(g) // 2 :]]
    return ShardPlan(tuple(tuple(g) for g in groups))


def make_plan(sizes: Sequence[int], max_bytes: int | None, shards: int | None) -> ShardPlan:
    if max_bytes is not None and shards is not None:
        raise SpecError("use either --max-shard-size or --num-shards, not both")
    if shards is not None:
        return plan_balanced(sizes, shards)
    assert max_bytes is not None
    return plan_by_size(sizes, max_bytes)


def shard_file(
    tensors: Sequence[ResolvedTensor], prov: Provenance, plan: ShardPlan, shard: int, out_dir: Path
) -> tuple[list[ResolvedTensor], dict[str, str], Path]:
    """Shard ``shard`` of ``plan`` as `write_file` (and `check_write`) take it: its tensors,
    its metadata (their provenance, and which shard of how many it is) and its path in
    ``out_dir``."""
    if not 0 <= shard < plan.count:
        raise SpecError(f"--shard-index {shard} is out of range: the plan has {plan.count} shards (0..{plan.count - 1})")
    chosen = [tensors[i] for i in plan.groups[shard]]
    metadata = prov.subset([t.name for t in chosen], ShardRef(shard, plan.count)).file_metadata()
    return chosen, metadata, out_dir / plan.filename(shard)


def write_index(plan: ShardPlan, tensors: Sequence[ResolvedTensor], out_dir: Path) -> Path | None:
    """Write the index (identical from every shard run); None for a single-file plan.

    Replacing it needs no --force: its content is a pure function of the plan, so an existing
    index is either identical or belongs to a plan the user has just changed on purpose.
    """
    if plan.count == 1:
        return None
    text = plan.index([t.name for t in tensors], [t.nbytes for t in tensors])
    path = out_dir / INDEX_NAME
    if _stale_index(path) == text.encode("utf-8"):
        return path
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(text)
    return path


def _stale_index(path: Path) -> bytes | None:
    """The bytes of the index already at ``path`` (None if there is none), read through the
    guarded open: any bytes (not UTF-8 included) are fine, they are only compared and
    replaced; a folder, FIFO or device there is refused (before a shard is written)."""
    if not os.path.lexists(path) or path.is_symlink():
        return None  # nothing there, or a link atomic_output replaces (never follows)
    if not path.is_file():
        raise OutputError(
            f"'{path}' exists and is not a regular file; remove it so the index can be written"
        )
    try:
        return read_input(path, "index", MAX_JSON_BYTES, error=OutputError)
    except OutputError:
        return None  # over the limit: it differs from ours, atomic_output replaces it


# --- a whole sharded run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardedRun:
    """Everything ``varscale generate`` was asked for when the output is a sharded folder.

    Attributes:
        spec / spec_path / tensors / seed: the resolved spec (``spec_path`` is re-read by
            Dask workers, which parse the spec themselves).
        output: the folder; created if missing (None: a dry run without ``-o``).
        fmt: the requested format (only safetensors, or None, can be sharded).
        max_shard_size / num_shards: the plan, as given (a size text such as ``5GB``).
        shard_index: write only this shard of the plan (a job array's task), or all.
        dask_address: run every shard as a task on this Dask scheduler instead.
    """

    spec: Spec
    spec_path: Path
    tensors: Sequence[ResolvedTensor]
    seed: int
    output: Path | None
    fmt: str | None
    max_shard_size: str | None
    num_shards: int | None
    shard_index: int | None
    dask_address: str | None
    force: bool
    workers: int
    fsync: bool
    #: Seconds to wait for the Dask scheduler to answer; None: dask's own connect timeout.
    dask_timeout: float | None = None


@dataclass(frozen=True)
class ShardedJob:
    """A sharded run checked up to its first byte: the plan, what the size limit meant, the
    shards this run writes and the files of an earlier plan it removes once they are written."""

    run: ShardedRun
    plan: ShardPlan
    size: Size | None
    indices: tuple[int, ...]
    remove: tuple[Path, ...]

    def names(self) -> list[str]:
        """Every file of the plan: the shards, then the index if there is one."""
        files = [self.plan.filename(i) for i in range(self.plan.count)]
        return files + ([INDEX_NAME] if self.plan.count > 1 else [])


@dataclass(frozen=True)
class ShardedResult:
    """The shard files this run wrote, out of the plan's ``count``."""

    written: list[str]
    count: int


#: Opens a progress display for (tensors, bytes) to come and yields its chunk callback (or None).
ProgressFactory = Callable[[int, int], AbstractContextManager[OnChunk | None]]


def _check_folder_name(output: Path) -> None:
    from ..formats import SUFFIXES

    named = SUFFIXES.get(output.suffix.lower())
    if named is not None:
        raise SpecError(
            f"'{output}' is a {named.name} file name ({output.suffix}), but sharded output is a folder of safetensors "
            f"shards (model-00001-of-0000N.safetensors and an index); give a folder, e.g. "
            f"-o {output.with_suffix('')}/"
        )
    if output.exists() and not output.is_dir():
        raise SpecError(f"'{output}' is a file; sharded output goes into a folder")


def prepare_sharded(run: ShardedRun) -> ShardedJob:
    """Every check a sharded run makes before its first byte, and nothing written: the real
    run and ``--dry-run`` both call this, so a dry run refuses exactly what the run refuses."""
    if run.fmt not in (None, "safetensors"):
        raise SpecError(f"sharded output is safetensors only, not {run.fmt}")
    if run.output is not None:
        _check_folder_name(run.output)
    size = parse_size(run.max_shard_size) if run.max_shard_size is not None else None
    tensors = run.tensors
    plan = make_plan([t.nbytes for t in tensors], None if size is None else size.bytes, run.num_shards)
    if run.shard_index is not None and not 0 <= run.shard_index < plan.count:
        raise SpecError(
            f"--shard-index {run.shard_index} is out of range: the plan has {plan.count} "
            f"shard(s) (0..{plan.count - 1})"
        )
    if plan.count > 1 and run.output is not None:
        _stale_index(run.output / INDEX_NAME)  # a folder or FIFO there: refused before writing
    if run.dask_address is not None:
        if run.shard_index is not None:
            raise SpecError("--dask runs every shard; drop --shard-index")
        if importlib.util.find_spec("distributed") is None:
            raise VarscaleError("--dask needs dask.distributed: pip install 'varscale[dask]'")
        check_address(run.dask_address)  # a usage error, in --dry-run too
    indices = tuple(range(plan.count)) if run.shard_index is None else (run.shard_index,)
    prov = provenance(run.spec, run.seed, tensors)
    for i in indices:
        if run.output is None:
            check_items("safetensors", write_items([tensors[j] for j in plan.groups[i]], None))
        else:
            chosen, meta, path = shard_file(tensors, prov, plan, i, run.output)
            check_write(chosen, meta, path, "safetensors", force=run.force, new_folder=True)
    job = ShardedJob(run, plan, size, indices, ())
    if run.output is not None:
        stale = shard_folder.leftovers(run.output, job.names(), force=run.force)
        job = ShardedJob(run, plan, size, indices, tuple(stale))
    return job


def generate_sharded(run: ShardedRun, progress: ProgressFactory) -> ShardedResult:
    """Plan and check the shards (`prepare_sharded`), then write them here (with ``progress``)
    or on a Dask cluster, the index, and remove what an earlier plan left (``--force``)."""
    job = prepare_sharded(run)
    if run.output is None:
        raise SpecError("missing -o/--output (or use --dry-run)")
    plan, tensors = job.plan, run.tensors
    if run.dask_address is not None:
        # dask_run creates the folder once the scheduler has answered: a scheduler that is
        # not there leaves nothing behind.
        written = dask_run(
            run.dask_address, run.spec_path.read_text(encoding="utf-8-sig"), str(run.spec_path),
            run.seed, None if job.size is None else job.size.bytes, run.num_shards,
            run.output.resolve(), force=run.force, workers=run.workers, timeout=run.dask_timeout,
        )
        shard_folder.remove(job.remove)
        return ShardedResult(written, plan.count)
    run.output.mkdir(parents=True, exist_ok=True)
    prov = provenance(run.spec, run.seed, tensors)
    chosen = [tensors[j] for i in job.indices for j in plan.groups[i]]
    written = []
    with progress(len(chosen), sum(t.nbytes for t in chosen)) as advance:
        for i in job.indices:
            shard_tensors, meta, path = shard_file(tensors, prov, plan, i, run.output)
            write_file(
                shard_tensors, meta, path, "safetensors", force=run.force, workers=run.workers,
                on_chunk=advance, fsync=run.fsync,
            )
            written.append(str(path))
    write_index(plan, tensors, run.output)
    shard_folder.remove(job.remove)
    return ShardedResult(written, plan.count)


def _resolved_plan(
    spec_text: str, spec_name: str, seed: int, max_bytes: int | None, shards: int | None
) -> tuple[Spec, list[ResolvedTensor], ShardPlan]:
    """The spec, its tensors and the plan, derived from the spec text alone (on any machine)."""
    spec = parse_spec(spec_text, path=Path(spec_name))
    tensors = resolve(spec, seed)
    return spec, tensors, make_plan([t.nbytes for t in tensors], max_bytes, shards)


def dask_run(
    address: str,
    spec_text: str,
    spec_name: str,
    seed: int,
    max_bytes: int | None,
    shards: int | None,
    out_dir: Path,
    *,
    force: bool,
    workers: int,
    timeout: float | None = None,
) -> list[str]:
    """Run every shard as a task on a Dask cluster writing to ``out_dir`` (shared storage);
    ``out_dir`` is created once the scheduler has answered (within ``timeout`` seconds)."""
    spec, tensors, plan = _resolved_plan(spec_text, spec_name, seed, max_bytes, shards)
    tasks = [
        (
            _dask_task,
            (spec_text, spec_name, seed, max_bytes, shards, i, str(out_dir), force, workers),
            f"varscale-shard-{i}-{spec.sha256[:12]}",
        )
        for i in range(plan.count)
    ]
    paths = run_tasks(
        address, timeout, tasks, lambda: out_dir.mkdir(parents=True, exist_ok=True)
    )
    write_index(plan, tensors, out_dir)
    return [str(p) for p in paths]


def _dask_task(
    spec_text: str, spec_name: str, seed: int, max_bytes: int | None, shards: int | None,
    index: int, out_dir: str, force: bool, workers: int,
) -> str:
    """One shard on a Dask worker: re-derive the plan from the spec, write the shard."""
    spec, tensors, plan = _resolved_plan(spec_text, spec_name, seed, max_bytes, shards)
    prov = provenance(spec, seed, tensors)
    chosen, meta, path = shard_file(tensors, prov, plan, index, Path(out_dir))
    write_file(chosen, meta, path, "safetensors", force=force, workers=workers)
    return str(path)
