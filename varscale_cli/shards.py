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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpecError
from .formats.hf import HF_INDEX_FILE as INDEX_NAME
from .formats.hf import HF_SINGLE_FILE as SINGLE_NAME


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


def write_shard(
    tensors: Sequence[Any],
    prov: dict[str, Any],
    plan: ShardPlan,
    shard: int,
    out_dir: Path,
    *,
    force: bool,
    workers: int,
    on_chunk: Callable[[Any, int], None] | None = None,
    fsync: bool = True,
) -> Path:
    """Write shard ``shard`` of ``plan`` atomically into ``out_dir``; return its path."""
    from . import generate as gen

    if not 0 <= shard < plan.count:
        raise SpecError(f"--shard-index {shard} is out of range: the plan has {plan.count} shards (0..{plan.count - 1})")
    chosen = [tensors[i] for i in plan.groups[shard]]
    shard_prov = dict(prov)
    shard_prov["tensors"] = {t.name: prov["tensors"][t.name] for t in chosen}
    shard_prov["shard"] = {"index": shard, "count": plan.count}
    path = out_dir / plan.filename(shard)
    gen.write_file(
        chosen, gen.file_metadata(shard_prov), path, "safetensors",
        force=force, workers=workers, on_chunk=on_chunk, fsync=fsync,
    )
    return path


def write_index(plan: ShardPlan, tensors: Sequence[Any], out_dir: Path) -> Path | None:
    """Write the index (identical from every shard run); None for a single-file plan.

    Replacing it needs no --force: its content is a pure function of the plan, so an existing
    index is either identical or belongs to a plan the user has just changed on purpose.
    """
    if plan.count == 1:
        return None
    from .atomic import atomic_output

    text = plan.index([t.name for t in tensors], [t.nbytes for t in tensors])
    path = out_dir / INDEX_NAME
    if path.exists() and path.read_text() == text:
        return path
    with atomic_output(path, force=True) as tmp:
        tmp.write_text(text)
    return path


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
) -> list[str]:
    """Run every shard as a task on a Dask cluster writing to ``out_dir`` (shared storage)."""
    try:
        from distributed import Client
    except ImportError:
        from .errors import VarscaleError

        raise VarscaleError("--dask needs dask.distributed: pip install 'varscale[dask]'") from None
    from . import generate as gen
    from .spec import parse_spec

    spec = parse_spec(spec_text, path=Path(spec_name))
    tensors = gen.resolve(spec, seed)
    plan = make_plan([t.nbytes for t in tensors], max_bytes, shards)
    with Client(address) as client:
        futures = [
            client.submit(
                _dask_task, spec_text, spec_name, seed, max_bytes, shards, i, str(out_dir),
                force, workers, pure=False, key=f"varscale-shard-{i}-{spec.sha256[:12]}",
            )
            for i in range(plan.count)
        ]
        paths = client.gather(futures)
    write_index(plan, tensors, out_dir)
    return list(paths)


def _dask_task(
    spec_text: str, spec_name: str, seed: int, max_bytes: int | None, shards: int | None,
    index: int, out_dir: str, force: bool, workers: int,
) -> str:
    """One shard on a Dask worker: re-derive the plan from the spec, write the shard."""
    from . import generate as gen
    from .spec import parse_spec

    spec = parse_spec(spec_text, path=Path(spec_name))
    tensors = gen.resolve(spec, seed)
    plan = make_plan([t.nbytes for t in tensors], max_bytes, shards)
    prov = gen.provenance(spec, seed, tensors)
    return str(write_shard(tensors, prov, plan, index, Path(out_dir), force=force, workers=workers))
