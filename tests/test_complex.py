"""Complex variance scaling (JAX's laws for complex64 / complex128), end to end.

The reference is JAX's source, jax/_src/nn/initializers.py (``variance_scaling`` with a
complex dtype, ``_complex_uniform``, ``_complex_truncated_normal``; the same functions are in
Keras 2's initializers_v2.py): JAX is not installed in the test venv, so `_jax_reference`
below transcribes those functions in numpy (libm exp / log / cos, numpy's generator) and the
tests compare distributions, never bytes (JAX's bits come from its own threefry stream).
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import h5py
import mpmath
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from safetensors.numpy import load_file

from varscale_cli import PartitionInfo, VarianceScaling
from varscale_cli.cli import cli
from varscale_cli.core import stream
from varscale_cli.core.distributions import Distribution, modulus_moments
from varscale_cli.core.stream import coefficients as co
from varscale_cli.core.stream.philox import raw_bits32, raw_words
from varscale_cli.core.stream.polar import _cos_sin_2pi
from varscale_cli.stats import check_tensor
from varscale_cli.stats.targets import Target
from varscale_cli.stats.tests import kolmogorov_sf

DISTS = ("truncated_normal", "untruncated_normal", "uniform")
DTYPES = ("complex64", "complex128")
LAWS = {"truncated_normal": "complex_truncated_normal", "untruncated_normal": "complex_normal",
        "uniform": "complex_uniform"}

# --- constants ---------------------------------------------------------------------------------


def test_constants_against_mpmath() -> None:
    mpmath.mp.dps = 40
    e4 = mpmath.exp(-4)
    assert co.EXP_M4 == float(e4)
    assert co.CMASS_2 == float(1 - e4)
    # E|z|^2 of the unit complex normal cut at |z| = 2, from its own integral (not the closed
    # form the code uses): int_0^2 r^2 * 2 r e^{-r^2} dr / (1 - e^-4).
    m2 = mpmath.quad(lambda r: r * r * 2 * r * mpmath.exp(-r * r), [0, 2]) / (1 - e4)
    # Within one ulp (2^-53 near 0.96) of the exact value: the fixed-order quotient rounds twice.
    assert abs(co.CTRUNC_STD_2 - mpmath.sqrt(m2)) <= 2.0**-53
    # JAX's divisor is sqrt(1 - 5 e^-4), the numerator alone (its literal's last digits are
    # off by 9e-14): its E|z|^2 is 1 / (1 - e^-4) = 1.018657 times the target.
    assert abs(co.JAX_CTRUNC_STD_2 - mpmath.sqrt(1 - 5 * e4)) <= 1e-13
    excess = (co.CTRUNC_STD_2 / co.JAX_CTRUNC_STD_2) ** 2
    assert abs(excess - 1 / (1 - e4)) <= 3e-13
    assert round(100 * (excess - 1), 2) == 1.87
    # The modulus moments against numerical integration of the CDF's density.
    for kind, density, top in (
        ("complex_normal", lambda r: r * mpmath.exp(-r * r / 2), mpmath.inf),
        ("complex_uniform", lambda r: 2 * r, 1),
        ("complex_truncated_normal", lambda r: 2 * r * mpmath.exp(-r * r) / (1 - e4), 2),
    ):
        got = modulus_moments(kind)
        for k, value in zip((2, 4, 6), got, strict=True):
            want = mpmath.quad(lambda r, k=k, f=density: r**k * f(r), [0, top])
            assert abs(value - float(want)) <= 1e-13 * float(want), (kind, k)


def test_phase_polynomials_are_accurate_and_exactly_symmetric() -> None:
    mpmath.mp.dps = 30
    u = (np.arange(1, 4097, dtype=np.float64) - 0.5) / 4096.0
    c, s = _cos_sin_2pi(u)
    want_c = np.array([float(mpmath.cos(2 * mpmath.pi * mpmath.mpf(x))) for x in u])
    want_s = np.array([float(mpmath.sin(2 * mpmath.pi * mpmath.mpf(x))) for x in u])
    assert np.max(np.abs(c - want_c)) <= 4e-16
    assert np.max(np.abs(s - want_s)) <= 4e-16
    assert np.max(np.abs(c * c + s * s - 1.0)) <= 5e-16
    # Octant symmetry is exact: u and 1 - u are conjugates, u and u + 1/2 opposites.
    half = u[: u.size // 2]
    c1, s1 = _cos_sin_2pi(1.0 - half)
    c2, s2 = _cos_sin_2pi(half + 0.5)
    c0, s0 = _cos_sin_2pi(half)
    assert np.array_equal(c1, c0) and np.array_equal(s1, -s0)
    assert np.array_equal(c2, -c0) and np.array_equal(s2, -s0)


# --- bytes -------------------------------------------------------------------------------------


def _sha(a: np.ndarray) -> str:
    """sha256 of the little-endian bytes of the real and imaginary parts, interleaved."""
    a = np.ascontiguousarray(a)
    w = a.dtype.itemsize // 2
    return hashlib.sha256(a.view(f"u{w}").astype(f"<u{w}").tobytes()).hexdigest()


#: Pinned like tests/test_sampling.py's GOLDEN: TensorSampler(Distribution(kind, 0.1), dtype,
#: 1234, "golden") over 4096 elements. A change needs a STREAM_ID bump.
GOLDEN = {
    ("complex_normal", "complex64"):
        "11d21a936eaa2a30e1e55a342f31171f42b1da21bd1956d08cc7f3a6a1f8d49a",
    ("complex_normal", "complex128"):
        "8dd788fd3786dfa9e2460561ac07493ba2b5c94820e3accd8380cc2d2228c976",
    ("complex_uniform", "complex64"):
        "498931261ca794a73009e865d058887d27281d3fcd94da16b6108bfce85159c5",
    ("complex_uniform", "complex128"):
        "f1d4209445df935ec57012aefc03560a79b11e6eb4c9701ddb510c1c78ec9e3a",
    ("complex_truncated_normal", "complex64"):
        "416f99e04959e1c2609ac93da2b83668497adb393952edf2bc1c3ba4fcdda397",
    ("complex_truncated_normal", "complex128"):
        "43df410ff76f1a809a3771645cafa2481ef1cd34a4fbe07937a9cd3074ba3a10",
}
#: VarianceScaling(2, fan_in, truncated_normal, seed=0, dtype=complex128)((64, 32),
#: stream="dense/kernel"): also pins the initializer's scale arithmetic (CTRUNC_STD_2).
GOLDEN_VS_C128 = "51e7bcb8eb78dd15f542404537e9a2f8511641da4960fbc116a55b1a5b42e7cd"



@pytest.mark.parametrize(("kind", "dtype"), sorted(GOLDEN))
def test_golden_hashes(kind: str, dtype: str, transform_path: str) -> None:
    sampler = stream.TensorSampler(Distribution(kind, 0.1), dtype, 1234, "golden")
    assert _sha(stream.sample(sampler, (4096,))) == GOLDEN[(kind, dtype)]


def test_golden_through_the_public_api(transform_path: str) -> None:
    init = VarianceScaling(2.0, "fan_in", "truncated_normal", seed=0, dtype="complex128")
    assert _sha(init((64, 32), stream="dense/kernel")) == GOLDEN_VS_C128


@pytest.mark.parametrize("dtype", DTYPES)
def test_normal_parts_are_the_real_stream_in_pairs(dtype: str) -> None:
    """Layout: a complex normal tensor of n elements is the real normal stream of 2n values of
    the parts' dtype (re0, im0, re1, ...), so it shares the real transforms bit for bit."""
    part = "float32" if dtype == "complex64" else "float64"
    z = stream.sample(stream.TensorSampler(Distribution("complex_normal", 0.3), dtype, 9, "t"), (777,))
    x = stream.sample(stream.TensorSampler(Distribution("normal", 0.3), part, 9, "t"), (1554,))
    assert np.array_equal(z.view(part), x)


