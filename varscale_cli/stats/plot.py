"""`varscale stats --plot`: one PNG that stays readable from 1 to thousands of tensors.

* Random tensors (a non-constant target, or no target and more than one value) get a
  histogram panel each: the file's values as a density, the target density over them
  ("target density" in the legend), and the verdict and the stds in the panel.
* Constant tensors (``zeros``, ``ones``, any constant target, or values all equal) would be
  one spike on an unreadable axis: they are listed, with their value and verdict, in a text
  panel instead.
* Past `MAX_PANELS` random tensors (a checkpoint), the figure becomes a summary: every
  tensor's empirical std over its target std on one axis (1 is exact; failures in red and
  named), then the histograms of the `WORST_PANELS` tensors the tests doubt most (failures
  first, then the smallest p-values), then the constants. One file, always: no pages to
  collect, and the one picture says whether anything is off and where.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.distributions import Distribution, parse_kind
from ..errors import VarscaleError
from ..formats.base import WeightFile
from .report import FileReport, TensorReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["HIST_BINS", "MAX_PANELS", "PLOT_MISSING", "WORST_PANELS", "Panels", "choose_panels", "plot_report"]

PLOT_MISSING = "--plot needs matplotlib: pip install 'varscale[plot]'"

#: Histogram panels drawn at most before the figure becomes a summary: 24 panels of 4 x 3
#: inches in 4 columns is a 1600 x 1800 pixel image at 100 dpi, about what a screen shows.
MAX_PANELS = 24
#: Histograms under the summary axis of a large file.
WORST_PANELS = 8
#: Bins per histogram: with the >= 5,000 values of a tested tensor, about 50 per bin in the
#: bulk, enough for the target curve to be compared by eye.
HIST_BINS = 100
#: Lines of the constants panel (one per value and verdict), and names shown per line.
MAX_LISTED = 12
NAMES_PER_LINE = 3
#: Panel titles keep a name's end (where names differ) up to this many characters.
TITLE_CHARS = 44
VERDICT_COLOURS = {"pass": "C2", "fail": "C3", "too_small": "C1", "no_target": "0.5"}


def _is_constant(t: TensorReport) -> bool:
    if t.distribution is not None:
        return t.distribution.get("kind") == "constant"
    return t.min is not None and t.min == t.max


def _short(name: str) -> str:
    return name if len(name) <= TITLE_CHARS else "..." + name[-(TITLE_CHARS - 3):]


def _target(t: TensorReport) -> Distribution | None:
    d = t.distribution
    if d is None or d.get("kind") == "constant":
        return None
    try:
        return Distribution(parse_kind(d["kind"]), float(d["scale"]), float(d["loc"]), float(d["cut"]))
    except (KeyError, TypeError, ValueError):
        return None


def _doubt(t: TensorReport) -> tuple[int, float]:
    """Sort key: failures first, then the smallest p-value."""
    p = min((float(v["p_value"]) for v in t.tests.values()), default=1.0)
    return (0 if t.verdict == "fail" else 1, p)


def _histogram(
    ax: Axes, t: TensorReport, wf: WeightFile, on_chunk: Callable[[str, int], None] | None, legend: bool
) -> None:
    from matplotlib.ticker import MaxNLocator

    assert t.min is not None and t.max is not None
    lo, hi = t.min, t.max
    dist = _target(t)
    if t.bound is not None and t.distribution is not None:
        loc = float(t.distribution["loc"])
        lo, hi = min(lo, loc - t.bound), max(hi, loc + t.bound)
    if not hi > lo:
        half = max(abs(lo), 1.0) * 1e-3
        lo, hi = lo - half, hi + half
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    counts = np.zeros(HIST_BINS)
    for chunk in wf.iter_chunks(t.name):
        if on_chunk is not None:
            on_chunk(t.name, chunk.nbytes)
        with np.errstate(all="ignore"):
            x = np.asarray(chunk).astype(np.float64)
        counts += np.histogram(x[np.isfinite(x)], bins=edges)[0]
    width = edges[1] - edges[0]
    total = max(counts.sum(), 1.0)
    density = counts / (total * width)
    ax.stairs(density, edges, fill=True, alpha=0.5, label="file")
    top = float(density.max())
    if dist is not None:
        expected = np.diff(dist.cdf(edges)) / width
        ax.plot(0.5 * (edges[:-1] + edges[1:]), expected, color="C3", lw=1.2, label="target density")
        top = max(top, float(expected.max()))
    ax.set_ylim(0.0, 1.35 * top if top > 0 else 1.0)  # headroom: the labels never cover the bars
    ax.set_title(_short(t.name), fontsize=8)
    std = "-" if t.std is None else f"{t.std:.4g}"
    target = "" if t.expected_std is None else f"\ntarget {t.expected_std:.4g}"
    ax.text(
        0.02, 0.97, f"{t.verdict}\nstd {std}{target}", transform=ax.transAxes, va="top", ha="left",
        fontsize=7, color=VERDICT_COLOURS[t.verdict],
        bbox={"boxstyle": "round", "fc": "white", "ec": "0.8", "alpha": 0.8},
    )
    # Four ticks at most, in scientific notation past 1e3 or under 1e-2: no overlapping
    # labels in a 4-inch panel.
    ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    ax.ticklabel_format(axis="both", style="sci", scilimits=(-2, 3))
    ax.tick_params(labelsize=7)
    ax.xaxis.get_offset_text().set_fontsize(7)
    ax.yaxis.get_offset_text().set_fontsize(7)
    if legend:
        ax.legend(fontsize=7, loc="upper right")


def _constant_lines(constants: list[TensorReport]) -> list[str]:
    """One line per (value, verdict): how many tensors hold it, and the first names."""
    groups: dict[tuple[str, str], list[str]] = {}
    for t in constants:
        value = "-" if t.mean is None else f"{t.mean:.4g}"
        groups.setdefault((value, t.verdict), []).append(t.name)
    lines = []
    for (value, verdict), names in groups.items():
        shown = ", ".join(names[:NAMES_PER_LINE])
        more = f" and {len(names) - NAMES_PER_LINE} more" if len(names) > NAMES_PER_LINE else ""
        lines.append(f"= {value} [{verdict}], {len(names)} tensor(s): {shown}{more}")
    if len(lines) > MAX_LISTED:
        lines = [*lines[:MAX_LISTED], f"... and {len(lines) - MAX_LISTED} more values"]
    return lines


def _constants_panel(ax: Axes, lines: list[str], count: int) -> None:
    ax.axis("off")
    ax.set_title(f"{count} constant tensor(s), not drawn", fontsize=8, loc="left")
    ax.text(0.0, 1.0, "\n".join(lines), transform=ax.transAxes, va="top", ha="left", fontsize=7, family="monospace")


def _summary_axis(ax: Axes, tensors: list[TensorReport]) -> None:
    """Empirical over target std per tensor, in file order; 1 is exact."""
    from matplotlib.ticker import MaxNLocator

    shown = [(t, t.std / t.expected_std) for t in tensors if t.std is not None and t.expected_std]
    for verdict, colour in VERDICT_COLOURS.items():
        idx = [i for i, (t, _) in enumerate(shown) if t.verdict == verdict]
        if idx:
            ax.scatter(idx, [shown[i][1] for i in idx], s=8, color=colour, label=f"{verdict} ({len(idx)})")
    for i, (t, ratio) in enumerate(shown):
        if t.verdict == "fail":
            ax.annotate(_short(t.name), (i, ratio), fontsize=6, color="C3", xytext=(3, 3), textcoords="offset points")
    ax.axhline(1.0, color="0.3", lw=0.8)
    ax.set_xlabel("tensor (file order)", fontsize=8)
    ax.set_ylabel("std / target std", fontsize=8)
    ax.set_title(f"{len(shown)} random tensors: empirical std over target std", fontsize=9, loc="left")
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="best")


@dataclass(frozen=True)
class Panels:
    """What the figure shows: the random tensors (the summary axis when ``summary``), those
    with a histogram, and the constants (the text panel)."""

    random: list[TensorReport]
    histograms: list[TensorReport]
    constants: list[TensorReport]
    summary: bool


def choose_panels(report: FileReport) -> Panels:
    """Split the report's tensors with a finite value into the figure's panels.

    Raises:
        VarscaleError: no tensor has a finite value.
    """
    finite = [t for t in report.tensors if t.count and t.min is not None and t.max is not None]
    if not finite:
        raise VarscaleError("nothing to plot: no tensor has a finite value")
    constants = [t for t in finite if _is_constant(t)]
    random = [t for t in finite if not _is_constant(t)]
    summary = len(random) > MAX_PANELS
    hists = sorted(random, key=_doubt)[:WORST_PANELS] if summary else random
    return Panels(random, hists, constants, summary)


def _layout(n_hist: int, summary: bool, constants: bool) -> tuple[int, int]:
    """Columns and histogram rows (the summary and constants panels take a row each)."""
    ncols = max(1, min(4, n_hist))
    if (summary or constants) and n_hist < 2:
        ncols = 2
    return ncols, -(-n_hist // ncols)


def plot_report(
    report: FileReport,
    wf: WeightFile,
    png_path: str | Path,
    on_chunk: Callable[[str, int], None] | None = None,
    *,
    force: bool = False,
) -> Path:
    """Save the figure described in the module docstring as a PNG, atomically, under the
    output-path policy (`varscale_cli.engine.atomic.check_output`): an existing file is
    replaced only with ``force``, and never a link, folder or special file.

    Histograms read every plotted tensor again, chunk by chunk (``on_chunk`` hears of each:
    name, bytes); the target's expected density per bin is a CDF difference, exact for any
    bin width.

    Raises:
        VarscaleError: matplotlib is not installed, or no tensor has a finite value.
        OutputError: the PNG cannot be written.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise VarscaleError(PLOT_MISSING) from None
    panels = choose_panels(report)
    random, hists, constants, summary = panels.random, panels.histograms, panels.constants, panels.summary
    ncols, nrows = _layout(len(hists), summary, bool(constants))
    extra = [r for r, on in (("summary", summary), ("constants", bool(constants))) if on]
    lines = _constant_lines(constants)
    heights = [2.5 if r == "summary" else 0.4 + 0.14 * len(lines) for r in extra]
    fig: Figure = Figure(figsize=(4 * ncols, 3 * nrows + sum(heights)), layout="constrained")
    FigureCanvasAgg(fig)
    ratios: list[Any] = ([2.5] if summary else []) + [3.0] * nrows + ([heights[-1]] if constants else [])
    grid = fig.add_gridspec(len(ratios), ncols, height_ratios=ratios)
    row = 0
    if summary:
        _summary_axis(fig.add_subplot(grid[row, :]), random)
        row += 1
    for i, t in enumerate(hists):
        _histogram(fig.add_subplot(grid[row + i // ncols, i % ncols]), t, wf, on_chunk, legend=i == 0)
    row += nrows
    if constants:
        _constants_panel(fig.add_subplot(grid[row, :]), lines, len(constants))
    if summary:
        fig.suptitle(
            f"{report.path}: {len(random)} random tensors (the {len(hists)} most doubtful shown), "
            f"{len(constants)} constant",
            fontsize=10,
        )
    elif report.path:
        fig.suptitle(str(report.path), fontsize=10)
    from ..engine.atomic import atomic_output

    with atomic_output(Path(png_path), force=force, fsync=False) as tmp:
        # format="png": the temp name has no suffix for matplotlib to go by.
        fig.savefig(tmp, dpi=100, format="png")
    return Path(png_path)
