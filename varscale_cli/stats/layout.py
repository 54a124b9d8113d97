"""Tables that fit a terminal of 80-100 columns: a compact style, optional columns dropped
until every name fits on one line, and the mark for laws whose std is not the nominal one.

Used by `varscale stats` (`render.stats_table`) and the ``generate --dry-run`` plan. The rule
is that a tensor name is the one cell a reader must see whole: rather than fold every name
over five lines, a table first drops its optional columns (the least needed first), and folds names
only once nothing optional is left.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.table import Table
from rich.text import Text

__all__ = ["UNCORRECTED_MARK", "Column", "fit_table", "fold_name", "nominal_differs", "std_text"]

#: Appended to a std whose law is not variance-corrected (see `nominal_differs`).
UNCORRECTED_MARK = "*"


#: Columns a squeezable column is budgeted when deciding what fits (or its longest word, if
#: longer): rich then wraps its cells at spaces ("variance z=-80.12, ks D=0.2931" over three
#: lines), never inside a word.
SQUEEZED_WIDTH = 12
#: The narrowest a name column gets when names must fold.
MIN_NAME_WIDTH = 12
#: Between two columns: one space of padding on each side (SIMPLE_HEAD draws no borders).
GAP = 2


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment, whether it wraps freely, and when it is dropped
    (``drop`` 0: never; else columns with the highest ``drop`` go first)."""

    header: str
    justify: Literal["left", "right"] = "left"
    squeeze: bool = False
    drop: int = 0


def _longest_word(cells: Sequence[Text]) -> int:
    return max([0, *(len(w) for c in cells for w in c.plain.split())])


def fit_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[Text]],
    width: int,
    title: Text | None = None,
    caption: str | None = None,
) -> Table:
    """A table whose first column (the names) is shown whole when ``width`` allows.

    In order, until the table fits ``width``: optional columns are dropped (the highest
    ``drop`` first; squeezable columns budgeted `SQUEEZED_WIDTH` or their longest word);
    squeezable columns wrap down to their longest word, then fold inside words down to
    `SQUEEZED_WIDTH`. If the names still do not fit, they fold at their separators over what
    is left or at least a third of the line (squeezable columns folding inside words to make
    room); last, names fold narrower, down to `MIN_NAME_WIDTH`.
    """
    cells = [[r[i] for r in rows] for i in range(len(columns))]
    natural = [max([len(c.header), *(x.cell_len for x in cells[i])]) for i, c in enumerate(columns)]
    words = [max(len(c.header), _longest_word(cells[i])) for i, c in enumerate(columns)]
    widths = [
        max(min(natural[i], SQUEEZED_WIDTH), words[i]) if c.squeeze else natural[i]
        for i, c in enumerate(columns)
    ]
    keep = list(range(len(columns)))
    optional = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: columns[i].drop)
    squeezed = [i for i, c in enumerate(columns) if c.squeeze]

    def needed() -> int:
        return sum(widths[i] for i in keep) + GAP * (len(keep) - 1)

    def shrink(floor: Callable[[int], int]) -> None:
        for i in sorted((i for i in squeezed if i in keep), key=lambda i: -widths[i]):
            widths[i] -= max(0, min(needed() - width, widths[i] - floor(i)))

    while optional and needed() > width:
        keep.remove(optional.pop())
    shrink(lambda i: words[i])
    names_fit = needed() <= width
    if not names_fit:
        # Whole names are worth a long word folded in a squeezed column ("tf.contrib.layers.
        # variance_scaling_initializer"), if that is all it takes.
        words_widths = list(widths)
        shrink(lambda i: min(words[i], SQUEEZED_WIDTH))
        names_fit = needed() <= width
        if not names_fit:
            widths = words_widths
    if names_fit:
        # Room left over widens the squeezed columns back towards their natural width.
        for i in squeezed:
            if i in keep:
                widths[i] += max(0, min(width - needed(), natural[i] - widths[i]))
    else:
        widths[0] = max(width - (needed() - widths[0]), min(natural[0], width // 3))
        shrink(lambda i: min(words[i], SQUEEZED_WIDTH))
        widths[0] = max(MIN_NAME_WIDTH, widths[0] - max(0, needed() - width))
        rows = [(fold_name(r[0], widths[0]), *r[1:]) for r in rows]
    # SIMPLE_HEAD draws one rule under the header and no cell borders; with the padding
    # collapsed a gap is 2 columns instead of the default box's 3 (" | "), and the edges none.
    table = Table(
        title=title, title_justify="left", caption=caption, caption_justify="left",
        box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True,
    )
    for i in keep:
        c = columns[i]
        # Fixed widths: rich never has to shrink (and crop) a number column to make room.
        wraps = c.squeeze or (i == 0 and not names_fit)
        table.add_column(c.header, justify=c.justify, width=widths[i], no_wrap=not wraps, overflow="fold")
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    return table


def fold_name(name: Text, width: int) -> Text:
    """``name`` over lines of at most ``width`` cells, broken after a separator (``.``, ``/``,
    ``:``) where one falls in the line, else at the width."""
    lines: list[str] = []
    line = ""
    for token in re.findall(r"[^./:]*[./:]?", name.plain):
        while len(line) + len(token) > width:
            if line:
                lines.append(line)
                line = ""
            else:
                lines.append(token[:width])
                token = token[width:]
        line += token
    if line or not lines:
        lines.append(line)
    return Text("\n".join(lines), style=name.style)


def nominal_differs(sampler_std: float | None, nominal_std: float | None) -> bool:
    """True for a law whose std is not the std its initializer names (``sqrt(scale / n)``,
    ``stddev``): Keras' ``truncated_normal`` and TF r1.2's ``variance_scaling_initializer``
    truncate without correcting the variance (std 0.8796 and sqrt(1.3) x 0.8796 = 1.0029
    times the nominal).

    The two numbers come from different float expressions of the same quantity, so a few
    ulps apart means equal; the smallest real gap (0.29 %) is far above the 1e-6 used.
    """
    if sampler_std is None or nominal_std is None or not nominal_std > 0:
        return False
    return not math.isclose(sampler_std, nominal_std, rel_tol=1e-6)


def std_text(value: str, uncorrected: bool) -> Text:
    """A std cell, marked when the law is not variance-corrected."""
    return Text(value + UNCORRECTED_MARK if uncorrected else value + " ")
