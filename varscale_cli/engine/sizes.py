"""Byte sizes in and out: ``--max-shard-size 5GB`` / ``5GiB`` parsed, and sizes printed for people.

Decimal units (kB = 1000 B) follow huggingface_hub, whose shard sizes users pass on; binary
units (KiB = 1024 B) are what transformers also accepts, and what ``df`` and the kernel's
free-space figures are read in. rich's ``rich.filesize.decimal`` is close but spells small
sizes "512 bytes" and goes on to PB, so one formatter here keeps both texts as they were.
"""

from __future__ import annotations

import math
import re
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


#: Unit prefixes of ``--max-shard-size``: decimal (huggingface_hub's ``parse_size_to_int``,
#: constants ``SIZE_UNITS``: KB, MB, GB, TB) and binary (transformers' ``convert_file_size_to_int``
#: in ``utils/hub.py``: KiB, MiB, GiB, and TiB beside them).
_PREFIXES = {"K": 1, "M": 2, "G": 3, "T": 4}

#: A number (integer or decimal fraction) and an optional unit: ``5GB``, ``1.5 GiB``, ``4096``.
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*")


@dataclass(frozen=True)
class Size:
    """A parsed ``--max-shard-size``: the text as given, its bytes and what the unit meant."""

    text: str
    bytes: int
    unit: str  # "B", or the unit as normalised ("GB", "GiB", ...)

    @property
    def meaning(self) -> str:
        """``5GiB = 5,368,709,120 bytes (binary: 1 GiB = 1024^3 bytes)``."""
        if self.unit == "B":
            return f"{self.text} = {self.bytes:,} bytes"
        power = _PREFIXES[self.unit[0]]
        kind, base = ("binary", 1024) if "i" in self.unit else ("decimal", 1000)
        return f"{self.text} = {self.bytes:,} bytes ({kind}: 1 {self.unit} = {base}^{power} bytes)"


def _size_error(text: str, why: str) -> SpecError:
    return SpecError(
        f"--max-shard-size {text!r}: {why}; use a positive integer of bytes or a number with a "
        "decimal unit KB, MB, GB, TB (5GB = 5,000,000,000 bytes) or a binary one KiB, MiB, GiB, "
        "TiB (5GiB = 5,368,709,120 bytes)"
    )


def parse_size(text: str) -> Size:
    """``--max-shard-size`` as Hugging Face spells it, to an exact byte count.

    * a plain integer (or ``...B``) is bytes;
    * ``KB``/``MB``/``GB``/``TB`` are decimal (1 GB = 10^9 bytes), as huggingface_hub reads them,
      with the prefix in any case (``5gB`` is 5 GB);
    * ``KiB``/``MiB``/``GiB``/``TiB`` are binary (1 GiB = 2^30 bytes), in any case as
      transformers reads them (``5gib``);
    * a decimal unit ending in a lower-case ``b`` (``5Gb``, ``500mb``) is refused: transformers
      reads it as bits (a gigabit is 125,000,000 bytes) and huggingface_hub as bytes, so either
      reading would surprise someone;
    * a bare prefix (``500M``) is refused: neither library accepts it, and M could mean MB or MiB.

    Fractions are exact (``1.5GB`` is 1,500,000,000 bytes; parsed as a decimal fraction, not a
    float) and a fractional byte count rounds down, as both libraries' ``int(...)`` does.

    >>> parse_size("5GiB").meaning
    '5GiB = 5,368,709,120 bytes (binary: 1 GiB = 1024^3 bytes)'
    """
    m = _SIZE.fullmatch(text)
    if m is None:
        raise _size_error(text, "not a number with a unit")
    number, unit = m.groups()
    from fractions import Fraction  # here, not at the top: it costs ~5 ms of every start-up

    value = Fraction(number)
    if unit.upper() == "B" or not unit:
        if unit == "b":
            raise _size_error(text, "unknown unit 'b' (bytes are B)")
        canonical, multiplier = "B", 1
    elif len(unit) in (2, 3) and unit[0].upper() in _PREFIXES and unit[-1] in "Bb" and (
        len(unit) == 2 or unit[1] in "iI"
    ):
        power = _PREFIXES[unit[0].upper()]
        if len(unit) == 3:
            canonical, multiplier = f"{unit[0].upper()}iB", 1024**power
        else:
            if unit[-1] == "b":
                raise _size_error(
                    text, f"'{unit}' is bits in transformers and bytes in huggingface_hub; "
                    f"write {number}{unit[0].upper()}B"
                )
            canonical, multiplier = f"{unit[0].upper()}B", 1000**power
    elif unit.upper() in _PREFIXES:
        raise _size_error(text, f"'{unit}' alone is not a unit ({unit.upper()}B or {unit.upper()}iB)")
    else:
        raise _size_error(text, f"unknown unit '{unit}'")
    nbytes = math.floor(value * multiplier)
    if nbytes <= 0:
        raise _size_error(text, "the size must be at least 1 byte")
    return Size(text.strip(), nbytes, canonical)
