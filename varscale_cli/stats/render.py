"""Human-facing output of `varscale stats`: a rich table, a summary line, histograms.

Only presentation lives here; every number comes from `varscale_cli.stats.report`. Numbers are shown
with 4 significant digits and right-aligned; verdicts are coloured (green pass, red fail,
yellow too_small, dim no_target). Cells are `rich.text.Text`, never markup, so a tensor named
``blocks[bold]`` prints as itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.table import Table
from rich.text import Text

from ..core.distributions import Distribution, parse_kind
from ..errors import VarscaleError
from ..formats.base import WeightFile
from .report import FileReport, TensorReport, Verdict
from .tests import MIN_COUNT, STATISTIC_SYMBOLS

__all__ = ["plot_report", "stats_table", "summary_line"]

VERDICT_STYLES: dict[Verdict, str] = {"pass": "green", "fail": "bold red", "too_small": "yellow", "no_target": "dim"}

#: Histograms drawn at most: 64 panels of 4 x 3 inches at 100 dpi is already a 1600 x 4800
#: pixel image; a whole LLM checkpoint would make an unusable one.
MAX_PLOTS = 64
#: Bins per histogram: with the >= 5,000 values of a tested tensor, about 50 per bin
#: in the bulk, enough for the target curve to be compared by eye.
HIST_BINS = 100

PLOT_MISSING = "--plot needs matplotlib: pip install 'varscale[plot]'"


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


def stats_table(report: FileReport) -> Table:
    """One row per tensor: what it holds against what its initializer promises.

    Columns: name, shape, dtype, std (empirical), target (sqrt(scale / n)), expected (std of
    the configured sampler after rounding to the stored dtype), bound / out (bound on
    |x - loc| after rounding, values beyond it), tests (failed statistics, else the
    smallest p-value), verdict.
    """
    table = Table(title=Text(report.path) if report.path else None, title_justify="left")
    table.add_column("name", overflow="fold")
    table.add_column("shape")
    table.add_column("dtype")
    table.add_column("std", justify="right")
    table.add_column("target", justify="right")
    table.add_column("expected", justify="right")
    table.add_column("bound / out", justify="right")
    table.add_column("tests")
    table.add_column("verdict")
    for t in report.tensors:
        table.add_row(
            Text(t.name),
            Text(_shape(t.shape)),
            Text(t.dtype),
            Text(_num(t.std)),
            Text(_num(t.target_std)),
            Text(_num(t.expected_std)),
            Text(_bound_cell(t)),
            Text(_tests_cell(t)),
            Text(t.verdict, style=VERDICT_STYLES[t.verdict]),
        )
    return table


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
        names = ", ".join(repr(m) for m in report.missing[:3])
        more = f" and {len(report.missing) - 3} more" if len(report.missing) > 3 else ""
        parts.append(f"{len(report.missing)} expected tensors missing from the file: {names}{more}")
    parts.append(
        f"Bonferroni over {report.family_size} tests at alpha {report.alpha:g} "
        f"(each at {report.test_level:.4g})"
    )
    return "; ".join(parts)


def plot_report(
    report: FileReport, wf: WeightFile, png_path: str | Path, *, force: bool = False
) -> Path:
    """Save per-tensor histograms with the target density over them as a PNG.

    Each panel is a density histogram of the tensor's finite values (read again, chunk by
    chunk) and, when the tensor has a random target, the target's expected density per bin
    (CDF differences, so it is exact for any bin width). At most `MAX_PLOTS` tensors.

    The PNG is written atomically under the output-path policy
    (`varscale_cli.engine.atomic.check_output`): an existing file is replaced only with
    ``force``, and never a link, folder or special file.

    Raises:
        VarscaleError: matplotlib is not installed, or no tensor has a finite value.
        OutputError: the PNG cannot be written.
    """
    from ..engine.atomic import atomic_output

    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise VarscaleError(PLOT_MISSING) from None
    items = [t for t in report.tensors if t.count and t.min is not None and t.max is not None][:MAX_PLOTS]
    if not items:
        raise VarscaleError("nothing to plot: no tensor has a finite value")
    ncols = min(4, len(items))
    nrows = -(-len(items) // ncols)
    fig = Figure(figsize=(4 * ncols, 3 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    for i, t in enumerate(items):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        assert t.min is not None and t.max is not None
        lo, hi = t.min, t.max
        if t.bound is not None and t.distribution is not None:
            loc = float(t.distribution["loc"])
            lo, hi = min(lo, loc - t.bound), max(hi, loc + t.bound)
        if not hi > lo:
            half = max(abs(lo), 1.0) * 1e-3
            lo, hi = lo - half, hi + half
        edges = np.linspace(lo, hi, HIST_BINS + 1)
        counts = np.zeros(HIST_BINS)
        for chunk in wf.iter_chunks(t.name):
            with np.errstate(all="ignore"):
                x = np.asarray(chunk).astype(np.float64)
            counts += np.histogram(x[np.isfinite(x)], bins=edges)[0]
        width = edges[1] - edges[0]
        total = max(counts.sum(), 1.0)
        ax.stairs(counts / (total * width), edges, fill=True, alpha=0.5, label="file")
        if t.distribution is not None and t.distribution["kind"] != "constant":
            d = Distribution(
                parse_kind(t.distribution["kind"]), float(t.distribution["scale"]),
                float(t.distribution["loc"]), float(t.distribution["cut"]),
            )
            expected = np.diff(d.cdf(edges)) / width
            ax.plot(0.5 * (edges[:-1] + edges[1:]), expected, color="C3", lw=1.2, label="target")
        ax.set_title(f"{t.name} [{t.verdict}]", fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    with atomic_output(Path(png_path), force=force, fsync=False) as tmp:
        # format="png": the temp name has no suffix for matplotlib to go by.
        fig.savefig(tmp, dpi=100, format="png")
    return Path(png_path)
