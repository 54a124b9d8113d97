"""Byte sizes in and out: ``--max-shard-size 5GB`` parsed, and sizes printed for people.

Decimal units (kB = 1000 B) follow huggingface_hub, whose shard sizes users pass on; binary
units (KiB = 1024 B) are what ``df`` and the kernel's free-space figures are read in. rich's
``rich.filesize.decimal`` is close but spells small sizes "512 bytes" and goes on to PB, so one
formatter here keeps both texts as they were.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SpecError


@dataclass(frozen=True)
class ByteUnits:
    """A unit ladder: each suffix is ``base`` times the one before, starting above bytes."""

    base: int
    suffixes: tuple[str, ...]
    decimals: int


DECIMAL = ByteUnits(1000, ("kB", "MB", "GB", "TB"), 2)
BINARY = ByteUnits(1024, ("KiB", "MiB", "GiB", "TiB", "PiB", "EiB"), 1)


def human_bytes(n: float, units: ByteUnits = BINARY) -> str:
    """``n`` bytes in the largest unit below ``units.base`` (the last unit has no cap).

    >>> human_bytes(1536), human_bytes(512), human_bytes(1536, DECIMAL)
    ('1.5 KiB', '512 B', '1.54 kB')
    """
    if abs(n) < units.base:
        return f"{n:.0f} B"
    value = float(n)
    for unit in units.suffixes:
        value /= units.base
        if abs(value) < units.base or unit == units.suffixes[-1]:
            break
    return f"{value:.{units.decimals}f} {unit}"


#: The suffixes ``parse_size`` accepts, longest first so ``KB`` is not read as ``B``.
_SIZE_UNITS = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}


def parse_size(text: str) -> int:
    """``5GB`` -> 5_000_000_000: decimal units as huggingface_hub's ``parse_size_to_int``."""
    t = text.strip().upper()
    for unit, mult in _SIZE_UNITS.items():
        if t.endswith(unit):
            num = t[: -len(unit)].strip()
            try:
                value = float(num)
            except ValueError:
                break
            if value > 0 and math.isfinite(value):
                return int(value * mult)
            break
    raise SpecError(
        f"--max-shard-size {text!r} is not a size; use a positive number with TB, GB, MB, KB or B "
        "(decimal units: 5GB = 5,000,000,000 bytes)"
    )