@pytest.mark.parametrize("dtype", DTYPES)
def test_polar_layout_from_the_raw_bits(dtype: str) -> None:
    """Element i's modulus and phase come from stream values 2i and 2i + 1 (module docstring of
    core.stream.polar), recomputed here with mpmath from the raw bits."""
    mpmath.mp.dps = 30
    seed, name, radius = 5, "disk", 0.25
    sampler = stream.TensorSampler(Distribution("complex_uniform", radius), dtype, seed, name)
    start, n = 1000, 40
    got = np.empty(n, dtype=dtype)
    sampler.fill(start, got)
    key = stream.stream_key(seed, name)
    if dtype == "complex64":
        vals = raw_bits32(key, 2 * start, 2 * n)
        u = [(mpmath.mpf(int(b)) + 0.5) / 2**32 for b in vals]
        tol = 2.0**-23
    else:
        vals = raw_words(key, 2 * start, 2 * n)
        u = [(mpmath.mpf(int(w) >> 12) + 0.5) / 2**52 for w in vals]
        tol = 2.0**-50
    for i in range(n):
        r = radius * mpmath.sqrt(u[2 * i])
        want = complex(mpmath.mpc(r * mpmath.cos(2 * mpmath.pi * u[2 * i + 1]),
                                  r * mpmath.sin(2 * mpmath.pi * u[2 * i + 1])))
        assert abs(complex(got[i]) - want) <= tol * radius, i


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_addressable_partitions_and_numpy_path(dist: str, dtype: str) -> None:
    init = VarianceScaling(1.0, "fan_avg", dist, seed=11, dtype=dtype)
    whole = init((96, 40), stream="w")
    assert whole.dtype == np.dtype(dtype)
    part = init((30, 17), partition_info=PartitionInfo((96, 40), (50, 9)), stream="w")
    assert np.array_equal(part, whole[50:80, 9:26])
    with stream.native_path(False):
        assert np.array_equal(init((96, 40), stream="w"), whole)
    # A different chunking of the flat range: odd starts, tiny scratch blocks.
    sampler = stream.TensorSampler(init.law(68.0, 68.0, dtype), dtype, 11, "w")
    flat = whole.reshape(-1)
    out = np.empty(333, dtype=dtype)
    sampler.fill(1001, out, stream.Scratch(6))
    assert np.array_equal(out, flat[1001:1334])


