"""`varscale verify`: identical files pass, any changed bit is found and named."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from varscale_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
MLP = ROOT / "configs" / "mlp.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(params=[".safetensors", ".npz", ".h5"])
def written(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    out = tmp_path / f"mlp{request.param}"
    assert run("generate", str(MLP), "-o", str(out), "-q", "--no-check")[0] == 0
    return out


def test_identical_file_passes_from_provenance_and_from_spec(written: Path) -> None:
    code, _, err = run("verify", str(written))
    assert code == 0 and "identical" in err
    code, out, _ = run("verify", str(written), str(MLP), "--json", "--workers", "1")
    assert code == 0 and json.loads(out)["ok"] is True


def test_another_seed_is_caught(written: Path) -> None:
    code, out, _ = run("verify", str(written), str(MLP), "--seed", "99", "--json")
    doc = json.loads(out)
    assert code == 3 and doc["ok"] is False
    assert doc["first_difference"]["index"] == 0


def test_one_flipped_bit_is_named(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    run("generate", str(MLP), "-o", str(out), "-q", "--no-check")
    data = bytearray(out.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + header_len])
    name = "hidden_2/kernel"
    begin = header[name]["data_offsets"][0]
    element = 1234
    data[8 + header_len + begin + 4 * element] ^= 1  # lowest mantissa bit of one float32
    out.write_bytes(bytes(data))
    code, stdout, err = run("verify", str(out), "--json")
    first = json.loads(stdout)["first_difference"]
    assert code == 3
    assert first["tensor"] == name and first["index"] == element
    shape = header[name]["shape"]
    assert first["position"] == [element // shape[1], element % shape[1]]


def test_tensor_sets_that_differ_are_listed(tmp_path: Path) -> None:
    doc = yaml.safe_load(MLP.read_text())
    out = tmp_path / "w.npz"
    run("generate", str(MLP), "-o", str(out), "-q", "--no-check")
    name = next(iter(doc["tensors"]))
    doc["tensors"].pop(name)
    doc["tensors"]["brand_new"] = {"shape": [3]}
    spec = tmp_path / "other.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, stdout, _ = run("verify", str(out), str(spec), "--json")
    report = json.loads(stdout)
    assert code == 3 and report["extra"] == [name] and report["missing"] == ["brand_new"]


def test_sharded_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "ckpt"
    run("generate", str(ROOT / "configs" / "gpt_block.yaml"), "-o", str(out), "-q", "--num-shards", "2", "--no-check")
    assert run("verify", str(out))[0] == 0
    assert run("verify", str(out / "model.safetensors.index.json"))[0] == 0


def test_file_without_provenance_needs_a_spec(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(path))
    code, _, err = run("verify", str(path))
    assert code == 1 and err.startswith("Error: ") and "SPEC" in err


def test_edited_provenance_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "w.h5"
    run("generate", str(MLP), "-o", str(out), "-q", "--no-check")
    import h5py

    with h5py.File(out, "r+") as f:
        prov = json.loads(f.attrs["varscale"])
        prov["tensors"]["hidden_1/kernel"]["distribution"]["scale"] *= 2
        f.attrs["varscale"] = json.dumps(prov)
    code, _, err = run("verify", str(out))
    assert code == 1 and "edited" in err


def test_other_stream_version_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "w.h5"
    run("generate", str(MLP), "-o", str(out), "-q", "--no-check")
    import h5py

    with h5py.File(out, "r+") as f:
        prov = json.loads(f.attrs["varscale"])
        prov["stream_id"] = "varscale-philox4x64-10-v0"
        f.attrs["varscale"] = json.dumps(prov)
    code, _, err = run("verify", str(out))
    assert code == 1 and "v0" in err


def _spec(path: Path, small: list[int]) -> Path:
    """Tensors of 2 chunks, 1 chunk and 2 chunks (1 Mi elements each), in that order."""
    path.write_text(json.dumps({
        "version": 1, "seed": 5,
        "defaults": {"dtype": "float32", "initializer": "glorot_uniform"},
        "tensors": {"a": {"shape": [1200, 1000]}, "b": {"shape": small}, "c": {"shape": [1500, 1000]}},
    }))
    return path


@pytest.mark.parametrize("workers", ["1", "2"])
def test_one_job_stream_across_tensors_stays_aligned(tmp_path: Path, workers: str) -> None:
    """verify runs one job stream through every tensor (the workers sample into the next
    tensor while one is compared): a difference in the last chunk of the last tensor is still
    found at its index, and a tensor of the wrong shape stops the comparison right there."""
    spec = _spec(tmp_path / "s.json", [7])
    out = tmp_path / "w.safetensors"
    assert run("generate", str(spec), "-o", str(out), "-q", "--no-check")[0] == 0
    code, stdout, _ = run("verify", str(out), "--json", "--workers", workers)
    assert code == 0 and json.loads(stdout)["checked"] == ["a", "b", "c"]
    data = bytearray(out.read_bytes())
    header_len = struct.unpack("<Q", data[:8])[0]
    begin = json.loads(data[8 : 8 + header_len])["c"]["data_offsets"][0]
    element = 1_400_000  # in c's second chunk
    data[8 + header_len + begin + 4 * element] ^= 1
    out.write_bytes(bytes(data))
    code, stdout, _ = run("verify", str(out), "--json", "--workers", workers)
    doc = json.loads(stdout)
    assert code == 3 and doc["checked"] == ["a", "b", "c"]
    assert doc["first_difference"]["tensor"] == "c" and doc["first_difference"]["index"] == element
    code, stdout, _ = run("verify", str(out), str(_spec(tmp_path / "t.json", [8])), "--json", "--workers", workers)
    doc = json.loads(stdout)
    assert code == 3 and doc["checked"] == ["a", "b"]
    assert doc["first_difference"]["tensor"] == "b" and "[7]" in doc["first_difference"]["reason"]
