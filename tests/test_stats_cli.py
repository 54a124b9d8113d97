"""`varscale stats` end to end: where targets come from, outputs and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from safetensors.numpy import save_file

from varscale_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
GPT = ROOT / "configs" / "gpt_block.yaml"
REQUIRED = {"name", "shape", "dtype", "count", "mean", "std", "min", "max", "fan_in", "fan_out",
            "target_std", "expected_std", "bound", "ok"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def gpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gpt") / "gpt.safetensors"
    assert run("generate", str(GPT), "-o", str(out), "-q", "--no-check")[0] == 0
    return out


def test_targets_from_provenance_json_report(gpt: Path) -> None:
    code, out, _ = run("stats", str(gpt), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and doc["schema_version"] == 1
    assert all(REQUIRED <= set(t) for t in doc["tensors"])
    qkv = next(t for t in doc["tensors"] if t["name"] == "blocks.0.attn.qkv.weight")
    assert (qkv["fan_in"], qkv["fan_out"]) == (256, 768)  # torch layout (out, in)


def test_table_and_summary_line(gpt: Path) -> None:
    code, out, _ = run("stats", str(gpt))
    assert code == 0 and "blocks.0.mlp.fc.weight" in out and "OK:" in out


def test_spec_targets(gpt: Path) -> None:
    assert run("stats", str(gpt), "--spec", str(GPT))[0] == 0
    doc = yaml.safe_load(GPT.read_text())
    doc["defaults"]["layout"] = "keras"  # the keras fan rule on torch-layout tensors
    for entry in doc["tensors"].values():
        entry.pop("layout", None)
    wrong = gpt.parent / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, out, _ = run("stats", str(gpt), "--spec", str(wrong), "--json")
    assert code == 3 and json.loads(out)["ok"] is False


def test_init_targets_for_a_foreign_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    w = (rng.uniform(-1, 1, (256, 512)) * np.sqrt(3 * 2.0 / 256)).astype(np.float32)
    path = tmp_path / "foreign.safetensors"
    save_file({"w": w}, str(path))
    assert run("stats", str(path), "--init", "he_uniform")[0] == 0
    code, out, _ = run("stats", str(path), "--init", "he_normal", "--json")  # wrong shape of law
    assert code == 3 and json.loads(out)["tensors"][0]["ok"] is False
    code, _, err = run("stats", str(path), "--init", "he_nromal")
    assert code == 2 and "he_normal" in err


def test_no_target_is_reported_not_failed(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": np.ones((100, 100), np.float32)}, str(path))
    code, out, _ = run("stats", str(path), "--json")
    assert code == 0
    assert json.loads(out)["tensors"][0]["target_std"] is None


def test_plot_writes_a_png(gpt: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "h.png"
    assert run("stats", str(gpt), "--plot", str(png))[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_saves_its_check_report(tmp_path: Path) -> None:
    out, report = tmp_path / "w.npz", tmp_path / "report.json"
    assert run("generate", str(GPT), "-o", str(out), "-q", "--report", str(report))[0] == 0
    doc = json.loads(report.read_text())
    assert doc["ok"] is True and len(doc["tensors"]) == 15


def test_missing_file_is_exit_1(tmp_path: Path) -> None:
    code, _, err = run("stats", str(tmp_path / "nope.safetensors"))
    assert code in (1, 2) and err.startswith("Error: ") and err.count("\n") == 1
