"""A validated spec resolved for sampling: fans, the exact distribution and a sampler per tensor.

This is the only glue between the pure core (fans, initializers, sampling) and the engine;
the seed is settled here too, once for every command that regenerates values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from ..core.distributions import Distribution
from ..core.dtypes import numpy_dtype
from ..core.stream import ChunkJob, TensorSampler, region_jobs
from ..errors import SpecError
from ..provenance import JSONValue, TensorRecord
from ..spec import Spec, TensorPlan
from .chunks import CHUNK_ELEMS


def resolve_seed(spec: Spec, seed: int | None, spec_path: Path) -> int:
    """The seed to draw with: ``seed`` (a command-line override) or the spec's own."""
    seed = seed if seed is not None else spec.seed
    if seed is None:
        raise SpecError(f"{spec_path}: no seed; set `seed:` in the spec or pass --seed")
    return seed


@dataclass(frozen=True)
class ResolvedTensor:
    """A spec tensor with everything derived: fans, the exact distribution, its sampler."""

    plan: TensorPlan
    fan_in: int
    fan_out: int
    target_std: float
    distribution: Distribution
    sampler: TensorSampler

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def count(self) -> int:
        return math.prod(self.plan.shape)

    @property
    def nbytes(self) -> int:
        return self.count * numpy_dtype(self.plan.dtype).itemsize

    def record(self) -> TensorRecord:
        """The per-tensor provenance record stored in every output."""
        p = self.plan
        # A config's values are JSON scalars or lists of ints (list is invariant, hence the cast).
        initializer = cast(dict[str, JSONValue], dict(p.initializer.to_spec()))
        return TensorRecord(
            initializer=initializer, layout=p.layout,
            in_axis=p.in_axis, out_axis=p.out_axis, batch_axis=p.batch_axis,
            stream=p.stream, full_shape=p.full_shape, offset=p.offset, shape=p.shape, dtype=p.dtype,
            fan_in=self.fan_in, fan_out=self.fan_out, target_std=self.target_std,
            distribution=self.distribution,
        )


def resolve(spec: Spec, seed: int) -> list[ResolvedTensor]:
    """Fans, distribution and sampler for every tensor, in spec order."""
    out = []
    for p in spec.tensors:
        fan_in, fan_out = p.initializer.fans(
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
                sampler=TensorSampler(dist, p.dtype, seed, p.stream),
            )
        )
    return out


def chunk_jobs(t: ResolvedTensor, chunk_elems: int = CHUNK_ELEMS) -> Iterator[ChunkJob]:
    """A resolved tensor's jobs (its partition region of its stream's full tensor)."""
    p = t.plan
    return region_jobs(t.sampler, p.full_shape, p.offset, p.shape, chunk_elems)
