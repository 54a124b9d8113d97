"""`generate --dry-run` refuses what a run refuses and prints the shard plan; sharded folders
refuse file suffixes and clean (only) what an earlier varscale plan left. At COLUMNS=100."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file, save_file

from varscale_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
GPT = ROOT / "configs" / "gpt_block.yaml"
WIDTH = 100


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": str(WIDTH)}).invoke(cli, list(args), terminal_width=WIDTH)
    return result.exit_code, result.stdout, result.stderr


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# Each case is refused identically with and without --dry-run, and the dry run writes nothing.
REFUSED = [
    (["--num-shards", "3", "--shard-index", "5"], 2, "--shard-index 5 is out of range: the plan has 3"),
    (["--max-shard-size", "1MB", "--shard-index", "9"], 2, "out of range"),
    (["--max-shard-size", "500M"], 2, "'M' alone is not a unit"),
    (["--max-shard-size", "5Gb"], 2, "bits in transformers"),
    (["--num-shards", "2", "--max-shard-size", "1MB"], 2, "either"),
    (["--num-shards", "99"], 2, "more than the spec's 15 tensors"),
    (["--shard-index", "0"], 2, "need --max-shard-size or --num-shards"),
    (["--num-shards", "2", "--format", "npz"], 2, "safetensors only"),
]


@pytest.mark.parametrize(("extra", "code", "message"), REFUSED)
def test_dry_run_refuses_what_the_run_refuses(tmp_path: Path, extra: list[str], code: int, message: str) -> None:
    out = tmp_path / "ckpt"
    for dry in (["--dry-run"], []):
        got, _, err = run("generate", str(GPT), "-o", str(out), "-q", *extra, *dry)
        assert (got, err.count("\n")) == (code, 1), err
        assert err.startswith("Error: ") and message in err
    assert not out.exists()


def test_dry_run_checks_the_output_like_a_run(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"keep")
    for dry in (["--dry-run"], []):
        code, _, err = run("generate", str(GPT), "-o", str(out), *dry)
        assert code == 1 and "already exists; use --force" in err
    assert out.read_bytes() == b"keep"
    code, _, err = run("generate", str(GPT), "-o", str(tmp_path / "missing" / "w.npz"), "--dry-run")
    assert code == 1 and "does not exist" in err


def test_dry_run_accepts_the_sizes_a_run_accepts(tmp_path: Path) -> None:
    code, out, err = run("generate", str(GPT), "--dry-run", "--max-shard-size", "5GiB")
    assert code == 0, err
    assert "5GiB = 5,368,709,120 bytes (binary: 1 GiB = 1024^3 bytes)" in out
    assert "1 shard(s)" in out and "model.safetensors" in out


def test_dry_run_prints_the_shard_plan_within_100_columns(tmp_path: Path) -> None:
    code, out, err = run(
        "generate", str(GPT), "-o", str(tmp_path / "ck"), "--num-shards", "3", "--shard-index", "1",
        "--dry-run",
    )
    assert code == 0, err
    plan = out[out.index("shard plan:"):].splitlines()
    assert plan[0] == "shard plan: 3 shard(s), 4,185,088 bytes (4.19 MB) of tensors"
    assert max(map(len, plan)) <= WIDTH
    assert "  0  model-00001-of-00003.safetensors      4 tensors  1,812,480 bytes (1.81 MB)" in plan[2]
    assert plan[3].split() == ["tok_emb.weight", "..", "blocks.0.attn.qkv.weight"]
    assert plan[4].startswith("*     1  model-00002-of-00003.safetensors")  # this run's shard
    assert "writes model-00002-of-00003.safetensors" in plan[-1]
    assert not (tmp_path / "ck").exists()


def _tensor_sizes() -> dict[str, int]:
    code, out, _ = run("generate", str(GPT), "--dry-run", "--json")
    assert code == 0
    return {t["name"]: t["bytes"] for t in json.loads(out)["tensors"]}


def test_dry_run_json_plan_is_what_the_run_writes(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    code, text, err = run("generate", str(GPT), "-o", str(out), "--max-shard-size", "1.5MB", "--dry-run", "--json")
    assert code == 0, err
    doc = json.loads(text)
    assert doc["schema_version"] == 1 and doc["dry_run"] is True and doc["written"] == []
    shards = doc["shards"]
    assert shards["max_shard_size"] == {
        "text": "1.5MB", "bytes": 1_500_000, "unit": "MB",
        "meaning": "1.5MB = 1,500,000 bytes (decimal: 1 MB = 1000^2 bytes)",
    }
    sizes = _tensor_sizes()
    for f in shards["files"]:
        assert f["bytes"] == sum(sizes[n] for n in f["tensors"])
        assert f["bytes"] <= 1_500_000 or len(f["tensors"]) == 1
    assert not out.exists()
    code, text, err = run("generate", str(GPT), "-o", str(out), "--max-shard-size", "1.5MB", "--json", "-q")
    assert code == 0, err
    written = json.loads(text)
    assert written["dry_run"] is False and written["check"]["ok"] is True
    assert written["shards"]["files"] == shards["files"]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    for f in shards["files"]:
        assert sorted(load_file(str(out / f["file"]))) == sorted(f["tensors"])
        assert all(index["weight_map"][n] == f["file"] for n in f["tensors"])


def test_a_file_suffix_is_refused_for_sharded_output(tmp_path: Path) -> None:
    for name in ("x.npz", "x.safetensors", "x.h5"):
        code, _, err = run("generate", str(GPT), "-o", str(tmp_path / name), "--num-shards", "2")
        assert code == 2 and "sharded output is a folder of safetensors" in err, err
        assert not (tmp_path / name).exists()


def test_force_with_another_shard_count_removes_the_old_shards(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    assert run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "3")[0] == 0
    keep = out / "README.md"
    keep.write_text("not a shard")
    before = files(out)
    code, _, err = run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "2")
    assert code == 1 and "another shard plan" in err and "--force" in err
    assert files(out) == before
    code, _, err = run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "2", "--force")
    assert code == 0, err
    assert files(out) == [
        "README.md", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    assert run("verify", str(out))[0] == 0
    # Down to one shard: the index and the two shards go, model.safetensors is what is read.
    code, _, err = run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "1", "--force")
    assert code == 0, err
    assert files(out) == ["README.md", "model.safetensors"]
    assert run("verify", str(out))[0] == 0


def test_a_stale_single_file_no_longer_shadows_new_shards(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    assert run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "1")[0] == 0
    code, _, err = run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "2", "--force")
    assert code == 0, err
    assert "model.safetensors" not in files(out)
    # A model.safetensors varscale did not write is never deleted, --force or not.
    foreign = out / "model.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(foreign))
    digest = hashlib.sha256(foreign.read_bytes()).hexdigest()
    for force in ([], ["--force"]):
        for dry in ([], ["--dry-run"]):
            code, _, err = run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "3", *force, *dry)
            assert code == 1, err
    assert "not written by varscale" in err
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == digest
    assert not any("-of-00003" in n for n in files(out))


def test_a_shard_named_like_ours_without_our_provenance_is_kept(tmp_path: Path) -> None:
    out = tmp_path / "ck"
    out.mkdir()
    impostor = out / "model-00001-of-00004.safetensors"
    save_file({"w": np.zeros(3, np.float32)}, str(impostor), metadata={"format": "pt"})
    code, _, err = run("generate", str(GPT), "-o", str(out), "-q", "--num-shards", "2", "--force")
    assert code == 1 and "not written by varscale" in err
    assert impostor.exists() and files(out) == [impostor.name]


def test_generate_json_single_file(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    code, text, err = run("generate", str(GPT), "-o", str(out), "--json")
    assert code == 0, err
    doc = json.loads(text)  # stdout is exactly one document
    assert doc["written"] == [str(out)] and doc["format"] == "safetensors" and doc["shards"] is None
    assert doc["check"]["ok"] is True and doc["check"]["counts"]["fail"] == 0
    fc = next(t for t in doc["tensors"] if t["name"] == "blocks.0.mlp.fc.weight")
    assert fc["shape"] == [1024, 256] and fc["fan_in"] == 256 and fc["bytes"] == 1024 * 256 * 4
    assert fc["std"] == pytest.approx((2.0 / 256) ** 0.5) and fc["file"] == "w.safetensors"
    assert fc["check"]["verdict"] == "pass"
    assert fc["check"]["std"] == pytest.approx(fc["std"], rel=0.02)