# --- laws --------------------------------------------------------------------------------------


def _jax_reference(dist: str, var: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """jax.nn.initializers.variance_scaling(..., dtype=complex) transcribed in numpy: its
    `_complex_uniform` (r = sqrt(2 u), times sqrt(var)), `random.normal` for a complex dtype
    (parts N(0, 1/2), times sqrt(var)) and `_complex_truncated_normal(key, 2, ...)` divided by
    its 0.95311164380491208."""
    theta = 2 * np.pi * rng.random(n)
    if dist == "uniform":
        r = np.sqrt(2 * rng.random(n)) * math.sqrt(var)
    elif dist == "untruncated_normal":
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * math.sqrt(var / 2)
    else:
        t = (1 - np.exp(-4.0)) * rng.random(n)
        r = np.sqrt(-np.log(1 - t)) * math.sqrt(var) / 0.95311164380491208
    return r * np.exp(1j * theta)


def _ks2(a: np.ndarray, b: np.ndarray) -> float:
    """p-value of the two-sample KS test (asymptotic, the Kolmogorov tail)."""
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b, grid, "right") / b.size))
    m = a.size * b.size / (a.size + b.size)
    return kolmogorov_sf(math.sqrt(m) * d)


@pytest.mark.parametrize("dist", DISTS)
def test_same_law_as_jax(dist: str) -> None:
    """varscale's modulus and phase follow JAX's laws (corrected: jax for the truncated normal,
    which is then JAX's exact law), and E|z|^2 = scale / n with the default correction.
    Level 1e-6 per test: with 2^17 values each, a two-sample KS test detects a CDF shift of
    sqrt(ln(2e6) / 2) / sqrt(n / 2) = 0.011, and a 1.87 % variance excess is 13 sigma."""
    n, shape, scale = 1 << 17, (512, 256), 3.0
    var = scale / 512  # fan_in of (512, 256) in the keras layout is 512
    ours = VarianceScaling(scale, "fan_in", dist, seed=21, dtype="complex128",
                           corrected="jax")(shape).reshape(-1)
    ref = _jax_reference(dist, var, n, np.random.default_rng(5))
    assert _ks2(np.abs(ours), np.abs(ref)) > 1e-6
    assert _ks2(np.angle(ours), np.angle(ref)) > 1e-6
    exact = VarianceScaling(scale, "fan_in", dist, seed=21, dtype="complex128")(shape).reshape(-1)
    m2, m4, _ = modulus_moments(LAWS[dist])
    sd = math.sqrt((m4 / (m2 * m2) - 1.0) / n)  # std of mean |z|^2 / E|z|^2
    ratio = float(np.mean(np.abs(exact) ** 2)) / var
    assert abs(ratio - 1.0) < 5 * sd, ratio
    jax_ratio = float(np.mean(np.abs(ref) ** 2)) / var
    want = 1.0 / (1.0 - co.EXP_M4) if dist == "truncated_normal" else 1.0
    assert abs(jax_ratio - want) < 5 * sd


def _report(values: np.ndarray, dist: Distribution, target_std: float):
    flat = values.reshape(-1)
    return check_tensor(
        "t", values.shape, values.dtype, lambda: iter(np.array_split(flat, 7)),
        Target(dist, target_std, dtype=values.dtype),
    )


