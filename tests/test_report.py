"""The terminal report: a golden table, the summary line, and the optional plot."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from rich.console import Console

from varscale_cli.core.distributions import Distribution
from varscale_cli.errors import VarscaleError
from varscale_cli.formats import open_weights
from varscale_cli.stats import FileReport, Target, TensorReport, check_file
from varscale_cli.stats.render import PLOT_MISSING, plot_report, stats_table, summary_line


@pytest.fixture(autouse=True)
def _no_colour_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("FORCE_COLOR", "NO_COLOR", "COLUMNS", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(var, raising=False)


def _report() -> FileReport:
    """One tensor per verdict, numbers fixed by hand (the table must not recompute anything)."""
    passing = TensorReport(
        name="layers/dense/kernel", shape=(784, 256), dtype="float32", count=200704,
        mean=1.234e-05, std=0.05047, min=-0.1011, max=0.1010, fan_in=784, fan_out=256,
        target_std=0.05051, expected_std=0.05051, bound=0.10102, out_of_bound=0,
        tests={
            "mean": {"statistic": 0.31, "p_value": 0.7566, "ok": True},
            "variance": {"statistic": -1.2, "p_value": 0.2301, "ok": True},
            "ks": {"statistic": 0.0031, "p_value": 0.3412, "ok": True, "n": 100000},
        },
        verdict="pass", ok=True,
        distribution={"kind": "truncated_normal", "scale": 0.05742, "loc": 0.0, "cut": 2.0},
    )
    small = TensorReport(
        name="layers/dense_1/kernel", shape=(256, 10), dtype="bfloat16", count=2560,
        mean=0.0012, std=0.0612, min=-0.1046, max=0.1046, fan_in=256, fan_out=10,
        target_std=0.0625, expected_std=0.0625, bound=0.1055, out_of_bound=0,
        verdict="too_small", ok=True,
        distribution={"kind": "uniform", "scale": 0.1083, "loc": 0.0, "cut": 2.0},
    )
    failing = TensorReport(
        name="conv/weight[bold]", shape=(64, 32, 3, 3), dtype="float32", count=18432,
        mean=-3.1e-05, std=0.01803, min=-0.08, max=0.081, fan_in=288, fan_out=576,
        target_std=0.08333, expected_std=0.08333, bound=None, out_of_bound=0,
        tests={
            "mean": {"statistic": -0.5, "p_value": 0.6171, "ok": True},
            "variance": {"statistic": -80.12, "p_value": 0.0, "ok": False},
            "ks": {"statistic": 0.2931, "p_value": 1e-300, "ok": False, "n": 18432},
        },
        verdict="fail", ok=False,
        distribution={"kind": "normal", "scale": 0.08333, "loc": 0.0, "cut": 2.0},
    )
    untargeted = TensorReport(
        name="step", shape=(), dtype="int64", count=1, mean=0.0, std=0.0, min=0.0, max=0.0, zeros=1,
    )
    return FileReport(
        tensors=[passing, small, failing, untargeted], ok=False, alpha=1e-3, family_size=6,
        path="model.safetensors",
    )


# Box-drawing as rich renders it; a tensor name with [brackets] is printed as itself.
EXPECTED_TABLE = """\
model.safetensors
┏━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┓
┃ name                  ┃ shape     ┃ dtype    ┃     std ┃  target ┃ expected ┃ bound / out ┃ tests                          ┃ verdict   ┃
┡━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━┩
│ layers/dense/kernel   │ 784x256   │ float32  │ 0.05047 │ 0.05051 │  0.05051 │   0.101 / 0 │ min p 0.2301                   │ pass      │
│ layers/dense_1/kernel │ 256x10    │ bfloat16 │  0.0612 │  0.0625 │   0.0625 │  0.1055 / 0 │ -                              │ too_small │
│ conv/weight[bold]     │ 64x32x3x3 │ float32  │ 0.01803 │ 0.08333 │  0.08333 │    none / 0 │ variance z=-80.12, ks D=0.2931 │ fail      │
│ step                  │ scalar    │ int64    │       0 │       - │        - │           - │ -                              │ no_target │
└───────────────────────┴───────────┴──────────┴─────────┴─────────┴──────────┴─────────────┴────────────────────────────────┴───────────┘
"""


def test_stats_table_golden() -> None:
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(stats_table(_report()))
    rendered = console.file.getvalue()  # type: ignore[attr-defined]
    # rich pads the title line to the console width; compare without trailing blanks.
    assert [line.rstrip() for line in rendered.splitlines()] == EXPECTED_TABLE.splitlines()


def test_verdicts_are_coloured() -> None:
    console = Console(file=io.StringIO(), width=140, color_system="standard", force_terminal=True)
    console.print(stats_table(_report()))
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[32mpass" in out  # green
    assert "\x1b[1;31mfail" in out  # bold red


def test_exact_failures_are_explained_in_the_tests_column() -> None:
    nan = TensorReport(name="w", shape=(4,), dtype="float32", count=4, verdict="fail", ok=False,
                       note="1 NaN and 0 inf values", distribution={"kind": "normal"})
    report = FileReport(tensors=[nan], ok=False, alpha=1e-3)
    console = Console(file=io.StringIO(), width=140, color_system=None)
    console.print(stats_table(report))
    assert "1 NaN and 0 inf values" in console.file.getvalue()  # type: ignore[attr-defined]


def test_summary_line() -> None:
    assert summary_line(_report()) == (
        "FAIL: 1 of 4 tensors failed; 1 pass, 1 too small (< 5000 elements), 1 without target; "
        "Bonferroni over 6 tests at alpha 0.001 (each at 0.0001667)"
    )
    ok = FileReport(tensors=_report().tensors[:2], ok=True, alpha=0.01, family_size=3,
                    missing=["a", "b", "c", "d"])
    assert summary_line(ok) == (
        "OK: 2 tensors checked; 1 pass, 1 too small (< 5000 elements), 0 without target; "
        "4 expected tensors missing from the file: 'a', 'b', 'c' and 1 more; "
        "Bonferroni over 3 tests at alpha 0.01 (each at 0.003333)"
    )


def _small_file(tmp_path: Path) -> tuple[Path, dict[str, Target]]:
    dist = Distribution("uniform", 0.1)
    rng = np.random.default_rng(0)
    path = tmp_path / "m.safetensors"
    safetensors.numpy.save_file(
        {"w": rng.uniform(-0.1, 0.1, (80, 80)).astype(np.float32), "b": np.zeros(8, np.float32)}, path
    )
    return path, {"w": Target(dist, dist.std), "b": Target(Distribution("constant", 0.0), 0.0)}


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if matplotlib were not installed.
    for mod in ("matplotlib", "matplotlib.figure", "matplotlib.backends", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, mod, None)
    path, targets = _small_file(tmp_path)
    with open_weights(path) as wf:
        report = check_file(wf, targets)
        with pytest.raises(VarscaleError) as exc:
            plot_report(report, wf, tmp_path / "h.png")
    assert str(exc.value) == PLOT_MISSING == "--plot needs matplotlib: pip install 'varscale[plot]'"
    assert not (tmp_path / "h.png").exists()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_plot_writes_a_png(tmp_path: Path) -> None:
    path, targets = _small_file(tmp_path)
    with open_weights(path) as wf:
        report = check_file(wf, targets)
        out = plot_report(report, wf, tmp_path / "h.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
