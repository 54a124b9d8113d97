"""`varscale explain`: the fans and laws each framework gives, with the frameworks as oracles,
and readable at COLUMNS=100."""

from __future__ import annotations

import json
import math
import os

import pytest
from click.testing import CliRunner

from varscale_cli.cli import cli
from varscale_cli.core.initializers import RandomNormal, deserialize
from varscale_cli.explain import explain, parse_shape

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras (test_frameworks)
WIDTH = 100


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner(env={"COLUMNS": str(WIDTH)}).invoke(cli, list(args), terminal_width=WIDTH)
    return result.exit_code, result.stdout, result.stderr


def test_text_is_readable_at_100_columns() -> None:
    code, out, err = run("explain", "3x3x64x128", "he_normal")
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= WIDTH
    assert lines[1] == (
        "initializer: he_normal = variance_scaling(scale=2, mode=fan_in, distribution=truncated_normal)"
    )
    keras_row = next(line for line in lines if line.startswith("keras / TF"))
    torch_row = next(line for line in lines if line.startswith("torch "))
    assert keras_row.split()[3:8] == ["2", "3", "0,1", "576", "1,152"]
    assert torch_row.split()[1:6] == ["1", "0", "2,3", "24,576", "24,576"]
    assert "variance 0.7737 x target" in out  # TF r1.2's uncorrected law
    assert "absolute values, not multiples of std" in out


def test_fans_are_the_frameworks_own() -> None:
    torch = pytest.importorskip("torch")
    keras_init = pytest.importorskip("keras.src.initializers.random_initializers")
    for shape in [(3, 3, 64, 128), (256, 784), (7,), (2, 5, 3, 3, 4)]:
        doc = explain(shape, deserialize("he_normal")).to_json()
        keras_row, torch_row, jax_row = doc["conventions"]
        assert (keras_row["fan_in"], keras_row["fan_out"]) == tuple(
            int(f) for f in keras_init.compute_fans(shape)
        )
        if len(shape) >= 2:  # torch refuses fewer than 2 dimensions
            fans = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
            assert (torch_row["fan_in"], torch_row["fan_out"]) == fans
        assert (jax_row["fan_in"], jax_row["fan_out"]) == (keras_row["fan_in"], keras_row["fan_out"])


def test_torch_kaiming_uniform_matches_torch_bound() -> None:
    torch = pytest.importorskip("torch")
    code, out, err = run(
        "explain", "--shape", "256,784", "--init", "{name: torch.kaiming_uniform, a: 2.23606797749979}",
        "--layout", "torch", "--json",
    )
    assert code == 0, err
    writes = json.loads(out)["varscale_writes"]
    w = torch.empty(256, 784)
    gain = torch.nn.init.calculate_gain("leaky_relu", math.sqrt(5))
    bound = math.sqrt(3.0) * gain / math.sqrt(784)  # torch/nn/init.py kaiming_uniform_
    assert writes["bound"] == pytest.approx(bound, rel=1e-12)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    assert float(w.abs().max()) <= bound


def test_variance_of_the_historical_variants() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    torch = pytest.importorskip("torch")
    for std in (1.0, 0.8, 0.5):
        tf12, trunc = explain((4, 4), RandomNormal(0.0, std)).variants
        assert tf12.law.variance / (std * std) == pytest.approx(scipy_stats.truncnorm(-2, 2).var(), rel=1e-12)
        cut = 2.0 / std
        assert trunc.law.variance / (std * std) == pytest.approx(scipy_stats.truncnorm(-cut, cut).var(), rel=1e-12)
        # torch itself: N draws of trunc_normal_(std); the sample variance's relative standard
        # error is at most sqrt(2 / N) (kurtosis <= 3), so 6 of them bound a false failure.
        n = 1_000_000
        gen = torch.Generator().manual_seed(0)
        w = torch.nn.init.trunc_normal_(torch.empty(n, dtype=torch.float64), std=std, generator=gen)
        assert float(w.var()) == pytest.approx(trunc.law.variance, rel=6 * math.sqrt(2 / n))


def test_explicit_axes_are_what_varscale_writes() -> None:
    code, out, err = run("explain", "8x256x784", "glorot_uniform", "--in-axis", "2", "--out-axis", "1", "--batch-axis", "0", "--json")
    assert code == 0, err
    doc = json.loads(out)
    writes = doc["varscale_writes"]
    assert (writes["fan_in"], writes["fan_out"], writes["batch_axes"]) == (784, 256, [0])
    assert writes["std"] == pytest.approx(math.sqrt(2.0 / (784 + 256)))
    assert doc["conventions"][2] == writes


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["3x3", "he_normall"], "did you mean 'he_normal'"),
        (["3xa", "he_normal"], "is not dimensions"),
        (["3x3", "{name: variance_scaling, mode: fanin}"], "Invalid `mode`"),
        (["3x3", "he_normal", "--in-axis", "5"], "out of range"),
        (["3x3"], "needs a shape and an initializer"),
        (["3x3", "he_normal", "--shape", "4x4"], "give the shape once"),
        (["3x3", "{name: [unclosed"], "initializer"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], message: str) -> None:
    code, out, err = run("explain", *args)
    assert code == 2 and out == ""
    assert err.startswith("Error: ") and err.count("\n") == 1 and message in err


def test_parse_shape() -> None:
    assert parse_shape("3x3x64x128") == (3, 3, 64, 128)
    assert parse_shape("[256, 784]") == (256, 784)
    assert parse_shape("scalar") == ()
