"""The sampler: any flat element range of a tensor, and regions of it split into chunk jobs.

The guarantee (docs/determinism.md has the long form): element ``i`` of a tensor is a pure
function of (seed, stream name, distribution parameters, dtype, i). It does not depend on chunk
sizes, worker count, call order, partitioning, platform or library versions, because

* bits come from Philox4x64-10 (`philox`) keyed by the first 16 bytes of a SHA-256 of (seed,
  stream name), and element ``i`` reads a fixed slice of that counter stream: 32 bits at bit
  offset ``32 i`` for 32-bit-and-smaller dtypes, 64 bits at ``64 i`` for float64;
* the bits-to-value transforms (`transforms`) are bit-stable IEEE-754 arithmetic;
* every per-tensor constant is derived from decimal literals (`coefficients`) by correctly
  rounded operations.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..distributions import Distribution
from ..dtypes import SAMPLED, numpy_dtype
from ..rounding import SATURATING, below, round_to
from .fused import fused_fill
from .native import compiled_kernels
from .philox import raw_bits32, raw_words, stream_key
from .transforms import Scratch, transform_f32, transform_f64

#: Elements transformed per inner block: 64 Ki float32 = 256 KiB of scratch per buffer, so the
#: dozen scratch buffers of a block stay in L2; whole-array passes were ~45 % slower here.
BLOCK = 1 << 16


@dataclass(frozen=True)
class TensorSampler:
    """Computes any flat element range of one full tensor drawn from ``dist``.

    Attributes:
        dist: the exact law of every element.
        dtype: canonical dtype name (one of `core.dtypes.SAMPLED`).
        seed: the seed.
        stream: the stream name (the tensor name in a spec).
    """

    dist: Distribution
    dtype: str
    seed: int
    stream: str = ""
    _key: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.dtype not in SAMPLED:
            raise ValueError(f"dtype {self.dtype!r} is not one of {', '.join(SAMPLED)}")
        object.__setattr__(self, "_key", stream_key(self.seed, self.stream))

    @property
    def wide(self) -> bool:
        """float64 tensors are computed in float64 from 64 bits per element."""
        return self.dtype == "float64"

    def fill(self, start: int, out: np.ndarray, scratch: Scratch | None = None) -> np.ndarray:
        """Fill ``out`` (1-D, this sampler's dtype) with elements ``start .. start + len(out)``.

        ``start`` is any integer (numpy's included).
        """
        start = operator.index(start)
        n = out.shape[0]
        if self.dist.kind == "constant":
            # Rounded by varscale's own one-step rounding (saturated for the float8 types), so
            # the library cast that follows is exact: ml_dtypes 0.5 and 0.7 round float64 ->
            # bfloat16 differently (twice, once).
            limit = SATURATING.get(self.dtype)
            value = self.dist.loc if limit is None else min(max(self.dist.loc, -limit), limit)
            out.fill(round_to(value, self.dtype))
            return out
        kernels = None if self.wide else compiled_kernels()
        if kernels is not None and fused_fill(kernels, self.dist, self.dtype, self._key, start, out):
            self._clamp(out)  # the whole range in one GIL-free C call
            return out
        scratch = scratch or Scratch(min(BLOCK, max(n, 1)))
        for lo in range(0, n, scratch.n):
            hi = min(n, lo + scratch.n)
            self._block(start + lo, out[lo:hi], scratch.views(hi - lo))
        return out

    def _block(self, start: int, out: np.ndarray, s: Scratch) -> None:
        n = out.shape[0]
        if self.wide:
            transform_f64(self.dist, raw_words(self._key, start, n, s.philox), s, out)
        else:
            bits = raw_bits32(self._key, start, n, s.philox)
            dst = out if out.dtype == np.float32 else s.res
            transform_f32(self.dist, bits, s, dst)
            limit = SATURATING.get(self.dtype)
            if limit is not None:  # float8: saturate, never NaN or inf (rounding.SATURATING)
                np.clip(dst, np.float32(-limit), np.float32(limit), out=dst)
            if dst is not out:
                np.copyto(out, dst, casting="unsafe")  # round to nearest even: exact IEEE
        self._clamp(out)

    def _clamp(self, out: np.ndarray) -> None:
        if self.dist.kind == "uniform" and self.dist.loc != 0.0:
            # loc + v * half can round up to maxval itself (ties to even); the documented
            # interval is [minval, maxval), so clamp to the largest value of the stored dtype
            # below loc + limit (a clamp in float32 could round up again when cast to
            # bfloat16). `below` computes it exactly, whichever way the dtype rounds that
            # limit; the cast of the result is then exact in every library version.
            top = below(self.dist.loc + self.dist.scale, self.dtype)
            np.minimum(out, np.array(top, dtype=out.dtype), out=out)


def region_runs(
    full_shape: Sequence[int], offset: Sequence[int], shape: Sequence[int]
) -> Iterator[tuple[int, int]]:
    """The region ``full[offset : offset + shape]`` as (flat start, length) runs in C order.

    Trailing axes the region spans completely merge with the first partial axis into one
    contiguous run of the full tensor's flat index space. Shapes and offsets may hold any
    integers (numpy's included); the arithmetic is done on Python ints, which never overflow.
    """
    full_shape = tuple(operator.index(d) for d in full_shape)
    offset = tuple(operator.index(o) for o in offset)
    shape = tuple(operator.index(d) for d in shape)
    total = math.prod(shape)
    if total == 0:
        return
    k = len(shape)
    while k > 0 and shape[k - 1] == full_shape[k - 1] and offset[k - 1] == 0:
        k -= 1
    if k == 0:
        yield 0, total
        return
    run = math.prod(shape[k - 1 :])
    strides = [math.prod(full_shape[i + 1 :]) for i in range(len(full_shape))]
    outer = shape[: k - 1]
    for r in range(total // run):
        idx = np.unravel_index(r, outer) if outer else ()
        base = sum((offset[i] + int(idx[i])) * strides[i] for i in range(len(outer)))
        yield base + offset[k - 1] * strides[k - 1], run


@dataclass(frozen=True)
class ChunkJob:
    """One output chunk: the pieces (flat start in the full tensor, length) it is made of."""

    sampler: TensorSampler
    pieces: tuple[tuple[int, int], ...]
    count: int

    def fill(self, out: np.ndarray, scratch: Scratch) -> np.ndarray:
        """Sample the pieces, one after the other, into ``out[:count]``; return that view."""
        pos = 0
        for start, length in self.pieces:
            self.sampler.fill(start, out[pos : pos + length], scratch)
            pos += length
        return out[: self.count]


def region_jobs(
    sampler: TensorSampler,
    full_shape: Sequence[int],
    offset: Sequence[int],
    shape: Sequence[int],
    chunk_elems: int = 1 << 20,
) -> Iterator[ChunkJob]:
    """Split the region ``full[offset : offset + shape]`` into jobs of at most
    ``chunk_elems`` elements, in C order."""
    pieces: list[tuple[int, int]] = []
    filled = 0
    for start, length in region_runs(full_shape, offset, shape):
        pos = 0
        while pos < length:
            take = min(length - pos, chunk_elems - filled)
            pieces.append((start + pos, take))
            filled += take
            pos += take
            if filled == chunk_elems:
                yield ChunkJob(sampler, tuple(pieces), filled)
                pieces, filled = [], 0
    if filled:
        yield ChunkJob(sampler, tuple(pieces), filled)


def iter_region(
    sampler: TensorSampler,
    full_shape: Sequence[int],
    offset: Sequence[int],
    shape: Sequence[int],
    chunk_elems: int = 1 << 20,
) -> Iterator[np.ndarray]:
    """Yield the region ``full[offset : offset + shape]`` in C order, in flat chunks.

    Each yielded array is a reused buffer of at most ``chunk_elems`` elements: consume it
    before advancing.
    """
    total = math.prod(shape)
    if total == 0:
        return
    out = np.empty(min(total, chunk_elems), dtype=numpy_dtype(sampler.dtype))
    scratch = Scratch(min(BLOCK, out.shape[0]))
    for job in region_jobs(sampler, full_shape, offset, shape, out.shape[0]):
        yield job.fill(out, scratch)


def sample(
    sampler: TensorSampler,
    full_shape: Sequence[int],
    offset: Sequence[int] | None = None,
    shape: Sequence[int] | None = None,
) -> np.ndarray:
    """The whole region as one array (library convenience; the CLI streams instead)."""
    shape = tuple(full_shape if shape is None else shape)
    offset = tuple(0 for _ in shape) if offset is None else tuple(offset)
    out = np.empty(math.prod(shape), dtype=numpy_dtype(sampler.dtype))
    pos = 0
    for chunk in iter_region(sampler, full_shape, offset, shape):
        out[pos : pos + chunk.shape[0]] = chunk
        pos += chunk.shape[0]
    return out.reshape(shape)
