"""End-to-end tests of `varscale generate` and the small commands, on real files."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from loaders import load_any
from safetensors.numpy import load_file

from varscale_cli import __version__
from varscale_cli.cli import cli

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
FORMATS = {"safetensors": ".safetensors", "npz": ".npz", "hdf5": ".h5"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_spec(tmp_path: Path, doc: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


SMALL = {
    "version": 1,
    "seed": 3,
    "defaults": {"dtype": "float32", "initializer": "he_normal"},
    "rules": [{"match": "*bias", "initializer": "zeros"}],
    "tensors": {
        "a/kernel": {"shape": [64, 32]},
        "a/bias": {"shape": [32]},
        "b/kernel": {"shape": [32, 16], "dtype": "bfloat16", "initializer": "glorot_uniform"},
        "c": {"shape": [8, 4, 4], "dtype": "float16", "initializer": "lecun_normal"},
        "d": {"shape": [5, 7], "dtype": "float64", "initializer": "he_uniform"},
    },
}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_shipped_configs_generate_and_load(tmp_path: Path, config: Path, fmt: str) -> None:
    out = tmp_path / f"w{FORMATS[fmt]}"
    code, _, err = run("generate", str(config), "-o", str(out), "--quiet")
    assert code == 0, err
    tensors = load_any(out)
    spec = yaml.safe_load(config.read_text())
    assert len(tensors) >= len(spec["tensors"])


def test_same_values_in_every_format_and_same_bytes_every_run(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    loaded = {}
    for fmt, suffix in FORMATS.items():
        first, second = tmp_path / f"1{suffix}", tmp_path / f"2{suffix}"
        assert run("generate", str(spec), "-o", str(first), "-q")[0] == 0
        assert run("generate", str(spec), "-o", str(second), "-q", "--workers", "1")[0] == 0
        assert sha(first) == sha(second), fmt
        loaded[fmt] = load_any(first)
    for name, ref in loaded["safetensors"].items():
        for fmt in ("npz", "hdf5"):
            got = loaded[fmt][name]
            assert got.dtype == ref.dtype and got.shape == ref.shape
            assert got.tobytes() == ref.tobytes(), (fmt, name)


def test_reordering_or_removing_tensors_changes_no_other_tensor(tmp_path: Path) -> None:
    full = write_spec(tmp_path, SMALL, "full.yaml")
    shuffled = dict(SMALL)
    items = list(SMALL["tensors"].items())
    shuffled["tensors"] = dict(reversed(items[1:]))  # drop one, reverse the rest
    partial = write_spec(tmp_path, shuffled, "partial.yaml")
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    assert run("generate", str(full), "-o", str(a), "-q")[0] == 0
    assert run("generate", str(partial), "-o", str(b), "-q")[0] == 0
    ta, tb = load_file(str(a)), load_file(str(b))
    for name in tb:
        assert ta[name].tobytes() == tb[name].tobytes()


def test_seed_option_overrides_spec(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    a, b, c = (tmp_path / f"{x}.safetensors" for x in "abc")
    run("generate", str(spec), "-o", str(a), "-q")
    run("generate", str(spec), "-o", str(b), "-q", "--seed", "3")
    run("generate", str(spec), "-o", str(c), "-q", "--seed", "4")
    assert sha(a) == sha(b) != sha(c)


def test_provenance_is_recorded(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    out = tmp_path / "w.safetensors"
    run("generate", str(spec), "-o", str(out), "-q")
    from safetensors import safe_open

    with safe_open(str(out), framework="np") as f:
        meta = f.metadata()
    assert meta["format"] == "pt"
    prov = json.loads(meta["varscale"])
    assert prov["seed"] == 3
    assert prov["spec_sha256"] == hashlib.sha256(spec.read_bytes()).hexdigest()
    assert prov["varscale_version"] == __version__
    kernel = prov["tensors"]["a/kernel"]
    assert (kernel["fan_in"], kernel["fan_out"]) == (64, 32)
    assert kernel["target_std"] == pytest.approx((2 / 64) ** 0.5, rel=1e-15)


def test_existing_output_is_never_clobbered_without_force(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"precious")
    code, _, err = run("generate", str(spec), "-o", str(out), "-q")
    assert code == 1
    assert err.startswith("Error: ") and err.count("\n") == 1 and "--force" in err
    assert out.read_bytes() == b"precious"
    assert run("generate", str(spec), "-o", str(out), "-q", "--force")[0] == 0
    assert out.read_bytes() != b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml", "w.safetensors"]


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ({**SMALL, "tensors": {"x": {"shape": [3, -1]}}}, "-1"),
        ({**SMALL, "tensors": {"x": {"shpe": [3]}}}, "shape"),
        ({**SMALL, "tensors": {"x": {"shape": [3], "initializer": "he_nromal"}}}, "he_normal"),
        ({**SMALL, "seed": -1}, "seed"),
    ],
)
def test_bad_spec_is_one_error_line_exit_2(tmp_path: Path, doc: dict, fragment: str) -> None:
    spec = write_spec(tmp_path, doc)
    out = tmp_path / "w.safetensors"
    code, stdout, err = run("generate", str(spec), "-o", str(out))
    assert code == 2, err
    assert err.startswith("Error: ") and err.count("\n") == 1, err
    assert fragment in err and "spec.yaml" in err
    assert not out.exists()


def test_missing_seed_is_a_usage_error(tmp_path: Path) -> None:
    doc = {k: v for k, v in SMALL.items() if k != "seed"}
    spec = write_spec(tmp_path, doc)
    code, _, err = run("generate", str(spec), "-o", str(tmp_path / "w.npz"))
    assert code == 2 and "--seed" in err
    assert run("generate", str(spec), "-o", str(tmp_path / "w.npz"), "--seed", "1", "-q")[0] == 0


def test_unknown_suffix_and_missing_spec(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    code, _, err = run("generate", str(spec), "-o", str(tmp_path / "w.bin"))
    assert code == 2 and "--format" in err
    code, _, err = run("generate", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "w.npz"))
    assert code == 2 and "nope.yaml" in err and err.startswith("Error: ")


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    code, out, _ = run("generate", str(spec), "--dry-run")
    assert code == 0
    for word in ("a/kernel", "he_normal", "64", "bfloat16", "5 tensors"):
        assert word in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


def test_presets_schema_version() -> None:
    code, out, _ = run("presets")
    assert code == 0 and "he_normal" in out and "Delving Deep" in out
    code, out, _ = run("schema")
    assert code == 0 and json.loads(out)["type"] == "object"
    code, out, _ = run("--version")
    assert code == 0 and __version__ in out


def test_python_dash_m_runs_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "varscale_cli", "--version"], capture_output=True, text=True
    )
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_no_fsync_writes_the_same_bytes(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SMALL)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    assert run("generate", str(spec), "-o", str(a), "-q")[0] == 0
    assert run("generate", str(spec), "-o", str(b), "-q", "--no-fsync")[0] == 0
    assert sha(a) == sha(b)