@pytest.mark.parametrize("dist", DISTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_stats_passes_the_right_law_and_reports_it(dist: str, dtype: str) -> None:
    init = VarianceScaling(2.0, "fan_in", dist, seed=4, dtype=dtype)
    law = init.law(400.0, 300.0, dtype)
    rep = _report(init((400, 300)), law, init.target_std(400.0, 300.0))
    assert rep.ok and rep.verdict == "pass", rep.note
    assert set(rep.tests) == {"mean", "variance", "ks"}
    assert {"modulus_statistic", "phase_statistic"} <= set(rep.tests["ks"])
    assert rep.expected_std == pytest.approx(math.sqrt(2.0 / 400.0), rel=1e-15)
    assert rep.bound == law.bound and rep.out_of_bound == 0
    assert rep.std == pytest.approx(math.sqrt(2.0 / 400.0), rel=0.02)


def test_stats_catches_jax_variance_and_a_bad_phase_or_modulus() -> None:
    n_shape = (512, 512)
    exact = VarianceScaling(1.0, "fan_in", "truncated_normal", seed=8, dtype="complex64")
    law = exact.law(512.0, 512.0)
    std = exact.target_std(512.0, 512.0)
    jax = VarianceScaling(1.0, "fan_in", "truncated_normal", seed=8, dtype="complex64",
                          corrected="jax")(n_shape)
    rep = _report(jax, law, std)
    assert not rep.ok and "variance test" in rep.note
    good = exact(n_shape)
    half_plane = np.where(good.imag < 0, np.conj(good), good)  # phase only in [0, pi]
    rep = _report(half_plane, law, std)
    assert not rep.ok and "ks test" in rep.note
    assert rep.tests["ks"]["phase_statistic"] > 0.2 > rep.tests["ks"]["modulus_statistic"]
    disk = VarianceScaling(1.0, "fan_in", "uniform", seed=8, dtype="complex64")(n_shape)
    rep = _report(disk, law, std)
    assert not rep.ok and "ks test" in rep.note
    bad = good.copy()
    bad[3, 3] = 10 * law.bound
    rep = _report(bad, law, std)
    assert not rep.ok and rep.out_of_bound == 1 and "beyond the bound" in rep.note


# --- CLI and files -----------------------------------------------------------------------------


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _spec(tmp_path: Path, dtype: str) -> Path:
    doc = {
        "version": 1,
        "seed": 17,
        "tensors": {
            f"w/{d}": {
                "shape": [128, 96], "dtype": dtype,
                "initializer": {"name": "variance_scaling", "scale": 2.0, "mode": "fan_in",
                                "distribution": d},
            }
            for d in DISTS
        }
        | {"w/jax": {"shape": [128, 96], "dtype": dtype,
                     "initializer": {"name": "variance_scaling", "distribution": "truncated_normal",
                                     "corrected": "jax"}}},
    }
    path = tmp_path / f"{dtype}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _expected(dtype: str) -> dict[str, np.ndarray]:
    out = {
        f"w/{d}": VarianceScaling(2.0, "fan_in", d, seed=17, dtype=dtype)((128, 96), stream=f"w/{d}")
        for d in DISTS
    }
    out["w/jax"] = VarianceScaling(corrected="jax", seed=17, dtype=dtype)((128, 96), stream="w/jax")
    return out


def _load(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        return load_file(str(path))
    if path.suffix == ".npz":
        with np.load(path) as z:
            return {k: z[k] for k in z.files if not k.startswith("__")}
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda k, v: out.__setitem__(k, v[...]) if isinstance(v, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize(
    ("dtype", "suffix"),
    [("complex64", ".safetensors"), ("complex64", ".npz"), ("complex64", ".h5"),
     ("complex128", ".npz"), ("complex128", ".h5")],
)
def test_generate_stats_verify_and_the_reference_loaders(tmp_path: Path, dtype: str, suffix: str) -> None:
    spec = _spec(tmp_path, dtype)
    out = tmp_path / f"w{suffix}"
    code, _, err = _run("generate", str(spec), "-o", str(out), "--quiet")
    assert code == 0, err
    loaded = _load(out)
    for name, want in _expected(dtype).items():
        assert loaded[name].dtype == np.dtype(dtype)
        assert np.array_equal(loaded[name], want), name
    if suffix == ".h5":  # h5py's complex type: a compound of two floats named r and i
        with h5py.File(out, "r") as f:
            tid = f["w/uniform"].id.get_type()
            assert [tid.get_member_name(i) for i in range(tid.get_nmembers())] == [b"r", b"i"]
    code, stdout, err = _run("verify", str(out))
    assert code == 0, err
    code, stdout, err = _run("stats", str(out), "--json")
    assert code == 0, err
    doc = {t["name"]: t for t in json.loads(stdout)["tensors"]}
    t = doc["w/truncated_normal"]
    assert t["verdict"] == "pass" and t["distribution"]["kind"] == "complex_truncated_normal"
    assert t["expected_std"] == pytest.approx(math.sqrt(2.0 / 128.0), rel=1e-15)
    assert t["bound"] == pytest.approx(2 * math.sqrt(2.0 / 128.0) / co.CTRUNC_STD_2, rel=1e-15)
    assert doc["w/jax"]["expected_std"] == pytest.approx(
        math.sqrt(1.0 / 128.0 / (1.0 - co.EXP_M4)), rel=1e-14
    )
    assert doc["w/uniform"]["bound"] == pytest.approx(math.sqrt(2 * 2.0 / 128.0), rel=1e-15)
    assert doc["w/untruncated_normal"]["bound"] is None


def test_complex128_safetensors_names_the_formats_that_can(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "complex128")
    out = tmp_path / "w.safetensors"
    code, _, err = _run("generate", str(spec), "-o", str(out), "--quiet")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "Error: tensor 'w/truncated_normal' has dtype complex128, which safetensors cannot "
        "store; safetensors stores float16, bfloat16, float32, float64, complex64, float8_e4m3fn "
        "and float8_e5m2; write it as npz (.npz) or hdf5 (.h5)"
    )
    assert not out.exists() and list(tmp_path.iterdir()) == [spec]


def test_dry_run_shows_target_std_and_modulus_bound(tmp_path: Path) -> None:
    code, stdout, err = _run("generate", str(_spec(tmp_path, "complex64")), "-o",
                             str(tmp_path / "w.npz"), "--dry-run")
    assert code == 0, err
    assert "complex64" in stdout and "0.125" in stdout  # sqrt(2 / 128)
    assert f"|z|<={2 * 0.125 / co.CTRUNC_STD_2:.4g}" in stdout
    assert f"|z|<={math.sqrt(2) * 0.125:.4g}" in stdout
    assert "complex disk" in stdout


def test_spec_errors_for_complex(tmp_path: Path) -> None:
    doc = {"version": 1, "seed": 1, "tensors": {
        "x": {"shape": [4], "dtype": "complex64", "initializer": "random_normal"}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, _, err = _run("generate", str(path), "-o", str(tmp_path / "w.npz"))
    assert code == 2
    assert "dtype 'complex64' cannot be produced by initializer 'random_normal'" in err
    doc["tensors"]["x"]["initializer"] = {"name": "variance_scaling", "corrected": "tf"}
    path.write_text(yaml.safe_dump(doc))
    code, _, err = _run("generate", str(path), "-o", str(tmp_path / "w.npz"))
    assert code == 2 and "`corrected` must be true, false or 'jax'" in err
    assert "Traceback" not in err
    # Truncation bounds are real-valued (Haiku's lower/upper): JAX's complex law cuts |z| at 2.
    doc["tensors"]["x"]["initializer"] = {"name": "variance_scaling", "lower": -1.0, "upper": 2.0}
    path.write_text(yaml.safe_dump(doc))
    code, _, err = _run("generate", str(path), "-o", str(tmp_path / "w.npz"))
    assert code == 2 and "tensor 'x'" in err and "apply to real dtypes only" in err


def test_presets_lists_the_complex_laws_with_their_source() -> None:
    code, stdout, err = _run("presets")
    assert code == 0, err
    table = stdout[stdout.index("complex64 / complex128"):]
    for law in ("complex trunc. normal", "complex normal", "complex disk"):
        assert law in table
    assert "1.01866" in table and "2.07908" in table and "1.41421" in table
    assert "jax.nn.initializers.variance_scaling" in table


def test_editor_schema_takes_complex_dtypes_and_corrected_jax(tmp_path: Path) -> None:
    import jsonschema

    from varscale_cli.spec.editor_schema import editor_schema

    doc = yaml.safe_load(_spec(tmp_path, "complex128").read_text())
    jsonschema.validate(doc, editor_schema())
    doc["tensors"]["w/jax"]["initializer"]["corrected"] = "tf"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, editor_schema())
