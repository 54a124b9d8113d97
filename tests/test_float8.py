"""float8 outputs (issue 13): float8_e4m3fn and float8_e5m2 sampled in float32, rounded to
nearest even with saturation, written by every format, judged by stats against the exact law of
the rounded values, with a warning when most values would be subnormal or zero."""

from __future__ import annotations

import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from test_sampling import sha256_le

from varscale_cli.cli import cli
from varscale_cli.core import initializers as I
from varscale_cli.core import stream
from varscale_cli.core.distributions import Distribution
from varscale_cli.core.rounding import SATURATING, round_to
from varscale_cli.formats import open_weights
from varscale_cli.stats.law import stored_law

F8 = ("float8_e4m3fn", "float8_e5m2")


def _all_values(dtype: str) -> np.ndarray:
    vals = np.arange(256, dtype=np.uint8).view(getattr(ml_dtypes, dtype)).astype(np.float64)
    return np.unique(vals[np.isfinite(vals)])


@pytest.mark.parametrize("dtype", F8)
def test_the_float32_cast_is_exact_round_to_nearest_even(dtype: str) -> None:
    """The sampler's cast (ml_dtypes) is the exact scalar rounding of core.rounding on every
    midpoint between neighbours, one float32 ulp either side, and 10^6 random float32s."""
    vals = _all_values(dtype)
    mids = ((vals[:-1] + vals[1:]) / 2).astype(np.float32)
    rng = np.random.default_rng(8)
    x = rng.integers(0, 2**32, size=1_000_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x) & (np.abs(x) <= SATURATING[dtype])]
    x = np.concatenate((x, mids, np.nextafter(mids, np.float32(np.inf)),
                        np.nextafter(mids, np.float32(-np.inf))))
    got = x.astype(getattr(ml_dtypes, dtype)).astype(np.float64)
    want = np.array([round_to(float(v), dtype) for v in x])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", F8)
def test_saturation_never_gives_nan_or_inf(dtype: str) -> None:
    limit = SATURATING[dtype]
    assert limit == {"float8_e4m3fn": 448.0, "float8_e5m2": 57344.0}[dtype]
    const = I.Constant(1e6)((8,), dtype=dtype).astype(np.float64)
    assert (const == limit).all()
    assert (I.Constant(-1e6)((8,), dtype=dtype).astype(np.float64) == -limit).all()
    wide = I.RandomUniform(-1e6, 1e6, seed=1)((4096,), dtype=dtype).astype(np.float64)
    assert np.isfinite(wide).all() and wide.max() == limit and wide.min() == -limit
    # Without the clamp ml_dtypes would give NaN (e4m3fn) or inf (e5m2) there.
    assert not np.isfinite(np.float32(limit * 1.2).astype(getattr(ml_dtypes, dtype)))
    top = I.RandomUniform(0.0, 1.0, seed=2)((50_000,), dtype=dtype).astype(np.float64)
    assert top.max() < 1.0  # [minval, maxval): the float8 just below 1, not 1 itself


GOLDEN_F8 = {
    ("truncated_normal", "float8_e4m3fn"):
        "2e274f6e40a19c0ec2a63bb6be3a48efc7515aabd36926820e3fb2c5eaa5806b",
    ("truncated_normal", "float8_e5m2"):
        "f9bff0a4cdb378ec9a3e706db9d9286b1c24aec386fa06bcb5fa1d352070dd28",
    ("normal", "float8_e4m3fn"):
        "f6a41ce411926d0bbdc4363bb07437d603eca7baaf5ca412007a7967927e7571",
    ("normal", "float8_e5m2"):
        "3ca1251f2711668ccb82115849366fe306f5624ac3aebadf9da43c49929a48dd",
    ("uniform", "float8_e4m3fn"):
        "c80d27b09951575e64487db182dec4f3a0da1283bdf6666e69d6a4c11d2669d3",
    ("uniform", "float8_e5m2"):
        "be356371da0f829b598965f84868d44166974f95efce6e30577dc9357a8325fe",
}



@pytest.mark.parametrize(("kind", "dtype"), sorted(GOLDEN_F8))
def test_golden_hashes(kind: str, dtype: str, transform_path: str) -> None:
    """Seed 1234, stream "golden", scale 0.1 (as test_sampling's goldens), stored as float8."""
    sampler = stream.TensorSampler(Distribution(kind, 0.1), dtype, 1234, "golden")
    assert sha256_le(stream.sample(sampler, (4096,))) == GOLDEN_F8[(kind, dtype)]


@pytest.mark.parametrize("dtype", F8)
def test_float8_is_the_rounded_float32_stream(dtype: str) -> None:
    """The float8 tensor is exactly the float32 tensor of the same seed, cast by the real
    torch (its float8 conversion rounds to nearest even; in range, no saturation involved)."""
    torch = pytest.importorskip("torch")
    init = I.get("he_normal", seed=4)
    f32 = init((64, 128), dtype="float32")
    ours = init((64, 128), dtype=dtype)
    theirs = torch.from_numpy(f32).to(getattr(torch, dtype)).view(torch.uint8).numpy()
    np.testing.assert_array_equal(ours.view(np.uint8), theirs)


