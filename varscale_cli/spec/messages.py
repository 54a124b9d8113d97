"""Message helpers shared by the four passes: every error is one line that starts with the file
name (and ``line:col`` where the parser knows it), quotes values in their JSON spelling and
names the place in the document as a path such as ``tensors.dense/kernel.shape[1]``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..echo import closest_match, show
from ..errors import SpecError

if TYPE_CHECKING:
    import yaml

__all__ = ["Ctx", "closest", "one_line", "render_path", "show", "show_limit", "yaml_pos"]


def one_line(text: str) -> str:
    """``text`` on one line. PyYAML's and deserialize's messages may span lines; the values we
    quote are repr()-escaped and hold no raw line breaks, so joining loses nothing."""
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


def show_limit(n: int) -> str:
    """A limit with the power of two it comes from, e.g. ``1099511627776 (2**40)``."""
    for k in (40, 48, 63):
        if n == 2**k:
            return f"{n} (2**{k})"
        if n == 2**k - 1:
            return f"{n} (2**{k} - 1)"
    return str(n)


def render_path(parts: Iterable[Any]) -> str:
    """``tensors.dense/kernel.shape[1]``; keys that would be ambiguous are quoted."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p and p.isprintable() and not re.search(r"[\s.\[\]'\"]", p):
            out += f".{p}" if out else p
        else:
            out += f"[{show(p)}]"
    return out


def closest(word: Any, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``choices``, or ``""`` if none is close."""
    close = closest_match(word, list(choices))
    return f" (did you mean {close!r}?)" if close else ""


class Ctx:
    """Per-file error formatting: every message starts with the file name."""

    def __init__(self, path: Path | None) -> None:
        self.label = str(path) if path is not None else "<spec>"

    def error(
        self,
        message: str,
        where: str = "",
        pos: tuple[int, int] | None = None,
        cls: type[SpecError] = SpecError,
    ) -> SpecError:
        """The exception to raise: ``file[:line:col]: [where: ]message`` on one line."""
        loc = self.label
        if pos is not None:
            loc += f":{pos[0]}:{pos[1]}"
        prefix = f"{loc}: {where}: " if where else f"{loc}: "
        return cls(prefix + one_line(message))


def yaml_pos(mark: yaml.Mark | None) -> tuple[int, int] | None:
    """1-based (line, column) of a PyYAML mark (which counts from 0)."""
    return None if mark is None else (mark.line + 1, mark.column + 1)
