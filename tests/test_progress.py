"""The one progress display (`varscale_cli.cli._console.progress`) on a fixed-width terminal:
phase, current item, human bytes (no raw byte counter), throughput and time left; nothing
when quiet, when stderr is not a terminal, or for a phase shorter than the delay. And the
commands' callbacks reach it: generate, its check, stats, the plot and verify."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from varscale_cli.cli import _console, cli

SPEC = """\
version: 1
seed: 5
defaults: {dtype: float32, initializer: he_normal}
tensors:
  blocks.0.attn.q_proj.weight: {shape: [256, 128]}
  blocks.0.mlp.fc[bold].weight: {shape: [128, 64]}
  blocks.0.ln.bias: {shape: [128], initializer: zeros}
"""


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """stderr as a 100-column terminal, the bar shown at once; returns what was drawn."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    monkeypatch.setattr(_console, "stderr_console", lambda: console)
    monkeypatch.setattr(_console, "PROGRESS_DELAY_S", 0.0)
    return lambda: re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", buffer.getvalue())


def test_bar_names_phase_item_and_speed_without_raw_bytes(terminal: Callable[[], str]) -> None:
    with _console.progress(False, "checking", 3_000_000, 2) as advance:
        assert advance is not None
        advance("blocks.0.attn.q_proj.weight", 1_000_000)
        advance("a.very.long.tensor.name.that.does.not.fit.in.the.bar", 1_000_000)
    drawn = terminal()
    assert "checking 1/2 blocks.0.attn.q_proj.weight" in drawn
    assert "checking 2/2 ....that.does.not.fit.in.the.bar " in drawn  # the end is kept
    assert re.search(r"\d\.\d/3\.0 MB", drawn)  # one human counter ...
    assert "1000000" not in drawn and "3000000" not in drawn  # ... and no raw one
    assert "/s" in drawn  # throughput


def test_quiet_and_short_phases_draw_nothing(terminal: Callable[[], str], monkeypatch: pytest.MonkeyPatch) -> None:
    with _console.progress(True, "writing", 10, 1) as advance:
        assert advance is None
    monkeypatch.setattr(_console, "PROGRESS_DELAY_S", 60.0)
    with _console.progress(False, "writing", 10, 1) as advance:
        assert advance is not None
        advance("x", 10)
    assert terminal() == ""


def test_piped_stderr_draws_nothing() -> None:
    # A real stderr_console on a pipe: not a terminal, so no callback at all.
    with _console.progress(False, "writing", 10, 1) as advance:
        assert advance is None


def test_every_long_command_reports_progress(tmp_path: Path, terminal: Callable[[], str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "w.safetensors"
    runner = CliRunner()

    def phases(*args: str) -> set[str]:
        before = len(terminal())
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return set(re.findall(r"\b(writing|checking|plotting|verifying) \d+/3 ", terminal()[before:]))

    assert phases("generate", str(spec), "-o", str(out)) == {"writing", "checking"}
    assert "blocks.0.mlp.fc[bold].weight" in terminal()  # the name as itself, not markup
    stats_phases = {"checking"}
    try:
        import matplotlib  # noqa: F401

        stats_phases.add("plotting")
        assert phases("stats", str(out), "--plot", str(tmp_path / "p.png")) == stats_phases
    except ImportError:
        assert phases("stats", str(out)) == stats_phases
    assert phases("verify", str(out)) == {"verifying"}
    assert phases("verify", str(out), "--quiet") == set()
    assert phases("stats", str(out), "-q") == set()
    assert phases("generate", str(spec), "-o", str(out), "--force", "-q") == set()


def test_sharded_bar_names_the_shard(tmp_path: Path, terminal: Callable[[], str]) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(tmp_path / "ck"), "--num-shards", "2"])
    assert result.exit_code == 0, result.output
    assert re.search(r"writing \d/3 shard [12]/2: blocks\.0\.", terminal())