def test_stats_law_is_the_rounded_law() -> None:
    """The law stats uses puts on each float8 value the probability of the interval rounding
    to it; its variance is not the continuous one, and it sums to 1."""
    dist = Distribution("truncated_normal", math.sqrt(1.0 / 4096) / 0.87962566103423978)
    law = stored_law(dist, np.dtype(ml_dtypes.float8_e4m3fn))
    assert law.pmf is not None and law.pmf.sum() == pytest.approx(1.0, abs=1e-12)
    assert abs(law.std / dist.std - 1.0) > 1e-4  # rounding moves it measurably
    sample = I.get("lecun_normal", seed=3)((4096, 1024), dtype="float8_e4m3fn").astype(np.float64)
    se = law.std * math.sqrt((law.kurtosis - 1.0) / (4.0 * sample.size))
    assert abs(sample.std() - law.std) < 5 * se


def _spec(tmp_path: Path, tensors: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "seed": 7, "tensors": tensors}))
    return path


TENSORS = {
    "a": {"shape": [256, 256], "dtype": "float8_e4m3fn", "initializer": "he_normal"},
    "b": {"shape": [256, 256], "dtype": "float8_e5m2", "initializer": "glorot_uniform"},
    "c": {"shape": [64], "dtype": "float8_e4m3fn",
          "initializer": {"name": "constant", "value": 1000.0}},
}


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".h5"])
def test_every_format_writes_float8_end_to_end(tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"w{suffix}"
    result = CliRunner().invoke(cli, ["generate", str(_spec(tmp_path, TENSORS)), "-o", str(out),
                                      "-q"])
    assert result.exit_code == 0, result.output  # includes the statistical check
    with open_weights(out) as wf:
        infos = {t.name: t for t in wf.tensors()}
        assert infos["a"].dtype == np.dtype(ml_dtypes.float8_e4m3fn)
        assert infos["b"].dtype == np.dtype(ml_dtypes.float8_e5m2)
        a = np.concatenate(list(wf.iter_chunks("a", 1 << 20)))
    expected = I.get("he_normal", seed=7)((256, 256), dtype="float8_e4m3fn", stream="a")
    np.testing.assert_array_equal(a.view(np.uint8), expected.reshape(-1).view(np.uint8))
    assert CliRunner().invoke(cli, ["verify", str(out)]).exit_code == 0
    doc = json.loads(CliRunner().invoke(cli, ["stats", str(out), "--json"]).stdout)
    c = next(t for t in doc["tensors"] if t["name"] == "c")
    assert c["min"] == c["max"] == 448.0 and c["ok"] is True


def test_safetensors_float8_loads_in_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    out = tmp_path / "w.safetensors"
    assert CliRunner().invoke(cli, ["generate", str(_spec(tmp_path, TENSORS)), "-o", str(out),
                                    "-q", "--no-check"]).exit_code == 0
    header = json.loads(out.read_bytes()[8:8 + int.from_bytes(out.read_bytes()[:8], "little")])
    assert header["a"]["dtype"] == "F8_E4M3" and header["b"]["dtype"] == "F8_E5M2"
    loaded = load_file(out)
    assert loaded["a"].dtype == torch.float8_e4m3fn and loaded["b"].dtype == torch.float8_e5m2
    want = I.get("glorot_uniform", seed=7)((256, 256), dtype="float8_e5m2", stream="b")
    np.testing.assert_array_equal(loaded["b"].view(torch.uint8).numpy(), want.view(np.uint8))


def test_stats_rejects_a_float8_file_of_another_law(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    assert CliRunner().invoke(cli, ["generate", str(_spec(tmp_path, TENSORS)), "-o", str(out),
                                    "-q"]).exit_code == 0
    wrong = _spec(tmp_path, {**TENSORS, "a": {**TENSORS["a"], "initializer": "lecun_normal"}})
    result = CliRunner().invoke(cli, ["stats", str(out), "--spec", str(wrong), "--json"])
    assert result.exit_code == 3
    assert {t["name"]: t["ok"] for t in json.loads(result.stdout)["tensors"]}["a"] is False


def test_mostly_subnormal_spec_warns_with_the_fraction(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {
        "big": {"shape": [4096, 4096], "dtype": "float8_e4m3fn", "initializer": "lecun_normal"},
        "fine": {"shape": [256, 256], "dtype": "float8_e4m3fn", "initializer": "he_normal"},
        "wide": {"shape": [4096, 4096], "dtype": "float8_e5m2", "initializer": "lecun_normal"},
    })
    result = CliRunner().invoke(cli, ["generate", str(spec), "--dry-run"])
    assert result.exit_code == 0
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("Warning:")]
    assert len(lines) == 1 and "tensor 'big'" in lines[0]
    frac = float(lines[0].split("% of its")[0].rsplit(" ", 1)[1]) / 100
    # The fraction is the law's: the tensor itself shows it (N = 16.8 M, 5 sd ~ 6e-4).
    values = I.get("lecun_normal", seed=7)((4096, 4096), dtype="float8_e4m3fn", stream="big")
    small = np.mean(np.abs(values.astype(np.float64)) < 2.0**-6)
    assert abs(small - frac) < 1.5e-3 and frac > 0.5
