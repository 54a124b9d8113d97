"""The fused native stream (vsstream.c) gives the numpy reference path's bytes exactly.

Bits, transform, ``+ loc`` and the 16-bit rounding run in one C pass; each piece is compared
with its reference: the cast with numpy's float32 -> float16 and ml_dtypes' float32 -> bfloat16
on every rounding boundary both formats have plus random bit patterns, and whole ranges with
the numpy path at odd starts, tile-ragged lengths, offsets past 2^32 elements and across a
64-bit counter carry.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from paths import fill_on_path

from varscale_cli.core.distributions import Distribution
from varscale_cli.core.stream import TensorSampler, philox
from varscale_cli.core.stream.native import Kernels

KINDS = ("truncated_normal", "normal", "uniform")
DTYPES = ("float32", "bfloat16", "float16")
#: numpy's / ml_dtypes' cast, the reference for each 16-bit dtype.
REFERENCE = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16}



def _boundaries(dtype: str) -> np.ndarray:
    """Every value of the 16-bit dtype, every midpoint between neighbours (the ties), and the
    float32 just below and above each: all the places where rounding to nearest even can go
    one way or the other, both signs, subnormals, the overflow edge and infinity."""
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(REFERENCE[dtype])
    with np.errstate(invalid="ignore"):  # the NaN patterns, dropped next
        v = h.astype(np.float64)
    v = np.sort(v[np.isfinite(v)])
    mids = (v[:-1] + v[1:]) / 2  # exact in float64; 12 (f16) / 9 (bf16) significant bits fit float32
    top = v[-1] + (v[-1] - v[-2]) / 2  # the overflow threshold (ties to even -> infinity)
    pts = np.concatenate([v, mids, [top, -top]]).astype(np.float32)
    assert np.array_equal(pts.astype(np.float64)[: v.size], v)
    near = pts.view(np.uint32)
    with np.errstate(over="ignore"):
        return np.concatenate(
            [near, near + np.uint32(1), near - np.uint32(1), [0x7F800000, 0xFF800000]]
        ).astype(np.uint32).view(np.float32)


def _all_exponents() -> np.ndarray:
    """Each sign and each of the 256 exponents with mantissas at and around every rounding
    position (0 .. 23 dropped bits): ties, one below, one above, for even and odd kept bits."""
    rng = np.random.default_rng(11)
    mant = [0, 1, 2, 0x7FFFFF, 0x7FFFFE]
    for p in range(1, 24):
        half = 1 << (p - 1)
        for j in rng.integers(0, 1 << (23 - p), 6, endpoint=False).tolist() + [0, 1]:
            for d in (half - 1, half, half + 1):
                mant.append(((j << p) + d) & 0x7FFFFF)
    m = np.array(sorted(set(mant)), dtype=np.uint32)
    e = np.arange(512, dtype=np.uint32) << np.uint32(23)  # sign and exponent
    return (e[:, None] | m[None, :]).reshape(-1).view(np.float32)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_rounding_equals_the_reference_casts(kernels: Kernels, dtype: str) -> None:
    rng = np.random.default_rng(5)
    x = np.concatenate([
        _boundaries("float16"), _boundaries("bfloat16"), _all_exponents(),
        rng.integers(0, 1 << 32, 1 << 22, dtype=np.uint64).astype(np.uint32).view(np.float32),
    ])
    got = np.empty(x.size, np.uint16)
    kernels.round16(x, got, dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        want = x.astype(REFERENCE[dtype]).view(np.uint16)
    nan = np.isnan(x)
    # NaN payloads are no concern (the transforms never produce NaN): NaN must stay NaN.
    assert np.array_equal(got[~nan], want[~nan])
    assert np.isnan(got[nan].view(REFERENCE[dtype]).astype(np.float32)).all()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("scale", "loc"), [(1.0, 0.0), (3e-6, 0.0), (0.02, 0.5), (250.0, -1.0)])
def test_fused_fill_equals_the_numpy_path(
    kernels: Kernels, kind: str, dtype: str, scale: float, loc: float
) -> None:
    sampler = TensorSampler(Distribution(kind, scale, loc=loc), dtype, 2024, "fused")
    # Odd and even starts, lengths around the 2048-element tile and the 8-value Philox block.
    for start, n in ((0, 1), (1, 7), (3, 8), (7, 9), (5, 2047), (0, 2048), (13, 2049), (99, 50_001)):
        assert fill_on_path(sampler, True, start, n).tobytes() == fill_on_path(sampler, False, start, n).tobytes()


@pytest.mark.parametrize(
    "start",
    [
        (1 << 32) + 3,  # past 2^32 elements
        (1 << 40) - 5,  # across a 2^40 boundary
        8 * ((1 << 64) - 1) - 3,  # the block counter's low word carries into the next word
        (1 << 70) + 1,  # an element index past 2^64 (the counter's second word)
    ],
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_fill_far_offsets(kernels: Kernels, start: int, dtype: str) -> None:
    sampler = TensorSampler(Distribution("truncated_normal", 0.05), dtype, 7, "far")
    assert fill_on_path(sampler, True, start, 4099).tobytes() == fill_on_path(sampler, False, start, 4099).tobytes()


def test_fused_bits_are_numpy_philox(kernels: Kernels) -> None:
    """The bits themselves: a uniform with scale 2^23 returns k | 1 for k = bits >> 8, so the
    fused stream's top 24 bits of every value must be numpy Philox's."""
    key = philox.stream_key(3, "bits")
    sampler = TensorSampler(Distribution("uniform", float(1 << 23)), "float32", 3, "bits")
    start, n = 12_345, 10_001
    got = fill_on_path(sampler, True, start, n).astype(np.int64)
    bits = philox.raw_bits32(key, start, n).view(np.int32).astype(np.int64)
    assert np.array_equal(got, (bits >> 8) | 1)


#: Counters where the SIMD versions' groups of 8 blocks start, end or stop short: ordinary
#: ones, a carry out of the low word inside a group (those blocks run on the scalar code) and
#: carries into words 2 and 3.
PHILOX_COUNTERS = [0, 5, 12_345_678_901, (1 << 64) - 13, (1 << 64) - 3, (1 << 128) - 6, (1 << 192) - 2]


@pytest.mark.parametrize("path", ["scalar", "avx2", "avx512"])
@pytest.mark.parametrize("block", PHILOX_COUNTERS)
def test_every_philox_version_gives_numpy_words(kernels: Kernels, path: str, block: int) -> None:
    """Each Philox version the CPU has (the stream runs the widest) against numpy's own words,
    for lengths that leave every remainder after whole SIMD groups."""
    key = philox.stream_key(11, "philox")
    for nblocks in (1, 7, 8, 9, 16, 37):
        got = kernels.philox_words(path, key, block, nblocks)
        if got is None:
            pytest.skip(f"this CPU has no {path}")
        want = philox.raw_words(key, 4 * block, 4 * nblocks)
        assert np.array_equal(got, want), (path, block, nblocks)
