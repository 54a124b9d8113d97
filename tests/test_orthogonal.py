"""The orthogonal initializer: our QR's bytes, the frameworks' semantics and laws, stats, CLI.

The frameworks are the oracle on distributional properties (their bytes depend on the
machine's LAPACK): torch.nn.init.orthogonal_ and keras.initializers.Orthogonal (Keras 3 on
the torch backend) are sampled here and compared with varscale on orthogonality, layout and
the entries' law, with tolerances from the sample sizes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import yaml
from click.testing import CliRunner

from varscale_cli import PartitionInfo
from varscale_cli.cli import cli
from varscale_cli.core import stream
from varscale_cli.core.distributions import Distribution
from varscale_cli.core.initializers import Orthogonal, deserialize
from varscale_cli.core.stream import orthogonal as O
from varscale_cli.stats import check_tensor
from varscale_cli.stats.orthogonality import orthogonality_tolerance
from varscale_cli.stats.targets import target_for
from varscale_cli.stats.tests import kolmogorov_sf

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

SHAPES = [(1, 1), (1, 7), (7, 1), (5, 3), (3, 5), (64, 64), (100, 37), (37, 100), (200, 200)]


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_compiled_qr_equals_the_numpy_reference(rows: int, cols: int) -> None:
    key = stream.stream_key(7, f"q{rows}x{cols}")
    with stream.native_path(True) as kernels:
        if kernels is None:
            pytest.skip("the C extension is not built")
        a = O.orthogonal_matrix(key, rows, cols)
    with stream.native_path(False):
        b = O.orthogonal_matrix(key, rows, cols)
    assert a.shape == (rows, cols)
    assert np.array_equal(a.view(np.uint64), b.view(np.uint64))


@pytest.mark.parametrize(("rows", "cols"), SHAPES)
def test_same_q_as_lapack_with_the_frameworks_sign_fix(rows: int, cols: int) -> None:
    """The frameworks' definition on the same normal matrix: numpy.linalg.qr (LAPACK), columns
    times sign(diag R), transposed when wide. Equal to float64 rounding (not bitwise)."""
    key = stream.stream_key(3, "lapack")
    m, k = max(rows, cols), min(rows, cols)
    q, r = np.linalg.qr(O.normal_matrix(key, m, k))
    q = q * np.sign(np.diag(r))
    want = q if rows >= cols else q.T
    got = O.orthogonal_matrix(key, rows, cols)
    assert np.max(np.abs(got - want)) <= 64 * m * 2.0**-53


def _sha(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    w = a.dtype.itemsize
    return hashlib.sha256(a.view(f"u{w}").astype(f"<u{w}").tobytes()).hexdigest()


#: Orthogonal(gain, seed=0)(shape, stream="kernel", layout=...): pinned (a change needs a
#: STREAM_ID bump), checked on both paths.
GOLDEN = {
    ("float32", (64, 32), "keras", 1.0):
        "b8001a14efc9fa77c76facc2f35c5013705bc7a4fd673d4f0a2dad1980ae33d5",
    ("float64", (32, 64), "keras", 2.0):
        "58d84f34b0128d6361b63fcdc735118cd6cf8dfb3ae015f0f54d7589cdc04b78",
    ("bfloat16", (8, 4, 3, 3), "torch", 1.0):
        "f5cb7a887b32054d6a21a7e1fbe29c3616a99061108b0d913048639ef61c7165",
}



@pytest.mark.parametrize("case", sorted(GOLDEN, key=str), ids=str)
def test_golden_hashes(case: tuple, transform_path: str) -> None:
    dtype, shape, layout, gain = case
    w = Orthogonal(gain, seed=0, dtype=dtype)(shape, stream="kernel", layout=layout)
    assert w.dtype.name == dtype and w.shape == shape
    assert _sha(w) == GOLDEN[case]


def test_layouts_partitions_and_provenance() -> None:
    init = Orthogonal(1.5, seed=2)
    conv = init((3, 3, 16, 8))  # keras: 144 x 8, orthonormal columns
    m = conv.reshape(-1, 8).astype(np.float64)
    assert np.max(np.abs(m.T @ m - 2.25 * np.eye(8))) <= orthogonality_tolerance(
        Distribution("orthogonal", 1.5, rows=144, cols=8), np.dtype(np.float32)
    )
    tconv = init((8, 16, 3, 3), layout="torch")  # torch: 8 x 144, orthonormal rows
    m = tconv.reshape(8, -1).astype(np.float64)
    assert np.max(np.abs(m @ m.T - 2.25 * np.eye(8))) < 1e-6
    part = init((5, 3, 16, 8), partition_info=PartitionInfo((9, 3, 16, 8), (4, 0, 0, 0)))
    assert np.array_equal(part, init((9, 3, 16, 8))[4:9])
    law = init.law(0, 0, "float32", shape=(3, 3, 16, 8), layout="keras")
    assert (law.rows, law.cols, law.dim, law.bound) == (144, 8, 144, 1.5)
    assert law.std == pytest.approx(1.5 / 12.0)
    assert deserialize({"class_name": "Orthogonal", "config": {"gain": 1.5, "seed": 2}}) == init
    with pytest.raises(ValueError, match="rank 2 or more"):
        init((10,))
    with pytest.raises(ValueError, match="`gain` must be positive"):
        Orthogonal(gain=0.0)


def test_size_limit_is_refused_in_one_line() -> None:
    assert O.qr_flops(2048, 2048) <= O.MAX_ORTHOGONAL_FLOPS
    assert 2048 * 2048 <= O.MAX_ORTHOGONAL_ELEMENTS
    with pytest.raises(ValueError, match="over the limit") as info:
        Orthogonal(seed=1)((4096, 1025))
    assert "\n" not in str(info.value) and "4096 x 1025" in str(info.value)


# --- the entries' law and the frameworks ---------------------------------------------------------


def test_marginal_cdf_against_the_beta_function() -> None:
    """A coordinate X of a uniform unit vector in R^m: P(|X| <= x) = I_{x^2}(1/2, (m - 1)/2)."""
    x = np.linspace(-1.0, 1.0, 40001)
    for m in (2, 3, 5, 64, 1000, 100_000, 1 << 22):
        got = Distribution("orthogonal", 1.0, rows=m, cols=1).cdf(x)
        want = 0.5 + 0.5 * np.sign(x) * scipy.special.betainc(0.5, (m - 1) / 2.0, x * x)
        assert np.max(np.abs(got - want)) <= 2e-8, m


def _ks2(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.sort(a), np.sort(b)
    grid = np.concatenate([a, b])
    d = np.max(np.abs(np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b, grid, "right") / b.size))
    return kolmogorov_sf(math.sqrt(a.size * b.size / (a.size + b.size)) * d)


def _torch_orthogonal(shape: tuple[int, ...], gain: float, seed: int) -> np.ndarray:
    torch = pytest.importorskip("torch")
    torch.manual_seed(seed)
    t = torch.empty(shape, dtype=torch.float64)
    torch.nn.init.orthogonal_(t, gain=gain)
    return t.numpy()


def _keras_orthogonal(shape: tuple[int, ...], gain: float, seed: int) -> np.ndarray:
    keras = pytest.importorskip("keras")
    return np.asarray(keras.initializers.Orthogonal(gain=gain, seed=seed)(shape, dtype="float32"))


FRAMEWORKS = {"torch": (_torch_orthogonal, "torch"), "keras": (_keras_orthogonal, "keras")}


@pytest.mark.parametrize("framework", sorted(FRAMEWORKS))
@pytest.mark.parametrize("shape", [(48, 20), (20, 48), (6, 4, 3, 5)], ids=str)
def test_same_properties_as_the_framework(framework: str, shape: tuple[int, ...]) -> None:
    """Same layout (which vectors are orthonormal), orthogonality, and entries' law as the
    real framework. 40 matrices each: n = 40 x prod(shape) entries per side; a two-sample KS
    test at level 1e-6 then detects a CDF shift of sqrt(ln(2e6) / 2) / sqrt(n / 2) ~ 0.04 at
    these sizes, and the mean of x^2 is g^2 / m exactly on both sides."""
    sample, layout = FRAMEWORKS[framework]
    gain = 1.7
    ours_init = Orthogonal(gain, seed=5, dtype="float64")
    rows, cols = O.matrix_shape(shape, layout)
    m = max(rows, cols)
    theirs, ours = [], []
    for i in range(40):
        t = sample(shape, gain, 100 + i).astype(np.float64).reshape(rows, cols)
        o = ours_init(shape, stream=f"w{i}", layout=layout).reshape(rows, cols)
        for mat, out in ((t, theirs), (o, ours)):
            vecs = mat if rows >= cols else mat.T  # the orthonormal vectors as columns
            gram = vecs.T @ vecs
            tol = 1e-5 if mat is t else 1e-13  # keras samples in float32
            assert np.max(np.abs(gram - gain * gain * np.eye(gram.shape[0]))) <= tol
            out.append(mat.reshape(-1))
    a, b = np.concatenate(theirs), np.concatenate(ours)
    assert np.mean(b * b) == pytest.approx(gain * gain / m, rel=1e-12)
    assert np.mean(a * a) == pytest.approx(gain * gain / m, rel=1e-5)
    assert _ks2(a, b) > 1e-6
    # Both against the exact marginal law (one-sample KS on every 7th entry: nearly independent).
    law = Distribution("orthogonal", gain, rows=rows, cols=cols)
    for x in (a, b):
        xs = np.sort(x[::7])
        f = law.cdf(xs)
        i = np.arange(1, xs.size + 1)
        d = max(np.max(i / xs.size - f), np.max(f - (i - 1) / xs.size))
        assert kolmogorov_sf(math.sqrt(xs.size) * d) > 1e-6


def test_stats_passes_orthogonal_and_catches_what_is_not() -> None:
    init = Orthogonal(1.2, seed=9)
    w = init((256, 96))
    target = target_for(init, (256, 96), np.float32)

    def report(x: np.ndarray):
        return check_tensor("w", x.shape, x.dtype, lambda: iter(np.array_split(x.reshape(-1), 5)), target)

    good = report(w)
    assert good.ok and good.verdict == "pass", good.note
    assert good.orthogonality is not None and good.orthogonality["ok"]
    assert good.expected_std == pytest.approx(1.2 / 16.0, rel=1e-7)
    assert "orthogonality" in good.to_json()
    # A normal matrix of exactly the right entry variance is not orthogonal.
    rng = np.random.default_rng(0)
    fake = (rng.standard_normal((256, 96)) * (1.2 / 16.0)).astype(np.float32)
    bad = report(fake)
    assert not bad.ok and "not orthogonal" in bad.note
    # One entry off by a few ulps more than rounding allows.
    nudged = w.copy()
    nudged[10, 10] = np.float32(nudged[10, 10] * (1 + 2.0**-16))
    assert "not orthogonal" in report(nudged).note
    # The wrong gain fails the law tests as well as orthogonality.
    assert not report(w * np.float32(1.1)).ok


# --- CLI -----------------------------------------------------------------------------------------


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("suffix", [".safetensors", ".npz", ".h5"])
def test_generate_verify_stats_on_real_files(tmp_path: Path, suffix: str) -> None:
    doc = {"version": 1, "seed": 4, "tensors": {
        "dense": {"shape": [200, 64], "initializer": {"name": "orthogonal", "gain": 1.5}},
        "wide": {"shape": [40, 300], "dtype": "float64", "initializer": "orthogonal"},
        "conv": {"shape": [16, 8, 3, 3], "layout": "torch", "dtype": "bfloat16",
                 "initializer": "orthogonal"},
        "part": {"shape": [50, 64], "initializer": {"name": "orthogonal", "gain": 1.5},
                 "partition": {"of": "dense", "full_shape": [200, 64], "offset": [100, 0]}},
    }}
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = tmp_path / f"w{suffix}"
    code, stdout, err = _run("generate", str(spec), "-o", str(out), "--dry-run")
    assert code == 0, err
    assert "orthogonal (gain=1.5)" in stdout and "±1.5" in stdout
    code, _, err = _run("generate", str(spec), "-o", str(out), "--quiet")
    assert code == 0, err
    assert _run("verify", str(out))[0] == 0
    code, stdout, err = _run("stats", str(out))
    assert code == 0, err
    assert "not variance-corrected" not in stdout  # the target std is the law's own
    code, stdout, err = _run("stats", str(out), "--json")
    assert code == 0, err
    doc_out = {t["name"]: t for t in json.loads(stdout)["tensors"]}
    for name in ("dense", "wide", "conv"):
        assert doc_out[name]["orthogonality"]["ok"], name
        assert doc_out[name]["distribution"]["kind"] == "orthogonal"
    assert doc_out["dense"]["expected_std"] == pytest.approx(1.5 / math.sqrt(200), rel=1e-7)
    assert doc_out["wide"]["distribution"]["rows"] == 40
    whole = Orthogonal(1.5, seed=4)((200, 64), stream="dense")
    from loaders import load_any

    loaded = load_any(out)
    assert np.array_equal(loaded["dense"], whole)
    assert np.array_equal(loaded["part"], whole[100:150])


def test_cli_refuses_a_matrix_over_the_limit(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "seed": 1, "tensors": {
        "emb": {"shape": [50000, 512], "initializer": "orthogonal"}}}))
    out = tmp_path / "w.safetensors"
    code, _, err = _run("generate", str(spec), "-o", str(out))
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"Error: {spec}: tensor 'emb': initializer: an orthogonal 50000 x 512 matrix")
    assert not out.exists()


def test_stats_init_orthogonal_skips_what_cannot_be_orthogonal(tmp_path: Path) -> None:
    """``stats --init orthogonal`` on a checkpoint with biases: the rank-1 tensors get no
    target (moments only), never a traceback; a variance-scaled kernel fails orthogonality."""
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "seed": 1, "tensors": {
        "k": {"shape": [64, 32]}, "b": {"shape": [32], "initializer": "zeros"}}}))
    out = tmp_path / "w.npz"
    assert _run("generate", str(spec), "-o", str(out), "--quiet")[0] == 0
    code, stdout, err = _run("stats", str(out), "--init", "orthogonal", "--json")
    assert code == 3 and "Traceback" not in err
    doc = {t["name"]: t for t in json.loads(stdout)["tensors"]}
    assert doc["b"]["verdict"] == "no_target"
    assert doc["k"]["verdict"] == "fail" and "not orthogonal" in doc["k"]["note"]


@pytest.mark.parametrize("command", ["stats", "generate", "explain"])
def test_json_documents_of_the_new_laws_follow_their_schemas(tmp_path: Path, command: str) -> None:
    """docs/json/*.schema.json describe orthogonal (rows, cols, orthogonality) and complex
    (modulus_statistic, phase_statistic) outputs too."""
    import jsonschema

    root = Path(__file__).resolve().parent.parent
    schema = json.loads((root / "docs" / "json" / f"{command}.schema.json").read_text())
    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump({"version": 1, "seed": 2, "tensors": {
        "q": {"shape": [128, 64], "initializer": "orthogonal"},
        "z": {"shape": [128, 64], "dtype": "complex64",
              "initializer": {"name": "variance_scaling", "distribution": "uniform"}}}}))
    out = tmp_path / "w.npz"
    if command == "stats":
        assert _run("generate", str(spec), "-o", str(out), "--quiet")[0] == 0
        args = ["stats", str(out), "--json"]
    elif command == "generate":
        args = ["generate", str(spec), "-o", str(out), "--dry-run", "--json"]
    else:
        args = ["explain", "128x64", "orthogonal", "--json"]
    code, stdout, err = _run(*args)
    assert code == 0, err
    jsonschema.validate(json.loads(stdout), schema, cls=jsonschema.Draft202012Validator)
