"""Every `--json` document is what docs/json.md says: real outputs of every command validate
against the schemas in docs/json/, and the page names every field of every schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file, save_file

from varscale_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "json"
PAGE = (ROOT / "docs" / "json.md").read_text()
CONFIGS = ROOT / "configs"
#: Commands whose whole output already is a document (docs/json.md says so).
DOCUMENT_COMMANDS = {"schema": "the spec's JSON Schema", "spec": "a YAML spec"}


def schema(command: str) -> dict:
    return json.loads((DOCS / f"{command}.schema.json").read_text())


def run_json(*args: str, code: int = 0) -> dict:
    result = CliRunner(env={"COLUMNS": "100"}).invoke(cli, [*args, "--json"], terminal_width=100)
    assert result.exit_code == code, result.stderr
    doc = json.loads(result.stdout)  # exactly one document: json.loads refuses trailing text
    jsonschema.validate(doc, schema(args[0]), cls=jsonschema.Draft202012Validator)
    return doc


def json_commands() -> list[str]:
    return sorted(
        name for name, cmd in cli.commands.items()
        if any(isinstance(p, click.Option) and "--json" in p.opts for p in cmd.params)
    )


def test_every_result_command_has_json_a_schema_and_a_section() -> None:
    assert set(json_commands()) | set(DOCUMENT_COMMANDS) == set(cli.commands)
    for name in json_commands():
        jsonschema.Draft202012Validator.check_schema(schema(name))
        assert f"## `varscale {name} --json`" in PAGE
        assert f"json/{name}.schema.json" in PAGE
    for name in DOCUMENT_COMMANDS:
        assert f"`varscale {name}`" in PAGE


def _fields(node: object) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            out.add(key)
            out |= _fields(value)
        for key in ("items", "oneOf"):
            sub = node.get(key)
            for s in sub if isinstance(sub, list) else [sub] if sub else []:
                out |= _fields(s)
    return out


@pytest.mark.parametrize("command", json_commands())
def test_the_page_names_every_field(command: str) -> None:
    section = PAGE.split(f"## `varscale {command} --json`")[1].split("\n## ")[0]
    named = set(re.findall(r"`([a-z_0-9]+)`", section))
    missing = _fields(schema(command)) - named
    if command == "stats":  # the per-test fields are explained in docs/stats.md
        stats_md = (ROOT / "docs" / "stats.md").read_text()
        missing = {f for f in missing if f"`{f}`" not in stats_md}
    assert not missing, f"docs/json.md does not describe {sorted(missing)} of `{command} --json`"


def test_generate_documents(tmp_path: Path) -> None:
    spec = str(CONFIGS / "gpt_block.yaml")
    dry = run_json("generate", spec, "--dry-run")
    assert dry["output"] is None and dry["check"] is None and dry["shards"] is None
    one = run_json("generate", spec, "-o", str(tmp_path / "w.npz"), "-q")
    assert one["format"] == "npz" and one["check"]["ok"]
    plan = run_json("generate", spec, "-o", str(tmp_path / "ck"), "--max-shard-size", "1MiB", "--dry-run")
    assert plan["shards"]["max_shard_size"]["bytes"] == 2**20
    task = run_json("generate", spec, "-o", str(tmp_path / "ck"), "--num-shards", "3", "--shard-index", "2", "-q")
    assert task["written"] == [str(tmp_path / "ck" / "model-00003-of-00003.safetensors")]
    assert task["check"] is None and task["shards"]["this_run"] == [2]


def test_stats_and_verify_documents(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    run_json("generate", str(CONFIGS / "mlp.yaml"), "-o", str(path), "-q")
    assert run_json("stats", str(path))["ok"] is True
    assert run_json("verify", str(path))["first_difference"] is None
    # A changed element: verify names it (exit 3), stats still prints its document.
    tensors = load_file(str(path))
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        metadata = f.metadata()
    tensors["hidden_1/kernel"] = tensors["hidden_1/kernel"].copy()
    tensors["hidden_1/kernel"][3, 5] += np.float32(1.0)
    save_file(tensors, str(path), metadata=metadata)
    bad = run_json("verify", str(path), code=3)
    assert bad["first_difference"]["tensor"] == "hidden_1/kernel"
    assert bad["first_difference"]["position"] == [3, 5]
    run_json("stats", str(path), "--init", "zeros", code=3)


@pytest.mark.parametrize(
    "args",
    [
        ["3x3x64x128", "he_normal"],
        ["--shape", "256,784", "--init", "{name: torch.kaiming_uniform, a: 2.23606797749979}", "--layout", "torch"],
        ["8x256x784", "glorot_uniform", "--in-axis", "2", "--out-axis", "1", "--batch-axis", "0"],
        ["256", "zeros"],
    ],
)
def test_explain_documents(args: list[str]) -> None:
    doc = run_json("explain", *args)
    assert [c["name"].split()[0] for c in doc["conventions"]] == ["keras", "torch", "JAX"]


def test_presets_document() -> None:
    doc = run_json("presets")
    he = next(p for p in doc["presets"] if p["name"] == "he_normal")
    assert he["aliases"] == ["kaiming_normal"] and he["scale"] == 2.0
