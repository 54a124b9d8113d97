"""One streaming pass over a tensor: moments, extremes, special values and a subsample.

The moments are merged chunk by chunk (Pebay 2008), so a tensor of any size is read once with
one chunk in memory; the stratified subsample feeds the KS test.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ..core.dtypes import is_float
from ..core.stream import compiled_kernels
from ..core.stream.native import Kernels

__all__ = ["KS_MAX", "SUBSAMPLE_SEED", "Summary", "pick", "sample_values", "subsample_positions", "summarize"]

#: KS subsample size cap: sorting and evaluating the CDF at 1e5 points costs ~2.5 ms (numpy's
#: float32 sort, the native CDF); at this size the test already detects a KS distance of 0.0087 at the reference level.
KS_MAX = 100_000

#: Seed of the stratified subsample's offsets ("varscale" in ASCII): fixed, so a report is a
#: deterministic function of the file.
SUBSAMPLE_SEED = 0x7661727363616C65


@dataclass
class Summary:
    """Moments of the finite values and counts, accumulated chunk by chunk.

    ``m2``, ``m3``, ``m4`` are sums of powers of deviations from ``mean`` (merged across
    chunks with Chan's / Pebay's pairwise formulas, each chunk summed in float64), so
    accuracy does not degrade with the number of elements. ``below``/``above`` count finite
    values outside [lo, hi]. ``sample`` is the deterministic stratified subsample
    (`sample_values`: float32 or float64).
    """

    count: int = 0
    n: int = 0
    mean: float = 0.0
    m2: float = 0.0
    m3: float = 0.0
    m4: float = 0.0
    min: float = math.inf
    max: float = -math.inf
    zeros: int = 0
    nans: int = 0
    infs: int = 0
    below: int = 0
    above: int = 0
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def std(self) -> float:
        """Population std (ddof 0) of the finite values; NaN if there are none."""
        return math.sqrt(self.m2 / self.n) if self.n else math.nan

    @property
    def kurtosis(self) -> float:
        """Sample kurtosis m4 / m2^2 (3 for a normal); NaN if undefined."""
        return self.n * self.m4 / self.m2**2 if self.n and self.m2 > 0 else math.nan

    def merge(self, n: int, mean: float, m2: float, m3: float, m4: float) -> None:
        """Fold in the moments of ``n`` more values (Pebay 2008, eqs. 2.1 and 3.1)."""
        if n == 0:
            return
        na, nb = float(self.n), float(n)
        if self.n == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = n, mean, m2, m3, m4
            return
        tot = na + nb
        d = mean - self.mean
        self.m4 += (
            m4
            + d**4 * na * nb * (na * na - na * nb + nb * nb) / tot**3
            + 6.0 * d * d * (na * na * m2 + nb * nb * self.m2) / tot**2
            + 4.0 * d * (na * m3 - nb * self.m3) / tot
        )
        self.m3 += m3 + d**3 * na * nb * (na - nb) / tot**2 + 3.0 * d * (na * m2 - nb * self.m2) / tot
        self.m2 += m2 + d * d * na * nb / tot
        self.mean += d * nb / tot
        self.n += n

    def combine(self, other: Summary) -> None:
        """Fold in the counts and moments of the values that follow (``other.sample`` aside):
        exactly what `add` of the same chunks would have given."""
        self.count += other.count
        self.nans += other.nans
        self.infs += other.infs
        self.zeros += other.zeros
        self.below += other.below
        self.above += other.above
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.merge(other.n, other.mean, other.m2, other.m3, other.m4)

    def add(self, raw: np.ndarray, lo: float, hi: float, kernels: Kernels | None) -> None:
        """Fold in one 1-D chunk (its finite values outside [lo, hi] count as below / above)."""
        if raw.size == 0:
            return
        if kernels is not None and raw.dtype.isnative and is_float(raw.dtype) and raw.dtype.itemsize <= 4:
            # float32, float16, bfloat16, float8: exact in float32, one fused C pass pair.
            r = kernels.moments_f32(np.ascontiguousarray(raw, dtype=np.float32), lo, hi)
            n_fin = int(r[0])
            self.count += raw.size
            self.nans += int(r[8])
            self.infs += int(r[9])
            if n_fin:
                self.zeros += int(r[7])
                self.below += int(r[10])
                self.above += int(r[11])
                self.min = min(self.min, float(r[5]))
                self.max = max(self.max, float(r[6]))
                self.merge(n_fin, float(r[1]), float(r[2]), float(r[3]), float(r[4]))
            return
        with np.errstate(all="ignore"):
            x = raw.astype(np.float64)
        total = float(x.sum())
        if math.isfinite(total):  # a finite sum means every value is finite: skip the mask
            fin = x
        else:
            mask = np.isfinite(x)
            fin = x[mask]
            nan = int(np.count_nonzero(np.isnan(x)))
            self.nans += nan
            self.infs += x.size - fin.size - nan
            total = float(fin.sum())
        self.count += x.size
        if fin.size == 0:
            return
        self.zeros += int(np.count_nonzero(fin == 0.0))
        if lo > -math.inf:
            self.below += int(np.count_nonzero(fin < lo))
        if hi < math.inf:
            self.above += int(np.count_nonzero(fin > hi))
        self.min = min(self.min, float(fin.min()))
        self.max = max(self.max, float(fin.max()))
        mean = total / fin.size
        d = fin - mean
        d2 = d * d
        self.merge(fin.size, mean, float(d2.sum()), float((d2 * d).sum()), float((d2 * d2).sum()))


#: Distinct tensor sizes whose positions are kept: a model repeats a handful of shapes per
#: layer, and drawing 100k positions costs ~3 ms, ~0.4 s per default check of a 147-tensor
#: Llama file before this cache. 16 arrays of at most 100k int64 are 12.8 MB at most.
_POSITIONS_CACHED = 16


@functools.lru_cache(maxsize=_POSITIONS_CACHED)
def subsample_positions(count: int, size: int) -> np.ndarray:
    """One position per stratum of k = ceil(count / size) consecutive elements, at a
    pseudo-random offset: every element equally likely, no aliasing with row lengths (a plain
    every-k-th sample of a (rows, k) tensor would see one column only). Read-only: the array
    is shared by every caller with the same (count, size)."""
    if size <= 0 or count <= 0:
        pos = np.empty(0, dtype=np.int64)
    else:
        k = -(-count // size)
        m = -(-count // k)
        rng = np.random.Generator(np.random.PCG64(SUBSAMPLE_SEED))
        pos = np.arange(m, dtype=np.int64) * k + rng.integers(0, k, size=m, dtype=np.int64)
        pos = pos[pos < count]
    pos.flags.writeable = False
    return pos


def sample_values(picked: np.ndarray) -> np.ndarray:
    """Subsample values as the KS test takes them: float32 and float64 as they are (the
    native sort works on float32), every other real dtype widened to float64 (exactly for the
    16- and 8-bit floats)."""
    return picked if picked.dtype in (np.float32, np.float64) else picked.astype(np.float64)


def pick(raw: np.ndarray, positions: np.ndarray, first: int, kernels: Kernels | None) -> np.ndarray:
    """``raw[positions - first]``: the subsample's elements of a chunk holding elements
    ``first ..`` (``positions`` inside it), by the C gather for 4-byte dtypes."""
    if kernels is not None and raw.dtype.itemsize == 4 and raw.flags.c_contiguous and raw.ndim == 1:
        return kernels.gather32(raw, positions, first)
    return raw[positions - first]


class Subsample:
    """The stratified subsample (`subsample_positions`) picked from chunks as they stream past,
    widened to ``dtype`` exactly (None: `sample_values`)."""

    def __init__(self, count: int, size: int, dtype: type[np.generic] | None = None) -> None:
        self.positions = subsample_positions(count, size)
        self._dtype = dtype
        self._kernels = compiled_kernels()
        self._picked: list[np.ndarray] = []
        self._seen = 0

    def take(self, raw: np.ndarray) -> None:
        """Pick the subsample's elements from ``raw``, the next chunk (1-D, in C order)."""
        start, self._seen = self._seen, self._seen + raw.size
        if self.positions.size:
            i0, i1 = np.searchsorted(self.positions, (start, self._seen))
            if i1 > i0:
                picked = pick(raw, self.positions[i0:i1], start, self._kernels)
                self._picked.append(
                    sample_values(picked) if self._dtype is None else picked.astype(self._dtype)
                )

    def values(self) -> np.ndarray:
        return np.concatenate(self._picked) if self._picked else np.empty(0, self._dtype)


def summarize(
    chunks: Iterable[np.ndarray],
    *,
    count: int | None = None,
    lo: float = -math.inf,
    hi: float = math.inf,
    sample_size: int = KS_MAX,
) -> Summary:
    """One pass over a tensor's chunks: moments, extremes, special values, bound counts.

    Memory is one chunk in float64 plus the subsample (at most ``sample_size`` values).

    Args:
        chunks: 1-D arrays in C order (any real dtype; values are widened to float64, exactly).
        count: total number of elements, needed to draw the subsample (None: no subsample).
        lo, hi: finite values outside [lo, hi] are counted in ``below`` / ``above``.
        sample_size: subsample size cap.
    """
    s = Summary()
    sample = Subsample(count or 0, sample_size)
    kernels = compiled_kernels()
    for chunk in chunks:
        raw = np.asarray(chunk).reshape(-1)
        sample.take(raw)
        s.add(raw, lo, hi, kernels)
    s.sample = sample.values()
    return s
