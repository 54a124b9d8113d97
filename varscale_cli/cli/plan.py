"""What ``varscale generate`` reports beyond the tensor table: the shard plan (text) and the
``--json`` document (schema in docs/json/generate.schema.json, described in docs/json.md)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.sizes import DECIMAL, human_bytes

if TYPE_CHECKING:
    from ..engine.resolve import ResolvedTensor
    from ..engine.shards import ShardedJob
    from ..stats import FileReport

#: ``schema_version`` of the ``generate --json`` document; bumped on any incompatible change.
GENERATE_SCHEMA_VERSION = 1


def _bytes(n: int) -> str:
    return f"{n:,} bytes ({human_bytes(n, DECIMAL)})"


def shard_plan_lines(job: ShardedJob, tensors: Sequence[ResolvedTensor]) -> list[str]:
    """The plan as lines of at most ~100 columns: the rule, then per shard its file, tensor
    count, bytes and the first and last tensor (shards are contiguous in spec order, so the
    two names say exactly which tensors it holds; ``--json`` lists every one)."""
    plan, run = job.plan, job.run
    total = sum(t.nbytes for t in tensors)
    if job.size is not None:
        rule = f"--max-shard-size {job.size.meaning}: greedy in spec order"
    else:
        rule = f"--num-shards {run.num_shards}: contiguous, the largest shard as small as possible"
    lines = [f"shard plan: {plan.count} shard(s), {_bytes(total)} of tensors", f"  {rule}"]
    width = max(len(plan.filename(i)) for i in range(plan.count))
    for i, group in enumerate(plan.groups):
        size = sum(tensors[j].nbytes for j in group)
        mark = "*" if len(job.indices) < plan.count and i in job.indices else " "
        lines.append(
            f"{mark} {i:>5}  {plan.filename(i):<{width}}  {len(group):>5} tensors  {_bytes(size)}"
        )
        first, last = tensors[group[0]].name, tensors[group[-1]].name
        lines.append(f"         {first}" + (f" .. {last}" if len(group) > 1 else ""))
    if len(job.indices) < plan.count:
        lines.append(
            f"this run (--shard-index {job.indices[0]}, marked *) writes "
            f"{plan.filename(job.indices[0])}" + (" and the index" if plan.count > 1 else "")
        )
    for path in job.remove:
        lines.append(f"--force removes, once the new shards are written: {path}")
    return lines


def _tensor_doc(t: ResolvedTensor, file: str | None) -> dict[str, object]:
    return {
        "name": t.name,
        "shape": list(t.plan.shape),
        "dtype": t.plan.dtype,
        "initializer": t.plan.initializer.to_spec(),
        "layout": t.plan.layout,
        "fan_in": t.fan_in,
        "fan_out": t.fan_out,
        "target_std": t.target_std,
        "std": t.distribution.std,
        "distribution": t.distribution.to_json(),
        "bytes": t.nbytes,
        "file": file,
    }


def generate_document(
    *,
    tensors: Sequence[ResolvedTensor],
    seed: int,
    dry_run: bool,
    output: Path | None,
    fmt: str | None,
    job: ShardedJob | None,
    written: Sequence[str],
    report: FileReport | None,
) -> dict[str, object]:
    """The one ``generate --json`` document: what is planned (``dry_run``) or was written,
    per tensor, the shard plan, and the statistical check's verdict (null when not run)."""
    files: dict[str, str] = {}
    shards: dict[str, object] | None = None
    if job is not None:
        plan = job.plan
        for i, group in enumerate(plan.groups):
            for j in group:
                files[tensors[j].name] = plan.filename(i)
        shards = {
            "count": plan.count,
            "max_shard_size": None if job.size is None else {
                "text": job.size.text, "bytes": job.size.bytes, "unit": job.size.unit,
                "meaning": job.size.meaning,
            },
            "num_shards": job.run.num_shards,
            "this_run": list(job.indices),
            "index_file": "model.safetensors.index.json" if plan.count > 1 else None,
            "files": [
                {
                    "index": i,
                    "file": plan.filename(i),
                    "bytes": sum(tensors[j].nbytes for j in group),
                    "tensors": [tensors[j].name for j in group],
                }
                for i, group in enumerate(plan.groups)
            ],
            "remove": [str(p) for p in job.remove],
        }
    elif output is not None:
        files = {t.name: output.name for t in tensors}
    check: dict[str, object] | None = None
    if report is not None:
        by_name = {r.name: r for r in report.tensors}
        check = {
            "ok": report.ok,
            "counts": report.counts(),
            "alpha": report.alpha,
            "family_size": report.family_size,
            "missing": list(report.missing),
        }
    docs = []
    for t in tensors:
        doc = _tensor_doc(t, files.get(t.name))
        r = by_name.get(t.name) if report is not None else None
        doc["check"] = None if r is None else {
            "verdict": r.verdict, "ok": r.ok, "mean": r.to_json()["mean"], "std": r.to_json()["std"],
        }
        docs.append(doc)
    return {
        "schema_version": GENERATE_SCHEMA_VERSION,
        "command": "generate",
        "dry_run": dry_run,
        "seed": seed,
        "output": None if output is None else str(output),
        "format": "safetensors" if job is not None else fmt,
        "tensor_count": len(tensors),
        "parameters": sum(t.count for t in tensors),
        "bytes": sum(t.nbytes for t in tensors),
        "written": list(written),
        "shards": shards,
        "tensors": docs,
        "check": check,
    }
