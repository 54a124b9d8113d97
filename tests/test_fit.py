"""core.fit: a law whose values a dtype cannot hold is found before sampling."""

from __future__ import annotations

import math
from statistics import NormalDist

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

from varscale_cli.cli import cli
from varscale_cli.core.distributions import Distribution
from varscale_cli.core.fit import MAX_SCALE, law_problem, max_abs_z

F16_MAX = float(np.finfo(np.float16).max)
BF16_MAX = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
F32_MAX = float(np.finfo(np.float32).max)


def test_the_sampler_extremes_match_the_inverse_normal_cdf() -> None:
    """32 bits give uniforms up to 1 - 2^-23 (p = 1 - 2^-24), 64 bits up to 1 - 2^-52
    (p = 1 - 2^-53); the sampler's polynomials are accurate to ~1e-6 relative there."""
    assert max_abs_z(False) == pytest.approx(NormalDist().inv_cdf(1 - 2.0**-24), rel=1e-5)
    assert max_abs_z(True) == pytest.approx(NormalDist().inv_cdf(1 - 2.0**-53), rel=1e-5)


@pytest.mark.parametrize(
    ("dtype", "top"), [("float16", F16_MAX), ("bfloat16", BF16_MAX), ("float32", F32_MAX)]
)
def test_a_constant_fits_up_to_where_it_rounds_to_infinity(dtype: str, top: float) -> None:
    assert law_problem(Distribution("constant", 0.0, loc=top), dtype) is None
    assert law_problem(Distribution("constant", 0.0, loc=-top), dtype) is None
    # Half a quantum above the largest value is the rounding midpoint: ties to even go to inf.
    for x in (top * 1.01, 1.0e308, -1.0e308):
        problem = law_problem(Distribution("constant", 0.0, loc=x), dtype)
        assert problem is not None and f"{dtype} cannot hold" in problem and f"{top:.8g}" in problem


def test_float16_midpoint_to_infinity_is_refused_and_just_below_is_not() -> None:
    # float16's largest value 65504 has quantum 32; 65520 is the midpoint, which rounds to even
    # (infinity), anything below rounds down to 65504 (as numpy's own cast agrees).
    with np.errstate(over="ignore"):
        cast = np.array([65520.0, 65519.0]).astype(np.float16)
    assert np.isinf(cast[0]) and cast[1] == 65504.0
    assert law_problem(Distribution("constant", 0.0, loc=65519.0), "float16") is None
    assert law_problem(Distribution("constant", 0.0, loc=65520.0), "float16") is not None


def test_random_laws_use_their_extremes() -> None:
    # A uniform reaches loc +- scale; a truncated normal 2 scale; a normal z_max scale.
    assert law_problem(Distribution("uniform", 60000.0), "float16") is None
    assert law_problem(Distribution("uniform", 66000.0), "float16") is not None
    assert law_problem(Distribution("uniform", 30000.0, loc=40000.0), "float16") is not None
    assert law_problem(Distribution("truncated_normal", 32000.0), "float16") is None
    assert law_problem(Distribution("truncated_normal", 33000.0), "float16") is not None
    z = max_abs_z(False)
    assert law_problem(Distribution("normal", 0.99 * F16_MAX / z), "float16") is None
    assert law_problem(Distribution("normal", 1.01 * F16_MAX / z), "float16") is not None
    assert law_problem(Distribution("normal", 1e38 / z * 0.99), "float32") is None
    assert law_problem(Distribution("normal", 1e38), "float32") is not None


def test_float64_needs_a_finite_width_and_variance() -> None:
    half = (1e308 - -1e308) / 2.0  # what random_uniform(-1e308, 1e308) resolves to: inf
    problem = law_problem(Distribution("uniform", half, loc=-1e308 + half), "float64")
    assert problem is not None and "width overflows float64" in problem
    # Up to 2**511 the variance is finite, but a recorded law stops at 1e50 (the next test):
    # such laws were written and then refused by the file's own check.
    assert math.isfinite(Distribution("uniform", MAX_SCALE).variance)
    assert "beyond the 1e+50" in str(law_problem(Distribution("uniform", MAX_SCALE), "float64"))
    problem = law_problem(Distribution("uniform", 1e200), "float64")
    assert problem is not None and "variance overflows float64" in problem
    assert "beyond the 1e+50" in str(law_problem(Distribution("constant", 0.0, loc=1e308), "float64"))


def test_saturating_float8_always_fits_and_asymmetric_truncation_uses_both_ends() -> None:
    # The float8 types saturate (rounding.SATURATING): 1000 is stored as 448, never NaN.
    assert law_problem(Distribution("constant", 0.0, loc=1000.0), "float8_e4m3fn") is None
    assert law_problem(Distribution("uniform", 1e30), "float8_e5m2") is None
    # [lower, cut] = [-1, 3] in units of the scale: the upper end decides.
    d = Distribution("truncated_normal", 25000.0, lower=-1.0, cut=3.0)
    assert law_problem(d, "float16") is not None
    d = Distribution("truncated_normal", 25000.0, lower=-3.0, cut=1.0)
    assert law_problem(d, "float16") is not None
    assert law_problem(Distribution("truncated_normal", 25000.0, lower=-1.0, cut=1.0), "float16") is None


def test_a_constant_is_rounded_in_one_step_like_the_writers() -> None:
    # Just below float16's overflow midpoint 65520: one step gives 65504; through float32 it
    # would land on the midpoint and round to infinity.
    x = 65519.9990234375
    assert law_problem(Distribution("constant", 0.0, loc=x), "float16") is None


@pytest.mark.parametrize(
    "dist, key",
    [(Distribution("normal", 1e100), "scale"), (Distribution("constant", 0.0, loc=-1e100), "value"),
     (Distribution("uniform", 1.0, loc=2e50), "loc")],
)
def test_a_storable_law_beyond_what_a_record_may_hold_is_refused(dist: Distribution, key: str) -> None:
    """float64 holds these, but the provenance parser refuses a recorded law past
    MAX_DISTRIBUTION_PARAM: the spec must refuse it before sampling, not the post-write check."""
    problem = law_problem(dist, "float64")
    assert problem is not None and f"has {key} " in problem and "1e+50" in problem
    assert law_problem(Distribution(dist.kind, min(dist.scale, 1e50), loc=0.0), "float64") is None


def test_the_largest_checkable_law_generates_and_checks(tmp_path) -> None:
    """scale 1e50 (the limit) in float64: written, recorded, and judged by the default check."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "version: 1\nseed: 0\ntensors:\n  w: {shape: [300, 400], dtype: float64, "
        "initializer: {name: random_normal, stddev: 1.0e+50}}\n"
    )
    out = tmp_path / "w.safetensors"
    r = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    spec.write_text(spec.read_text().replace("1.0e+50", "1.0e+51"))
    r = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 2 and "stddev" not in r.output and "scale 1e+51, beyond the 1e+50" in r.output
    assert not (tmp_path / "x.safetensors").exists()
