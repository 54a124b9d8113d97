"""`varscale spec FILE`: a spec read from a weight file regenerates the same layout."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from safetensors.numpy import save_file

from varscale_cli.cli import cli
from varscale_cli.core.fans import LAYOUTS
from varscale_cli.formats import open_weights
from varscale_cli.frameworks import spec_from_tensors
from varscale_cli.frameworks.rules import KERAS, RULES

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


def test_every_layout_has_rules_and_a_cli_choice() -> None:
    assert tuple(RULES) == LAYOUTS
    choices = next(p for p in cli.commands["spec"].params if p.name == "layout").type.choices
    assert list(choices) == ["torch", "keras"] and sorted(choices) == sorted(LAYOUTS)
    with pytest.raises(ValueError, match=r"^layout 'jax' is not one of 'keras', 'torch'$"):
        spec_from_tensors([("w", (2, 2), "float32")], layout="jax")


@pytest.mark.parametrize(
    ("layout", "name", "shape", "initializer"),
    [
        ("torch", "bn.running_var", (4,), "ones"),
        ("torch", "bn_running_var", (4,), "zeros"),  # not a BatchNorm attribute: a lone vector
        ("torch", "fc.Bias", (4,), "zeros"),
        ("torch", "prelu.weight", (1,), "ones"),  # the hidden "every 1-D weight" rule
        ("torch", "Tok_Emb.weight", (8, 4), {"name": "random_normal", "mean": 0.0, "stddev": 1.0}),
        ("torch", "tok_emb.weight", (8, 4, 2), None),
        ("keras", "bn.gamma", (4,), "ones"),
        ("keras", "embedding/embeddings", (8, 4), {"name": "random_uniform", "minval": -0.05, "maxval": 0.05}),
        ("keras", "dense/kernel", (8, 4), None),
        ("keras", "dense/offset", (4,), "zeros"),
    ],
)
def test_per_tensor_decisions_follow_the_one_rule_table(
    layout: str, name: str, shape: tuple[int, ...], initializer: object
) -> None:
    assert RULES[layout].initializer_for(name, shape) == initializer
    doc, _ = spec_from_tensors([(name, shape, "float32")], layout=layout)
    entry = doc["tensors"][name]
    got = entry.get("initializer") or next(
        (r["initializer"] for r in doc.get("rules", []) if fnmatch.fnmatchcase(name, r["match"])),
        doc["defaults"]["initializer"],
    )
    assert got == (RULES[layout].default if initializer is None else initializer)


def test_keras_variable_fallbacks_name_the_variable_exactly() -> None:
    assert KERAS.variable_default("gamma", 1) == "ones"
    assert KERAS.variable_default("moving_variance", 1) == "ones"
    assert KERAS.variable_default("my_gamma", 1) == "zeros"
    assert KERAS.variable_default("embeddings", 2) == "glorot_uniform"
    assert KERAS.variable_default(None, 0) == "zeros"
