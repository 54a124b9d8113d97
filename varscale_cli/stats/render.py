"""Human-facing output of `varscale stats`: a rich table and a summary line (the plot is
`varscale_cli.stats.plot`).

Only presentation lives here; every number comes from `varscale_cli.stats.report`. Numbers are shown
with 4 significant digits and right-aligned; verdicts are coloured (green pass, red fail,
yellow too_small, dim no_target). Cells are `rich.text.Text`, never markup, so a tensor named
``blocks[bold]`` prints as itself.
"""

from __future__ import annotations

import math

from rich.table import Table
from rich.text import Text

from ..core.distributions import Distribution, parse_kind
from ..terminal import printable
from .layout import Column, fit_table, nominal_differs, std_text
from .report import FileReport, TensorReport, Verdict
from .tests import MIN_COUNT, STATISTIC_SYMBOLS

__all__ = ["UNCORRECTED_NOTE", "stats_table", "summary_line"]

VERDICT_STYLES: dict[Verdict, str] = {"pass": "green", "fail": "bold red", "too_small": "yellow", "no_target": "dim"}

#: The caption under a table with a marked std.
UNCORRECTED_NOTE = "* law not variance-corrected: its std differs from the initializer's nominal std"

#: Rows the table shows at most. rich lays a table out whole, at about 1 ms and 10 KB per row
#: (measured: 30,000 rows took 20 s and 320 MB on a 2-core machine), so a checkpoint with tens
#: of thousands of tensors would take minutes to print a table nobody reads; 1,000 rows take
#: about a second. Beyond it the failures are shown first, then the rest in file order, and a
#: last row says how many are left out (``--json`` lists every tensor).
MAX_TABLE_ROWS = 1000


def _num(x: float | None) -> str:
    """4 significant digits, '-' for unknown."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.4g}"


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _bound_cell(t: TensorReport) -> str:
    if t.bound is None:
        return f"none / {t.out_of_bound}" if t.distribution else "-"
    return f"{_num(t.bound)} / {t.out_of_bound}"


def _tests_cell(t: TensorReport) -> str:
    """Failed tests with their statistics; else the smallest p-value; else why not tested."""
    failed = [(k, v) for k, v in t.tests.items() if not v["ok"]]
    if failed:
        return ", ".join(f"{k} {STATISTIC_SYMBOLS[k]}={_num(v['statistic'])}" for k, v in failed)
    if t.verdict == "fail":
        return t.note  # an exact check failed (NaN, bound, constant, dtype): say which
    if not t.tests:
        return "-"
    return f"min p {_num(min(v['p_value'] for v in t.tests.values()))}"


def _target_cell(t: TensorReport) -> tuple[Text, bool]:
    """The std the check compares with, marked when the law is not variance-corrected."""
    sampler_std = None
    d = t.distribution
    if d is not None and d.get("kind") not in (None, "constant"):
        try:
            sampler_std = Distribution(
                parse_kind(d["kind"]), float(d["scale"]), float(d["loc"]), float(d["cut"])
            ).std
        except (KeyError, TypeError, ValueError):
            sampler_std = None
    uncorrected = nominal_differs(sampler_std, t.target_std)
    return std_text(_num(t.expected_std), uncorrected), uncorrected


#: The stats table's columns; on a narrow terminal bound / out goes first, then dtype, then
#: shape (`layout.fit_table`).
STATS_COLUMNS = (
    Column("name"),
    Column("shape", drop=1),
    Column("dtype", drop=2),
    Column("mean", "right"),
    Column("std", "right"),
    Column("target", "right"),
    Column("bound / out", "right", drop=3),
    Column("tests", squeeze=True),
    Column("verdict"),
)


def stats_table(report: FileReport, width: int = 100) -> Table:
    """One row per tensor: what it holds against what its initializer promises, fitted to
    ``width`` columns (`layout.fit_table`).

    Columns: name, shape, dtype, mean and std (empirical), target (the std of the configured
    sampler after rounding to the stored dtype, marked ``*`` when the law is not variance-
    corrected and so differs from the initializer's nominal std), bound / out (bound on
    |x - loc| after rounding, values beyond it), tests (failed statistics, else the smallest
    p-value), verdict. The mean tells ``ones`` from ``zeros``.
    """
    rows = []
    marked = False
    for t in _shown(report.tensors):
        target, uncorrected = _target_cell(t)
        marked = marked or uncorrected
        rows.append((
            Text(printable(t.name)),
            Text(_shape(t.shape)),
            Text(t.dtype),
            Text(_num(t.mean)),
            Text(_num(t.std)),
            target,
            Text(_bound_cell(t)),
            Text(printable(_tests_cell(t))),
            Text(t.verdict, style=VERDICT_STYLES[t.verdict]),
        ))
    hidden = len(report.tensors) - MAX_TABLE_ROWS
    if hidden > 0:
        more = Text(f"... {hidden:,} more tensors not shown (--json lists all)", style="dim")
        blank = Text("")
        rows.append((more, blank, blank, blank, blank, blank, blank, blank, blank))
    caption = UNCORRECTED_NOTE if marked else None
    title = Text(printable(report.path)) if report.path else None
    return fit_table(STATS_COLUMNS, rows, width, title=title, caption=caption)


def _shown(tensors: list[TensorReport]) -> list[TensorReport]:
    """At most `MAX_TABLE_ROWS` rows, failures first, kept in file order."""
    if len(tensors) <= MAX_TABLE_ROWS:
        return tensors
    order = sorted(range(len(tensors)), key=lambda i: tensors[i].verdict != "fail")
    return [tensors[i] for i in sorted(order[:MAX_TABLE_ROWS])]


def summary_line(report: FileReport) -> str:
    """One sentence: overall verdict, counts per verdict, the multiple-testing correction.

    Example:
        ``FAIL: 1 of 4 tensors failed; 2 pass, 1 too small (< 5000 elements), 0 without
        target; Bonferroni over 6 tests at alpha 0.001 (each at 0.0001667)``
    """
    c = report.counts()
    n = len(report.tensors)
    head = "OK" if report.ok else "FAIL"
    failed = f"{c['fail']} of {n} tensors failed" if c["fail"] else f"{n} tensors checked"
    parts = [
        f"{head}: {failed}",
        f"{c['pass']} pass, {c['too_small']} too small (< {MIN_COUNT} elements), "
        f"{c['no_target']} without target",
    ]
    if report.missing:
        names = ", ".join(printable(repr(m)) for m in report.missing[:3])
        more = f" and {len(report.missing) - 3} more" if len(report.missing) > 3 else ""
        parts.append(f"{len(report.missing)} expected tensors missing from the file: {names}{more}")
    parts.append(
        f"Bonferroni over {report.family_size} tests at alpha {report.alpha:g} "
        f"(each at {report.test_level:.4g})"
    )
    return "; ".join(parts)
