"""The random bits: Philox4x64-10 keyed by a hash of (seed, stream name), addressable by index.

numpy's ``Philox`` bit generator computes the counter-based generator of Salmon et al.,
"Parallel random numbers: as easy as 1, 2, 3" (SC 2011), whose raw stream numpy keeps stable across
releases (unlike its ``Generator`` distribution methods). Element ``i`` of a tensor reads a
fixed slice of the counter stream, so any range is computed without the rest.

``STREAM_ID`` names this bit layout and the transforms built on it; every output records it,
and the golden hashes in tests/test_sampling.py pin it.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np

STREAM_ID = "varscale-philox4x64-10-v1"

_U64 = (1 << 64) - 1


def stream_key(seed: int, stream: str) -> tuple[int, int]:
    """The Philox key of a (seed, stream name) pair: a fixed hash, never Python's ``hash``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed!r}")
    digest = hashlib.sha256(
        STREAM_ID.encode() + b"\0" + seed.to_bytes(8, "little") + stream.encode("utf-8")
    ).digest()
    return int.from_bytes(digest[0:8], "little"), int.from_bytes(digest[8:16], "little")


def raw_words(
    key: tuple[int, int], first_word: int, count: int, bg: np.random.Philox | None = None
) -> np.ndarray:
    """64-bit words ``first_word .. first_word + count`` of the key's counter stream.

    numpy's Philox with counter ``b`` yields words ``4b .. 4b + 3`` of the stream, so a range
    starts at counter ``first_word // 4`` and drops the words before it. ``bg``, a Philox to
    reuse, is repositioned by setting its state: constructing one per block cost 22 us and a
    getrandom() syscall (numpy seeds it from OS entropy even when a key is given), 3.7 us this way.
    """
    block, skip = divmod(first_word, 4)
    key_arr = np.array(key, dtype=np.uint64)
    if bg is None:
        bg = np.random.Philox(key=key_arr, counter=block)
    else:
        bg.state = {
            "bit_generator": "Philox",
            "state": {
                "counter": np.array(
                    [block & _U64, (block >> 64) & _U64, (block >> 128) & _U64, block >> 192],
                    dtype=np.uint64,
                ),
                "key": key_arr,
            },
            "buffer": np.zeros(4, dtype=np.uint64),
            "buffer_pos": 4,  # empty buffer: the next draw computes counter `block`
            "has_uint32": 0,
            "uinteger": 0,
        }
    words = bg.random_raw(count + skip)
    return words[skip:] if skip else words


def raw_bits32(
    key: tuple[int, int], start: int, count: int, bg: np.random.Philox | None = None
) -> np.ndarray:
    """32-bit values ``start .. start + count``: value ``i`` is the low (even ``i``) or high
    (odd ``i``) half of 64-bit word ``i // 2``, independent of the host's byte order."""
    first = start // 2
    words = raw_words(key, first, (start + count + 1) // 2 - first, bg)
    if sys.byteorder != "little":
        words = words.byteswap()
    halves = words.view("<u4")
    off = start - 2 * first
    return halves[off : off + count]
