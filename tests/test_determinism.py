"""The same bytes everywhere: scalar constants at rounding ties, uniform offsets, awkward gains.

These golden hashes complement tests/test_sampling.py's (which use no centre offset and no
constant): each pins bytes that a library cast or a libm call could change. make test-oldest
runs this file again on the oldest dependencies the project allows (numpy 1.26 with the
ml_dtypes pip picks for it, 0.5.x, whose float64 -> bfloat16 cast rounds twice), so a hash
that holds in both environments proves the bytes do not depend on those versions.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from safetensors.numpy import load_file

from varscale_cli.cli import cli
from varscale_cli.core.distributions import Distribution
from varscale_cli.core.initializers import get
from varscale_cli.core.rounding import below, round_to
from varscale_cli.core.stream import TensorSampler, sample

SAMPLED = ("float16", "bfloat16", "float32", "float64")


def sha256_le(a: np.ndarray) -> str:
    a = np.ascontiguousarray(a)
    width = a.dtype.itemsize
    return hashlib.sha256(a.view(f"u{width}").astype(f"<u{width}").tobytes()).hexdigest()


# Halfway between bfloat16 1.0 and 1.0078125 is 1 + 2^-8; this value lies 9.3e-10 above it, so
# one rounding gives 1.0078125 while a first rounding to float32 lands on the midpoint and the
# tie then goes to even, 1.0 (ml_dtypes 0.5).
ABOVE_BF16_TIE = 1.0039062509313226

REPRODUCTION = (
    "version: 1\nseed: 7\ntensors:\n"
    "  c: {shape: [4], dtype: bfloat16, initializer: {name: constant, value: 1.0039062509313226}}\n"
    "  u: {shape: [100000], dtype: bfloat16, initializer: {name: random_uniform, minval: 0.5, "
    "maxval: 1.0039062509313226}}\n"
)
REPRODUCTION_U = "dcaead2cf987a545c5ed0fd6e5ae7fa0fa7f13ff541ae6966265d22f8693b3c0"


def test_the_bfloat16_reproduction_gives_one_rounding(tmp_path: Path) -> None:
    spec = tmp_path / "r.yaml"
    spec.write_text(REPRODUCTION)
    out = tmp_path / "r.safetensors"
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    data = load_file(out)
    assert data["c"].view(np.uint16).tolist() == [0x3F81] * 4  # 1.0078125
    assert sha256_le(data["u"]) == REPRODUCTION_U
    # maxval rounds up in bfloat16, so the clamp is the value below it, 1.0, and it occurs.
    assert float(data["u"].astype(np.float64).max()) == below(ABOVE_BF16_TIE, "bfloat16") == 1.0


def _tie_values(dtype: str) -> list[float]:
    """Constants at and next to rounding ties of ``dtype``, normal and subnormal, +-."""
    if dtype == "float64":
        return [0.1, -1.0 / 3.0, 5e-324, 1.7976931348623157e308]
    bits = {"float16": 10, "bfloat16": 7, "float32": 23}[dtype]
    emin = {"float16": -14, "bfloat16": -126, "float32": -126}[dtype]
    q = 2.0**-bits
    tie = 1.0 + q / 2  # halfway between 1 and its successor
    sub_tie = 2.0 ** (emin - bits) * 1.5  # halfway between the first two subnormals
    out = [tie, math.nextafter(tie, 2.0), math.nextafter(tie, 0.0), 1.0 + 1.5 * q, sub_tie]
    out += [math.nextafter(sub_tie, 1.0), ABOVE_BF16_TIE, 0.1, 65504.0, 65520.0]
    return out + [-v for v in out]


CONSTANTS = {
    "float16": "7e026d586f6aae1d725f0cdd578761329c71b8b8e93e0a47b50fce03496852f1",
    "bfloat16": "7101b2c99dbd14919d2e643f22f323c2f10deb28b108cfdce03d144eccc91a8b",
    "float32": "43f304984d6595459ba64c8137d0439dde802be5f7ef0c6226b86830536864c1",
    "float64": "4072de6f3bf269e085656b7bdbe5da14600cedfab1f041edcd8bda52c2e6f06c",
}


@pytest.mark.parametrize("dtype", SAMPLED)
def test_constants_at_rounding_ties(dtype: str, transform_path: str) -> None:
    values = _tie_values(dtype)
    got = np.concatenate([
        sample(TensorSampler(Distribution("constant", 0.0, v), dtype, 0, "c"), (3,)) for v in values
    ])
    # Each value is the one-step rounding of the decimal constant...
    assert got.astype(np.float64).tolist() == [round_to(v, dtype) for v in values for _ in range(3)]
    # ...and the bytes are pinned.
    assert sha256_le(got) == CONSTANTS[dtype], sha256_le(got)


def _offset_laws(dtype: str) -> list[Distribution]:
    """Uniforms whose centre is an offset and whose upper limit is at or near a tie."""
    laws = []
    for maxval in (ABOVE_BF16_TIE, 1.0 + 2.0**-8, 1.0 + 2.0**-11, 2.0 - 2.0**-25, 0.75):
        minval = 0.5
        laws.append(Distribution("uniform", (maxval - minval) / 2.0, (maxval + minval) / 2.0))
    laws.append(Distribution("uniform", 0.25, -3.0))
    return laws


UNIFORM_OFFSETS = {
    "float16": "51cd7302efd8c3607bf1f5d857a0ecb49995a9cd97cba8da731a646561ef70f3",
    "bfloat16": "1a596ac3c91c3542a6aa05f78e050bdd8e3353856a1ce27158e8bd105f0534fb",
    "float32": "f797232c7ffeb2863342485fb1be97c5cc9742dbcc4227804dad59c8818e4278",
    "float64": "e8bd781fcfaf9511ab23aae3bd21a481287ecb2aa064fd30eaf03bd6310285fd",
}


@pytest.mark.parametrize("dtype", SAMPLED)
def test_uniform_offsets_and_their_clamp(dtype: str, transform_path: str) -> None:
    parts = []
    for k, law in enumerate(_offset_laws(dtype)):
        x = sample(TensorSampler(law, dtype, 11, f"u{k}"), (20_000,))
        top = below(law.loc + law.scale, dtype)
        assert float(x.astype(np.float64).max()) <= top  # [minval, maxval) in the stored dtype
        parts.append(x)
    assert sha256_le(np.concatenate(parts)) == UNIFORM_OFFSETS[dtype], sha256_le(np.concatenate(parts))


#: torch.kaiming_normal with an awkward leaky_relu slope: libm's pow(a, 2) and a * a differ
#: for this a (the std would move in its last bit and with it most float64 values).
AWKWARD_SLOPE = 3.0331272607892745
TORCH_AWKWARD_F64 = "50a9957c1827c4365fc4c0be21647654113564b7fb68e0dcbf9bd206bffd937c"


def test_torch_gain_squares_the_slope_with_one_multiply(transform_path: str) -> None:
    init = get("torch.kaiming_normal", a=AWKWARD_SLOPE, dtype="float64", seed=3)
    fan_in = 64
    std = init.target_std(fan_in, 32)
    assert std == math.sqrt(2.0 / (1.0 + AWKWARD_SLOPE * AWKWARD_SLOPE)) / math.sqrt(fan_in)
    w = init((32, 64), stream="w")
    assert sha256_le(w) == TORCH_AWKWARD_F64, sha256_le(w)
