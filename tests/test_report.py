"""The terminal report: a golden table, the summary line, and the optional plot."""

from __future__ import annotations

import importlib.util
import io
import math
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
from varscale_cli.stats.plot import PLOT_MISSING, plot_report
from varscale_cli.stats.render import stats_table, summary_line

TRUNC_STD = Distribution("truncated_normal", 1.0).std  # 0.8796: the std of N(0, 1) cut at +-2


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
        # He normal: the scale is the std over the truncated normal's std factor 0.8796.
        distribution={"kind": "truncated_normal", "scale": 0.05051 / TRUNC_STD, "loc": 0.0, "cut": 2.0},
    )
    small = TensorReport(
        name="layers/dense_1/kernel", shape=(256, 10), dtype="bfloat16", count=2560,
        mean=0.0012, std=0.0612, min=-0.1046, max=0.1046, fan_in=256, fan_out=10,
        target_std=0.0625, expected_std=0.0625, bound=0.1055, out_of_bound=0,
        verdict="too_small", ok=True,
        distribution={"kind": "uniform", "scale": 0.0625 * math.sqrt(3.0), "loc": 0.0, "cut": 2.0},
    )
    # Keras' truncated_normal(stddev=0.02) is not variance-corrected: its std is 0.8796 x 0.02.
    uncorrected = TensorReport(
        name="emb", shape=(1000, 64), dtype="float32", count=64000,
        mean=2e-06, std=0.01759, min=-0.04, max=0.04, fan_in=64, fan_out=1000,
        target_std=0.02, expected_std=0.02 * TRUNC_STD, bound=0.04, out_of_bound=0,
        tests={
            "mean": {"statistic": 0.1, "p_value": 0.9203, "ok": True},
            "variance": {"statistic": 0.5, "p_value": 0.6171, "ok": True},
            "ks": {"statistic": 0.002, "p_value": 0.8, "ok": True, "n": 64000},
        },
        verdict="pass", ok=True,
        distribution={"kind": "truncated_normal", "scale": 0.02, "loc": 0.0, "cut": 2.0},
    )
    ones = TensorReport(
        name="norm/gamma", shape=(256,), dtype="float32", count=256, mean=1.0, std=0.0, min=1.0,
        max=1.0, fan_in=256, fan_out=256, target_std=0.0, expected_std=0.0, bound=0.0,
        verdict="pass", ok=True, distribution={"kind": "constant", "scale": 0.0, "loc": 1.0, "cut": 2.0},
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
        tensors=[passing, small, uncorrected, ones, failing, untargeted], ok=False, alpha=1e-3, family_size=6,
        path="model.safetensors",
    )


# As rich renders it at 80, 100 and 140 columns: every name whole on one line; at 100 the
# bound / out column goes, at 80 dtype and shape too (`layout.fit_table`); the mean tells
# norm/gamma (ones) from a zeros tensor; emb's std is marked as not variance-corrected; a
# tensor name with [brackets] is printed as itself.
EXPECTED_TABLES = {
    80: """\
model.safetensors
name                        mean      std    target  tests             verdict
────────────────────────────────────────────────────────────────────────────────
layers/dense/kernel    1.234e-05  0.05047   0.05051  min p 0.2301      pass
layers/dense_1/kernel     0.0012   0.0612    0.0625  -                 too_small
emb                        2e-06  0.01759  0.01759*  min p 0.6171      pass
norm/gamma                     1        0         0  -                 pass
conv/weight[bold]       -3.1e-05  0.01803   0.08333  variance          fail
                                                     z=-80.12, ks
                                                     D=0.2931
step                           0        0         -  -                 no_target
* law not variance-corrected: its std differs from the initializer's nominal std
""",
    100: """\
model.safetensors
name                   shape      dtype          mean      std    target  tests            verdict
────────────────────────────────────────────────────────────────────────────────────────────────────
layers/dense/kernel    784x256    float32   1.234e-05  0.05047   0.05051  min p 0.2301     pass
layers/dense_1/kernel  256x10     bfloat16     0.0012   0.0612    0.0625  -                too_small
emb                    1000x64    float32       2e-06  0.01759  0.01759*  min p 0.6171     pass
norm/gamma             256        float32           1        0         0  -                pass
conv/weight[bold]      64x32x3x3  float32    -3.1e-05  0.01803   0.08333  variance         fail
                                                                          z=-80.12, ks
                                                                          D=0.2931
step                   scalar     int64             0        0         -  -                no_target
* law not variance-corrected: its std differs from the initializer's nominal std
""",
    140: """\
model.safetensors
name                   shape      dtype          mean      std    target  bound / out  tests                           verdict
────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────────
layers/dense/kernel    784x256    float32   1.234e-05  0.05047   0.05051    0.101 / 0  min p 0.2301                    pass
layers/dense_1/kernel  256x10     bfloat16     0.0012   0.0612    0.0625   0.1055 / 0  -                               too_small
emb                    1000x64    float32       2e-06  0.01759  0.01759*     0.04 / 0  min p 0.6171                    pass
norm/gamma             256        float32           1        0         0        0 / 0  -                               pass
conv/weight[bold]      64x32x3x3  float32    -3.1e-05  0.01803   0.08333     none / 0  variance z=-80.12, ks D=0.2931  fail
step                   scalar     int64             0        0         -            -  -                               no_target
* law not variance-corrected: its std differs from the initializer's nominal std
""",
}


