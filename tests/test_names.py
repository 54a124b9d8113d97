"""Names that surprise, said where users look: the presets table (plain text, a law column,
the Keras/PyTorch note), the --help of stats and spec, and the layout stats --init uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from varscale_cli.cli import cli


def run(args: list[str], width: int = 100) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, env={"COLUMNS": str(width), "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def _row(out: str, name: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith(name + " "))
    return [cell for cell in line.split("  ") if cell.strip()]


@pytest.mark.parametrize("width", [80, 100])
def test_presets_are_plain_text_with_laws(width: int) -> None:
    code, out, _ = run(["presets"], width)
    assert code == 0
    assert "``" not in out and "*not*" not in out  # no reST markup
    assert max(len(line.rstrip()) for line in out.splitlines()) <= width
    assert "trunc. normal" in _row(out, "he_normal (kaiming_normal)")[3]
    assert "trunc. normal" in _row(out, "glorot_normal (xavier_normal)")[3]
    assert _row(out, "torch.kaiming_normal")[1].strip() == "normal"
    assert _row(out, "torch.xavier_normal")[1].strip() == "normal"
    flat = " ".join(out.split())
    assert "The bare names are Keras': kaiming_normal (he_normal), xavier_normal (glorot_normal)" in flat
    assert "use torch.kaiming_normal and torch.xavier_normal" in flat


def test_presets_torch_rows_say_what_they_draw() -> None:
    code, out, _ = run(["presets"], 240)  # wide enough that no cell wraps
    assert code == 0
    flat = " ".join(out.split())
    assert "torch.nn.init.xavier_normal_: N(0, std^2), std = gain sqrt(2 / (fan_in + fan_out))," in flat
    assert "torch.nn.init.kaiming_normal_: N(0, (gain / sqrt(fan))^2), untruncated" in flat


def test_help_explains_the_layout_defaults() -> None:
    code, out, _ = run(["stats", "--help"], 100)
    assert code == 0
    flat = " ".join(out.split())
    assert "torch layout (out, in, *k) for torch.* initializers, keras (..., in, out) for the presets" in flat
    code, out, _ = run(["spec", "--help"], 100)
    assert code == 0 and "The default layout is torch" in " ".join(out.split())


def test_stats_init_takes_the_initializers_own_layout(tmp_path: Path) -> None:
    # A torch Linear weight (out 256, in 1024): torch fans give fan_in 1024, keras fans 256,
    # a factor 2 in std that the check cannot miss.
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "version: 1\nseed: 4\ntensors:\n"
        "  fc.weight: {shape: [256, 1024], initializer: {name: torch.kaiming_normal, nonlinearity: leaky_relu}}\n"
    )
    out = tmp_path / "w.safetensors"
    code, _, err = run(["generate", str(spec), "-o", str(out), "-q"])
    assert code == 0, err
    code, text, _ = run(["stats", str(out), "--init", "torch.kaiming_normal"])
    assert code == 0, text
    code, text, _ = run(["stats", str(out), "--init", "torch.kaiming_normal", "--layout", "keras"])
    assert code == 3 and "fail" in text
