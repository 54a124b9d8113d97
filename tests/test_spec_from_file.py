"""`varscale spec FILE`: a spec read from a weight file regenerates the same layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from safetensors.numpy import save_file

from varscale_cli.cli import cli
from varscale_cli.formats import open_weights
from varscale_cli.frameworks import spec_from_tensors

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def layout_of(path: Path) -> list[tuple[str, tuple[int, ...], str]]:
    with open_weights(path) as wf:
        return sorted((i.name, tuple(i.shape), str(i.dtype)) for i in wf.tensors())


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".h5"])
@pytest.mark.parametrize("layout", ["torch", "keras"])
def test_spec_from_a_file_regenerates_its_layout(
    tmp_path: Path, config: Path, suffix: str, layout: str
) -> None:
    first = tmp_path / f"a{suffix}"
    assert run("generate", str(config), "-o", str(first), "-q", "--no-check")[0] == 0
    code, text, err = run("spec", str(first), "--layout", layout)
    assert code == 0, err
    spec = tmp_path / "from_file.yaml"
    spec.write_text(text)
    second = tmp_path / f"b{suffix}"
    code, _, err = run("generate", str(spec), "-o", str(second), "-q")
    assert code == 0, err
    assert layout_of(second) == layout_of(first)


def test_rules_are_visible_and_exceptions_explicit() -> None:
    doc, skipped = spec_from_tensors(
        [
            ("tok_emb.weight", (100, 16), "float32"),
            ("blocks.0.ln_1.weight", (16,), "float32"),
            ("blocks.0.ln_1.bias", (16,), "float32"),
            ("blocks.0.fc.weight", (64, 16), "float32"),
            ("blocks.0.fc.bias", (64,), "float32"),
            ("scale", (16,), "float32"),  # 1-D, no telling name: not a kernel, so zeros
            ("steps", (), "int64"),
        ],
        layout="torch",
    )
    assert skipped == {"steps": "int64"}
    assert {r["match"] for r in doc["rules"]} == {"*bias", "*ln*.weight", "*emb*"}
    assert doc["defaults"]["initializer"]["name"] == "torch.kaiming_uniform"
    explicit = {n: e["initializer"] for n, e in doc["tensors"].items() if "initializer" in e}
    assert explicit == {"scale": "zeros"}  # the default (a kernel init) would be wrong for it


def test_keras_layout_defaults() -> None:
    doc, _ = spec_from_tensors(
        [
            ("dense/kernel", (8, 4), "float32"),
            ("dense/bias", (4,), "float32"),
            ("bn/gamma", (4,), "float32"),
            ("bn/moving_variance", (4,), "float32"),
            ("embedding/embeddings", (50, 8), "bfloat16"),
        ],
        layout="keras",
    )
    assert doc["defaults"]["initializer"] == "glorot_uniform"
    rules = {r["match"]: r["initializer"] for r in doc["rules"]}
    assert rules["*gamma"] == "ones" and rules["*bias"] == "zeros"
    assert rules["*emb*"]["name"] == "random_uniform"
    assert doc["tensors"]["embedding/embeddings"]["dtype"] == "bfloat16"


def test_non_float_tensors_are_listed_as_comments(tmp_path: Path) -> None:
    path = tmp_path / "mixed.safetensors"
    save_file({"w": np.zeros((4, 3), np.float32), "ids": np.arange(5, dtype=np.int64)}, str(path))
    code, text, _ = run("spec", str(path))
    assert code == 0
    assert "# left out: ids (int64" in text
    doc = yaml.safe_load(text)
    assert list(doc["tensors"]) == ["w"]


def test_file_without_float_tensors_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "ints.safetensors"
    save_file({"ids": np.arange(5, dtype=np.int64)}, str(path))
    code, _, err = run("spec", str(path))
    assert code == 1 and err.startswith("Error: ") and "no float tensors" in err