@pytest.mark.parametrize("width", sorted(EXPECTED_TABLES))
def test_stats_table_golden(width: int) -> None:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(stats_table(_report(), width))
    rendered = console.file.getvalue()  # type: ignore[attr-defined]
    # rich pads lines to the console width; compare without trailing blanks.
    lines = [line.rstrip() for line in rendered.splitlines()]
    assert lines == EXPECTED_TABLES[width].splitlines()
    assert max(len(line) for line in lines) <= width


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
        "FAIL: 1 of 6 tensors failed; 3 pass, 1 too small (< 5000 elements), 1 without target; "
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


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk (bytes 16-24, big-endian)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _checkpoint(tmp_path: Path, n_random: int, n_const: int) -> tuple[Path, dict[str, Target]]:
    rng = np.random.default_rng(1)
    tensors, targets = {}, {}
    for i in range(n_random):
        tensors[f"layers.{i:03d}.weight"] = rng.uniform(-0.1, 0.1, 6000).astype(np.float32)
        targets[f"layers.{i:03d}.weight"] = Target(Distribution("uniform", 0.1), Distribution("uniform", 0.1).std)
    for i in range(n_const):
        value = float(i % 2)
        tensors[f"layers.{i:03d}.norm"] = np.full(64, value, np.float32)
        targets[f"layers.{i:03d}.norm"] = Target(Distribution("constant", 0.0, loc=value), 0.0)
    path = tmp_path / "ckpt.safetensors"
    safetensors.numpy.save_file(tensors, path)
    return path, targets


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_plot_draws_random_tensors_and_lists_constants(tmp_path: Path) -> None:
    from varscale_cli.stats.plot import _constant_lines, choose_panels

    path, targets = _checkpoint(tmp_path, 3, 2)
    with open_weights(path) as wf:
        report = check_file(wf, targets)
        panels = choose_panels(report)
        assert not panels.summary
        assert [t.name for t in panels.histograms] == [f"layers.{i:03d}.weight" for i in range(3)]
        assert [t.name for t in panels.constants] == ["layers.000.norm", "layers.001.norm"]
        # ones and zeros are told apart by their value
        assert _constant_lines(panels.constants) == [
            "= 0 [pass], 1 tensor(s): layers.000.norm",
            "= 1 [pass], 1 tensor(s): layers.001.norm",
        ]
        width, height = _png_size(plot_report(report, wf, tmp_path / "small.png"))
    assert (width, height) == (1200, 300 + int(100 * (0.4 + 0.14 * 2)))  # 3 panels + the text row


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib not installed")
def test_plot_of_a_200_tensor_checkpoint_is_one_bounded_summary(tmp_path: Path) -> None:
    from varscale_cli.stats.plot import MAX_PANELS, WORST_PANELS, choose_panels

    path, targets = _checkpoint(tmp_path, 150, 50)
    # One tensor far off its target: the summary must put it among the histograms.
    data = safetensors.numpy.load_file(path)
    data["layers.077.weight"] = data["layers.077.weight"] * np.float32(0.5)
    safetensors.numpy.save_file(data, path)
    with open_weights(path) as wf:
        report = check_file(wf, targets)
        panels = choose_panels(report)
        assert len(panels.random) == 150 > MAX_PANELS and panels.summary
        assert len(panels.histograms) == WORST_PANELS
        assert panels.histograms[0].name == "layers.077.weight" and panels.histograms[0].verdict == "fail"
        width, height = _png_size(plot_report(report, wf, tmp_path / "big.png"))
    # 4 columns of 4 inches; a summary row, two histogram rows, the constants' two lines.
    assert width == 1600 and height < 1000
