"""Initializers: presets, the seeds' recipes, exact distributions, errors, configs, seeds,
streams and partitions.

Expected values come from the seeds (../shared/seeds/*.txt: the TF contrib and
``tf.variance_scaling_initializer`` documentation) and ../shared/reference/anchors.md (a.2 errors,
a.4 formulas, a.7 serialization, b presets). Distributions are compared field by field with a
relative tolerance of 1e-15 (an ulp or so: the same formula evaluated in another order is not a
bug here; the golden hashes in test_sampling.py pin the bits).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import varscale_cli as V
from varscale_cli.core import initializers as I
from varscale_cli.core.distributions import Distribution
from varscale_cli.core.dtypes import numpy_dtype
from varscale_cli.core.fans import compute_fans
from varscale_cli.core.stream import TensorSampler, sample
from varscale_cli.core.stream import sampler as sampler_module

#: std of N(0, 1) truncated to [-2, 2] (TF/Keras's literal; test_sampling recomputes it).
C = 0.87962566103423978
CONV = (3, 3, 64, 128)  # keras layout: fan_in 576, fan_out 1152
FAN_IN, FAN_OUT = 576, 1152


def assert_dist(got: Distribution, kind: str, scale: float, loc: float = 0.0) -> None:
    assert got.kind == kind
    assert got.scale == pytest.approx(scale, rel=1e-15, abs=0.0)
    assert got.loc == loc
    assert got.cut == 2.0


def same_bytes(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def direct(dist: Distribution, shape: tuple[int, ...], seed: int, stream: str = "",
           dtype: str = "float32") -> np.ndarray:
    """The tensor the sampler draws from ``dist``, bypassing the initializer."""
    return sample(TensorSampler(dist, dtype, seed, stream), shape)


# --- presets: the Keras / JAX meanings (anchors b) ----------------------------------------------

PRESET_TABLE = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "xavier_uniform": (1.0, "fan_avg", "uniform"),
    "xavier_normal": (1.0, "fan_avg", "truncated_normal"),
    "kaiming_normal": (2.0, "fan_in", "truncated_normal"),
    "kaiming_uniform": (2.0, "fan_in", "uniform"),
}


def test_preset_table_is_complete() -> None:
    assert set(PRESET_TABLE) == set(I.PRESETS) | set(I.ALIASES)


@pytest.mark.parametrize("name", sorted(PRESET_TABLE))
def test_presets(name: str) -> None:
    scale, mode, dist = PRESET_TABLE[name]
    for init in (I.get(name), getattr(V, name)(), I.deserialize(name)):
        assert type(init) is I.VarianceScaling
        assert (init.scale, init.mode, init.distribution_name) == (scale, mode, dist)
        assert init.corrected is True
        assert init.get_config() == {
            "scale": scale, "mode": mode, "distribution": dist, "seed": None, "dtype": "float32",
        }
    seeded = getattr(V, name)(seed=5, dtype="float16")
    assert (seeded.seed, seeded.dtype) == (5, "float16")
    # Aliases give the same bytes as their canonical preset.
    canonical = I.ALIASES.get(name, name)
    assert same_bytes(I.get(name, seed=9)(CONV), I.get(canonical, seed=9)(CONV))


def test_presets_take_only_seed_dtype_and_keras_axes() -> None:
    with pytest.raises(ValueError, match="takes no parameters besides seed, dtype, input_axes"):
        I.get("he_normal", scale=3.0)
    # Keras 3's presets take input_axes/output_axes (HeNormal(seed, input_axes, output_axes)).
    he = I.get("he_normal", input_axes=[2], output_axes=[3])
    assert he.fans((3, 3, 64, 128)) == (64, 128)
    assert he.preset == "he_normal"


# --- the contrib function: the seed's recipes (seed 000) ----------------------------------------


@dataclass(frozen=True)
class Recipe:
    id: str
    kwargs: dict
    kind: str
    scale: float  # underlying std (normal) or limit (uniform), for CONV's fans


# n: FAN_IN 576, FAN_AVG (576 + 1152) / 2 = 864, FAN_OUT 1152.
RECIPES = [
    Recipe("he-delving-deep-default", {}, "truncated_normal", math.sqrt(1.3 * 2.0 / 576)),
    Recipe("he-delving-deep-explicit", {"factor": 2.0, "mode": "FAN_IN", "uniform": False},
           "truncated_normal", math.sqrt(1.3 * 2.0 / 576)),
    Recipe("caffe", {"factor": 1.0, "mode": "FAN_IN", "uniform": True},
           "uniform", math.sqrt(3.0 * 1.0 / 576)),
    Recipe("glorot-bengio", {"factor": 1.0, "mode": "FAN_AVG", "uniform": True},
           "uniform", math.sqrt(3.0 * 1.0 / 864)),
    Recipe("xavier-uniform", {"factor": 1.0, "mode": "FAN_AVG", "uniform": True},
           "uniform", math.sqrt(3.0 / 864)),
    Recipe("xavier-normal", {"factor": 1.0, "mode": "FAN_AVG", "uniform": False},
           "truncated_normal", math.sqrt(1.3 * 1.0 / 864)),
    Recipe("fan-out-normal", {"factor": 2.0, "mode": "FAN_OUT"},
           "truncated_normal", math.sqrt(1.3 * 2.0 / 1152)),
    Recipe("fan-out-uniform", {"factor": 0.5, "mode": "FAN_OUT", "uniform": True},
           "uniform", math.sqrt(3.0 * 0.5 / 1152)),
]


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.id for r in RECIPES])
def test_contrib_recipes(recipe: Recipe) -> None:
    init = V.variance_scaling_initializer(**recipe.kwargs, seed=17)
    assert isinstance(init, I.ContribVarianceScaling)
    dist = init.distribution(*compute_fans(CONV))
    assert_dist(dist, recipe.kind, recipe.scale)
    # The values drawn through the public call are exactly that distribution's.
    assert same_bytes(init(CONV, stream="w"), direct(dist, CONV, 17, "w"))


def test_contrib_defaults_are_delving_deep() -> None:
    assert V.variance_scaling_initializer().get_config() == {
        "factor": 2.0, "mode": "FAN_IN", "uniform": False, "seed": None, "dtype": "float32",
    }


def test_contrib_normal_variance_is_1_3_times_0_774() -> None:
    """The 1.3 factor over-corrects: actual variance 1.3 * 0.77374 = 1.00586 x factor / n."""
    dist = V.variance_scaling_initializer(factor=2.0).distribution(FAN_IN, FAN_OUT)
    assert dist.variance / (2.0 / FAN_IN) == pytest.approx(1.3 * 0.7737413035499232, rel=1e-14)


# --- VarianceScaling: the exact law per config ---------------------------------------------------

N_OF_MODE = {
    "fan_in": 576.0, "fan_out": 1152.0, "fan_avg": 864.0, "fan_geo_avg": math.sqrt(576 * 1152),
}


def _expected(scale: float, mode: str, dist: str, corrected: bool) -> tuple[str, float]:
    std = math.sqrt(scale / N_OF_MODE[mode])
    if dist in ("truncated_normal", "normal"):
        return "truncated_normal", std / C if corrected else std
    if dist == "untruncated_normal":
        return "normal", std
    return "uniform", math.sqrt(3.0 * scale / N_OF_MODE[mode])


@pytest.mark.parametrize("corrected", [True, False])
@pytest.mark.parametrize("dist", I.DISTRIBUTIONS)
@pytest.mark.parametrize("mode", I.MODES)
@pytest.mark.parametrize("scale", [1.0, 2.0, 0.1])
def test_variance_scaling_exact_distribution(
    scale: float, mode: str, dist: str, corrected: bool
) -> None:
    init = V.VarianceScaling(scale, mode, dist, corrected=corrected)
    got = init.distribution(*compute_fans(CONV))
    kind, s = _expected(scale, mode, dist, corrected)
    assert_dist(got, kind, s)
    target = scale / N_OF_MODE[mode]
    if kind == "truncated_normal" and not corrected:
        # TF <= 1.12: the variance after truncation is only 0.774 x the target.
        assert got.variance == pytest.approx(0.7737413035499232 * target, rel=1e-13)
    else:
        assert got.variance == pytest.approx(target, rel=1e-13)
    assert init.target_std(FAN_IN, FAN_OUT) == pytest.approx(math.sqrt(target), rel=1e-15)


def test_fan_geo_avg_is_the_geometric_mean() -> None:
    init = V.VarianceScaling(6.0, "fan_geo_avg", "untruncated_normal")
    assert_dist(init.distribution(*compute_fans((4, 9))), "normal", 1.0)  # n = sqrt(36) = 6


def test_normal_is_an_alias_of_truncated_normal() -> None:
    """TF2/Keras map "normal" to "truncated_normal": same law, same bytes."""
    a = V.VarianceScaling(2.0, distribution="normal", seed=4)
    b = V.VarianceScaling(2.0, distribution="truncated_normal", seed=4)
    assert a.distribution(FAN_IN, FAN_OUT) == b.distribution(FAN_IN, FAN_OUT)
    assert same_bytes(a(CONV), b(CONV))
    assert a.get_config()["distribution"] == "normal"  # the user's spelling round-trips


def test_distribution_name_is_lowered_like_tf() -> None:
    init = V.VarianceScaling(distribution="Uniform")
    assert init.get_config()["distribution"] == "uniform"


def test_variance_scaling_defaults_are_lecun_truncated_corrected() -> None:
    assert V.VarianceScaling().get_config() == {
        "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": None,
        "dtype": "float32",
    }


# --- error tables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "quoted"),
    [(0, "scale=0"), (0.0, "scale=0.0"), (-1, "scale=-1"), (-0.0, "scale=-0.0"),
     (10**400, "scale=1000"), (float("nan"), "scale=nan"), (float("inf"), "scale=inf"),
     (float("-inf"), "scale=-inf"), (True, "scale=True"), ("2.0", "scale='2.0'"),
     (None, "scale=None")],
    ids=["0", "0.0", "-1", "-0.0", "int-beyond-float", "nan", "inf", "-inf", "bool", "str",
         "None"],
)
def test_scale_errors(scale: Any, quoted: str) -> None:
    with pytest.raises(ValueError, match="positive float") as info:
        V.VarianceScaling(scale=scale)
    assert quoted in str(info.value)


@pytest.mark.parametrize("mode", ["FAN_IN", "fan_mid", "Fan_Avg", "", None])
def test_mode_errors_list_the_allowed_modes(mode: Any) -> None:
    with pytest.raises(ValueError, match="Invalid `mode` argument") as info:
        V.VarianceScaling(mode=mode)
    assert repr(mode) in str(info.value)
    assert "fan_in, fan_out, fan_avg, fan_geo_avg" in str(info.value)


@pytest.mark.parametrize("dist", ["gaussian", "truncated", "", None])
def test_distribution_errors(dist: Any) -> None:
    with pytest.raises(ValueError, match="Invalid `distribution` argument") as info:
        V.VarianceScaling(distribution=dist)
    assert repr(dist) in str(info.value)
    assert "truncated_normal, untruncated_normal, uniform, normal" in str(info.value)


@pytest.mark.parametrize("dtype", ["int32", np.int32, np.dtype("int64"), "complex64", "float8",
                                   int, bool, "uint8"])
def test_dtype_errors(dtype: Any) -> None:
    with pytest.raises(ValueError, match="Expected a floating point dtype") as info:
        V.VarianceScaling(dtype=dtype)
    assert "float16, bfloat16, float32, float64" in str(info.value)
    with pytest.raises(ValueError, match="Expected a floating point dtype"):
        V.VarianceScaling(seed=1)((3, 4), dtype=dtype)  # the call-time dtype is checked too


def test_dtype_error_quotes_the_value() -> None:
    with pytest.raises(ValueError, match="got 'int32'"):
        V.VarianceScaling(dtype="int32")


@pytest.mark.parametrize(
    ("dtype", "canonical"),
    [("float32", "float32"), (np.float16, "float16"), (np.dtype("float64"), "float64"),
     (ml_dtypes.bfloat16, "bfloat16"), ("bf16", "bfloat16"), ("half", "float16"),
     ("double", "float64"), (float, "float64")],
)
def test_dtype_spellings(dtype: Any, canonical: str) -> None:
    init = V.VarianceScaling(seed=0, dtype=dtype)
    assert init.get_config()["dtype"] == canonical
    assert init((3, 4)).dtype == numpy_dtype(canonical)


@pytest.mark.parametrize("corrected", [1, "no", None])
def test_corrected_must_be_a_bool(corrected: Any) -> None:
    with pytest.raises(ValueError, match="corrected"):
        V.VarianceScaling(corrected=corrected)


@pytest.mark.parametrize("mode", ["fan_in", "FAN_in", "FAN_GEO_AVG", "fan_avg", None])
def test_contrib_bad_mode_is_a_type_error_at_creation(mode: Any) -> None:
    with pytest.raises(TypeError, match="FAN_IN, FAN_OUT, FAN_AVG"):
        V.variance_scaling_initializer(mode=mode)


@pytest.mark.parametrize("dtype", ["int32", np.int32, "int8", "bool"])
def test_contrib_bad_dtype_is_a_value_error_at_creation(dtype: Any) -> None:
    with pytest.raises(ValueError, match="floating point"):
        V.variance_scaling_initializer(dtype=dtype)


@pytest.mark.parametrize("factor", [0, -2.0, float("nan"), float("inf"), True])
def test_contrib_bad_factor(factor: Any) -> None:
    with pytest.raises(ValueError, match="factor"):
        V.variance_scaling_initializer(factor=factor)


@pytest.mark.parametrize("seed", [-1, 2**63, 1.0, "1", True])
def test_seed_errors(seed: Any) -> None:
    with pytest.raises(ValueError, match="seed"):
        V.VarianceScaling(seed=seed)


# --- PyTorch semantics ---------------------------------------------------------------------------

GAINS = [
    ("linear", None, 1.0), ("conv1d", None, 1.0), ("conv2d", None, 1.0), ("conv3d", None, 1.0),
    ("conv_transpose1d", None, 1.0), ("conv_transpose2d", None, 1.0),
    ("conv_transpose3d", None, 1.0), ("sigmoid", None, 1.0), ("tanh", None, 5.0 / 3.0),
    ("relu", None, math.sqrt(2.0)),
    ("leaky_relu", None, math.sqrt(2.0 / (1.0 + 0.01**2))),  # param None -> slope 0.01
    ("leaky_relu", 0, math.sqrt(2.0)), ("leaky_relu", 0.2, math.sqrt(2.0 / 1.04)),
    ("leaky_relu", math.sqrt(5.0), math.sqrt(1.0 / 3.0)),
    ("selu", None, 0.75),
]


@pytest.mark.parametrize(("nonlinearity", "param", "gain"), GAINS)
def test_calculate_gain(nonlinearity: str, param: float | None, gain: float) -> None:
    assert I.calculate_gain(nonlinearity, param) == pytest.approx(gain, rel=1e-15)


@pytest.mark.parametrize("param", [True, False, "0.1"])
def test_calculate_gain_rejects_bad_slopes(param: Any) -> None:
    with pytest.raises(ValueError, match="not a valid number"):
        I.calculate_gain("leaky_relu", param)


@pytest.mark.parametrize("nonlinearity", ["swish", "gelu", "ReLU", ""])
def test_calculate_gain_rejects_unknown(nonlinearity: str) -> None:
    with pytest.raises(ValueError, match="Unsupported nonlinearity") as info:
        I.calculate_gain(nonlinearity)
    assert "leaky_relu" in str(info.value)


def test_torch_linear_default_is_uniform_one_over_sqrt_fan_in() -> None:
    """nn.Linear(784, 256): kaiming_uniform_(a=sqrt 5) on weight (256, 784) = U(+-1/sqrt 784)."""
    init = I.get("torch.kaiming_uniform", a=math.sqrt(5.0), seed=3)
    assert init.fans((256, 784)) == (784, 256)  # torch layout by default
    dist = init.distribution(*init.fans((256, 784)))
    assert dist.kind == "uniform"
    assert dist.scale == pytest.approx(1.0 / math.sqrt(784), rel=1e-15)
    assert np.float32(dist.scale) == np.float32(1.0 / 28.0)
    w = init((256, 784))
    assert np.abs(w).max() <= np.float32(1.0 / 28.0)


@pytest.mark.parametrize("nonlinearity", ["leaky_relu", "relu"])
def test_torch_kaiming_normal_default_gain_is_sqrt2(nonlinearity: str) -> None:
    """kaiming_* default a=0 with leaky_relu gives sqrt(2), not the 0.01 slope's gain."""
    init = I.TorchKaimingNormal(nonlinearity=nonlinearity)
    assert_dist(init.distribution(*init.fans((256, 784))), "normal", math.sqrt(2.0 / 784))
    out = I.TorchKaimingNormal(mode="fan_out")
    assert_dist(out.distribution(*out.fans((256, 784))), "normal", math.sqrt(2.0 / 256))


def test_torch_kaiming_mode_is_lowered_and_checked() -> None:
    assert I.TorchKaimingUniform(mode="FAN_OUT").mode == "fan_out"
    with pytest.raises(ValueError, match="Mode 'fan_avg' not supported"):
        I.TorchKaimingNormal(mode="fan_avg")


@pytest.mark.parametrize("gain", [1.0, 5.0 / 3.0, math.sqrt(2.0)])
def test_torch_xavier_gain(gain: float) -> None:
    shape = (20, 30)  # torch (out, in): fan_in 30, fan_out 20
    normal = I.TorchXavierNormal(gain=gain, seed=1)
    std = gain * math.sqrt(2.0 / 50.0)
    assert_dist(normal.distribution(*normal.fans(shape)), "normal", std)  # untruncated
    uniform = I.TorchXavierUniform(gain=gain)
    assert_dist(uniform.distribution(*uniform.fans(shape)), "uniform", math.sqrt(3.0) * std)


@pytest.mark.parametrize("gain", [0, -1.0, float("nan"), True])
def test_torch_xavier_bad_gain(gain: Any) -> None:
    with pytest.raises(ValueError, match="gain"):
        I.TorchXavierNormal(gain=gain)


# --- plain initializers --------------------------------------------------------------------------


def test_plain_initializers() -> None:
    assert_dist(I.RandomNormal(0.1, 0.02).distribution(1, 1), "normal", 0.02, 0.1)
    # Keras TruncatedNormal: cut at +-2 stddev and *not* variance-corrected.
    assert_dist(I.TruncatedNormal(-0.1, 0.3).distribution(1, 1), "truncated_normal", 0.3, -0.1)
    assert_dist(I.RandomUniform(-0.2, 0.4).distribution(1, 1), "uniform", 0.3, pytest.approx(0.1))
    assert np.all(I.Constant(0.25)((3, 4)) == np.float32(0.25))
    assert np.all(I.Zeros()((3, 4), dtype="bfloat16") == 0)
    assert np.all(I.Ones(dtype="float16")((3, 4)) == 1)


# Regression: loc + v * half used to round up to maxval itself for the largest draw.
@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize(("minval", "maxval"), [(1.0, 3.0), (2.0, 3.0), (-3.0, -1.0)])
def test_random_uniform_never_returns_maxval(
    minval: float, maxval: float, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bit patterns of the largest uniforms: (int32(u) >> 8) | 1 = 2^23 - 1, and
    # ((u >> 11) | 1) - 2^52 = 2^52 - 1 (see tests/test_sampling.py, extreme bits).
    monkeypatch.setattr(sampler_module, "raw_bits32",
                        lambda key, start, n, bg=None: np.full(n, 0x7FFFFFFF, np.uint32))
    monkeypatch.setattr(sampler_module, "raw_words",
                        lambda key, start, n, bg=None: np.full(n, 2**64 - 1, np.uint64))
    w = I.RandomUniform(minval, maxval, seed=0)((4,), dtype=dtype)
    assert w.astype(np.float64).max() < maxval


# --- get_config / from_config ---------------------------------------------------------------------

#: One non-default configuration per registered class; the test below fails if a class is added
#: without a row here.
EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "variance_scaling": [
        {"scale": 0.5, "mode": "fan_geo_avg", "distribution": "uniform", "seed": 11,
         "dtype": "bfloat16"},
        {"scale": 2.0, "mode": "fan_out", "distribution": "normal", "seed": 12,
         "dtype": "float64", "corrected": False},
        {"scale": 3.0, "mode": "fan_avg", "distribution": "untruncated_normal", "seed": None,
         "dtype": "float16"},
        {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": 25,
         "dtype": "float32", "lower": -3.0, "upper": 1.5},
    ],
    "variance_scaling_initializer": [
        {"factor": 1.0, "mode": "FAN_AVG", "uniform": True, "seed": 13, "dtype": "float64"},
    ],
    "torch.kaiming_normal": [
        {"a": 0.2, "mode": "fan_out", "nonlinearity": "leaky_relu", "seed": 14,
         "dtype": "float16"},
    ],
    "torch.kaiming_uniform": [
        {"a": math.sqrt(5.0), "mode": "fan_in", "nonlinearity": "leaky_relu", "seed": 15,
         "dtype": "float32"},
        {"a": 0.0, "mode": "fan_in", "nonlinearity": "tanh", "seed": 16, "dtype": "float32"},
    ],
    "torch.xavier_normal": [{"gain": 5.0 / 3.0, "seed": 17, "dtype": "float32"}],
    "torch.xavier_uniform": [{"gain": math.sqrt(2.0), "seed": 18, "dtype": "bfloat16"}],
    "constant": [{"value": 0.25, "dtype": "float64"}],
    "zeros": [{"dtype": "float16"}],
    "ones": [{"dtype": "bfloat16"}],
    "random_normal": [{"mean": 0.1, "stddev": 0.02, "seed": 19, "dtype": "float32"}],
    "truncated_normal": [
        {"mean": -0.1, "stddev": 0.3, "seed": 20, "dtype": "float32"},
        {"mean": 0.0, "stddev": 0.02, "lower": -1.0, "upper": 3.0, "seed": 22,
         "dtype": "float32"},
    ],
    "torch.trunc_normal": [
        {"mean": 0.0, "std": 0.02, "a": -2.0, "b": 2.0, "seed": 23, "dtype": "float32"},
        {"mean": 0.5, "std": 1.0, "a": 0.0, "b": 3.0, "seed": 24, "dtype": "float64"},
    ],
    "random_uniform": [{"minval": -0.2, "maxval": 0.4, "seed": 21, "dtype": "float64"}],
}


def test_every_class_has_round_trip_examples() -> None:
    assert set(EXAMPLES) == set(I.CLASSES)


ROUND_TRIPS = [(name, cfg) for name, cfgs in EXAMPLES.items() for cfg in cfgs]


@pytest.mark.parametrize(("name", "config"), ROUND_TRIPS,
                         ids=[f"{n}-{i}" for i, (n, _) in enumerate(ROUND_TRIPS)])
def test_from_config_round_trip(name: str, config: dict[str, Any]) -> None:
    cls = I.CLASSES[name]
    init = cls(**config)
    cfg = init.get_config()
    assert cfg == config  # get_config returns exactly what was given (canonicalised)
    again = cls.from_config(json.loads(json.dumps(cfg)))  # JSON-serializable, as TF documents
    assert type(again) is cls
    assert again == init and again.get_config() == cfg
    via_name = I.deserialize({"name": name, **cfg})
    assert type(via_name) is cls and via_name == init
    if cfg.get("seed") is not None or not init.uses_fans or name == "constant":
        assert same_bytes(again((6, 5)), init((6, 5)))


def test_variance_scaling_get_config_keys_are_exactly_tf1s() -> None:
    cfg = V.VarianceScaling(2, "fan_out", "uniform", 5, np.float16).get_config()
    assert cfg == {"scale": 2.0, "mode": "fan_out", "distribution": "uniform", "seed": 5,
                   "dtype": "float16"}
    assert type(cfg["scale"]) is float
    # corrected=False is recorded only when it changes the meaning
    assert V.VarianceScaling(corrected=False).get_config()["corrected"] is False


# --- deserialize ---------------------------------------------------------------------------------

KERAS_VS = {
    "module": "keras.initializers",
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": 42},
    "registered_name": None,
}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ("he_normal", V.VarianceScaling(2.0, "fan_in", "truncated_normal")),
        ("xavier_uniform", V.VarianceScaling(1.0, "fan_avg", "uniform")),
        ("kaiming_uniform", V.VarianceScaling(2.0, "fan_in", "uniform")),
        ("zeros", I.Zeros()),
        ({"name": "variance_scaling", "scale": 2.0, "mode": "fan_out"},
         V.VarianceScaling(2.0, "fan_out")),
        ({"name": "he_uniform", "seed": 3}, V.VarianceScaling(2.0, "fan_in", "uniform", seed=3)),
        ({"name": "torch.kaiming_uniform", "a": math.sqrt(5.0)},
         I.TorchKaimingUniform(a=math.sqrt(5.0))),
        ({"name": "variance_scaling_initializer", "factor": 1.0, "mode": "FAN_AVG",
          "uniform": True}, V.variance_scaling_initializer(1.0, "FAN_AVG", True)),
        # TF1 get_config() (with dtype) and TF2 (without).
        ({"scale": 1.0, "mode": "fan_avg", "distribution": "normal", "seed": None,
          "dtype": "float32"}, V.VarianceScaling(1.0, "fan_avg", "normal")),
        ({"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": 7},
         V.VarianceScaling(2.0, seed=7)),
        ({"scale": 2.0, "mode": "fan_in", "distribution": "normal", "seed": 7,
          "corrected": False}, V.VarianceScaling(2.0, "fan_in", "normal", 7, corrected=False)),
        # Keras serialize(): Keras 2 (no module), Keras 3 (module, registered_name, axes None).
        (KERAS_VS, V.VarianceScaling(2.0, seed=42)),
        ({"class_name": "VarianceScaling", "config": {"scale": 1.0, "mode": "fan_avg",
          "distribution": "uniform", "seed": None}}, V.VarianceScaling(1.0, "fan_avg", "uniform")),
        ({**KERAS_VS, "config": {**KERAS_VS["config"], "input_axes": None, "output_axes": None}},
         V.VarianceScaling(2.0, seed=42)),
        ({"module": "keras.initializers", "class_name": "HeNormal",
          "config": {"seed": 3, "input_axes": None, "output_axes": None},
          "registered_name": None}, V.VarianceScaling(2.0, seed=3)),
        ({"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": None},
          "registered_name": None}, V.VarianceScaling(1.0, "fan_avg", "uniform")),
        ({"module": "keras.initializers", "class_name": "RandomNormal",
          "config": {"mean": 0.0, "stddev": 0.05, "seed": None}, "registered_name": None},
         I.RandomNormal()),
        ({"module": "keras.initializers", "class_name": "Constant", "config": {"value": 2.0},
          "registered_name": None}, I.Constant(2.0)),
        ({"module": "keras.initializers", "class_name": "Zeros", "config": {},
          "registered_name": None}, I.Zeros()),
        # Keras 3 reads snake_case class names and its aliases (normal, uniform, one, zero).
        ({"class_name": "glorot_uniform", "config": {"seed": None}},
         V.VarianceScaling(1.0, "fan_avg", "uniform")),
        ({"class_name": "variance_scaling", "config": {"scale": 2.0}}, V.VarianceScaling(2.0)),
        ({"class_name": "zero", "config": {}}, I.Zeros()),
        ({"class_name": "normal", "config": {"stddev": 0.05}}, I.RandomNormal()),
        # Keras input_axes/output_axes: kept, and with one alone ignored for fans as Keras does.
        ({**KERAS_VS, "config": {**KERAS_VS["config"], "input_axes": [0], "output_axes": [1]}},
         V.VarianceScaling(2.0, seed=42, input_axes=[0], output_axes=[1])),
        ({"class_name": "HeNormal", "config": {"input_axes": [0], "output_axes": None}},
         V.VarianceScaling(2.0, input_axes=[0])),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_deserialize(obj: Any, expected: I.Initializer) -> None:
    got = I.deserialize(obj)
    assert type(got) is type(expected)
    assert got.get_config() == expected.get_config()


def test_deserialize_passes_initializers_through() -> None:
    init = V.he_uniform(seed=1)
    assert I.deserialize(init) is init


@pytest.mark.parametrize(
    ("obj", "fragments"),
    [
        ("he_norml", ("unknown initializer 'he_norml'", "did you mean 'he_normal'?")),
        ("kaiming_unifrom", ("did you mean 'kaiming_uniform'?",)),
        ({"name": "glorot_unifrom"}, ("did you mean 'glorot_uniform'?",)),
        ("torch.xavier_norml", ("did you mean 'torch.xavier_normal'?",)),
        ("xyzzy", ("unknown initializer 'xyzzy'",)),
        ({"name": 3}, ("name must be a string",)),
        ({"class_name": "Orthogonal", "config": {}}, ("unknown Keras initializer class",
                                                       "VarianceScaling")),
        ({**KERAS_VS, "extra": 1}, ("unknown key(s)",)),
        ({**KERAS_VS, "config": {**KERAS_VS["config"], "input_axes": 0, "output_axes": [1]}},
         ("input_axes must be a list of ints", "write e.g. [0]")),
        ({**KERAS_VS, "registered_name": "pkg>VarianceScaling"},
         ("custom registered class 'pkg>VarianceScaling'", '"registered_name": null')),
        ({**KERAS_VS, "config": {**KERAS_VS["config"], "seed": {"class_name": "SeedGenerator"}}},
         ("SeedGenerator",)),
        ({"scale": 1.0, "bogus": 2}, ("cannot tell which initializer",)),
        ({"name": "variance_scaling", "factor": 2.0}, ("unknown parameter(s) factor",)),
        (42, ("a name or a mapping",)),
    ],
)
def test_deserialize_errors(obj: Any, fragments: tuple[str, ...]) -> None:
    with pytest.raises(ValueError) as info:
        I.deserialize(obj)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_unknown_name_without_a_close_match_has_no_hint() -> None:
    with pytest.raises(ValueError) as info:
        I.deserialize("xyzzy")
    assert "did you mean" not in str(info.value)


# --- seeds and streams --------------------------------------------------------------------------

SEEDED_FACTORIES = [
    lambda seed: V.VarianceScaling(2.0, seed=seed),
    lambda seed: V.variance_scaling_initializer(seed=seed),
    lambda seed: I.TorchKaimingUniform(seed=seed),
    lambda seed: I.RandomNormal(seed=seed),
    lambda seed: V.glorot_uniform(seed=seed),
]


@pytest.mark.parametrize("factory", SEEDED_FACTORIES)
def test_seed_none_gives_fresh_values_each_call(factory) -> None:
    init = factory(None)
    a, b = init((64, 32)), init((64, 32))
    assert not np.array_equal(a, b)
    assert init.get_config()["seed"] is None  # no hidden seed gets baked into the config


@pytest.mark.parametrize("factory", SEEDED_FACTORIES)
def test_int_seed_gives_the_same_values_every_call(factory) -> None:
    init = factory(123)
    first = init((64, 32))
    for _ in range(3):
        assert same_bytes(init((64, 32)), first)
    assert same_bytes(factory(123)((64, 32)), first)  # and on a fresh instance
    assert not np.array_equal(factory(124)((64, 32)), first)


def test_numpy_integer_seed_is_accepted() -> None:
    assert same_bytes(V.he_normal(seed=np.int64(5))((8, 8)), V.he_normal(seed=5)((8, 8)))


def test_streams() -> None:
    init = V.he_normal(seed=0)
    a = init((64, 32), stream="dense/kernel")
    b = init((64, 32), stream="dense_1/kernel")
    assert not np.array_equal(a, b)
    assert same_bytes(init((64, 32), stream="dense/kernel"), a)
    assert same_bytes(init((64, 32)), init((64, 32), stream=""))  # the default stream is ""
    assert not np.array_equal(init((64, 32)), a)


def test_call_dtype_overrides_the_constructor_dtype() -> None:
    init = V.he_normal(seed=0, dtype="float64")
    assert init((4, 4)).dtype == np.float64
    assert init((4, 4), dtype="bfloat16").dtype == ml_dtypes.bfloat16
    # bfloat16 values are the float32 values rounded: the same stream, the same bits per element.
    assert same_bytes(init((4, 4), dtype="float32").astype(ml_dtypes.bfloat16),
                      init((4, 4), dtype="bfloat16"))


# --- partitions ----------------------------------------------------------------------------------

PARTITIONS_2D = [((6, 8), (2, 8), off) for off in [(0, 0), (2, 0), (4, 0)]] + [
    ((6, 8), (6, 3), (0, 5)),
    ((6, 8), (3, 5), (2, 3)),
    ((6, 8), (1, 1), (5, 7)),
    ((6, 8), (6, 8), (0, 0)),
]
PARTITIONS_3D = [
    ((4, 5, 6), (2, 5, 6), (2, 0, 0)),
    ((4, 5, 6), (4, 2, 6), (0, 3, 0)),
    ((4, 5, 6), (4, 5, 1), (0, 0, 5)),
    ((4, 5, 6), (1, 3, 2), (3, 1, 4)),
    ((4, 5, 6), (3, 4, 5), (1, 1, 1)),
]


@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize(("full", "shape", "offset"), PARTITIONS_2D + PARTITIONS_3D)
def test_partition_is_the_slice_of_the_full_tensor(
    full: tuple[int, ...], shape: tuple[int, ...], offset: tuple[int, ...], dtype: str
) -> None:
    init = V.he_normal(seed=8, dtype=dtype)
    whole = init(full, stream="p")
    part = init(shape, partition_info=I.PartitionInfo(full, offset), stream="p")
    index = tuple(slice(o, o + d) for o, d in zip(offset, shape, strict=True))
    assert same_bytes(part, np.ascontiguousarray(whole[index]))


def test_partition_fans_come_from_the_full_shape() -> None:
    init = V.VarianceScaling(2.0, "fan_in", "uniform", seed=1)
    part = init((2, 8), partition_info=I.PartitionInfo((600, 8), (10, 0)))
    # The full tensor has fan_in 600: limit sqrt(6 / 600) = 0.1; the part alone would be sqrt(3).
    assert np.abs(part).max() <= np.float32(0.1)
    assert np.abs(part).max() > 0.05


def test_row_partitions_concatenate_to_the_whole() -> None:
    init = V.glorot_uniform(seed=2)
    whole = init((9, 7))
    parts = [init((3, 7), partition_info=I.PartitionInfo((9, 7), (r, 0))) for r in (0, 3, 6)]
    assert same_bytes(np.concatenate(parts, axis=0), whole)


@pytest.mark.parametrize(
    ("shape", "full", "offset"),
    [((5, 8), (6, 8), (2, 0)), ((2, 8), (6, 8), (-1, 0)), ((2, 9), (6, 8), (0, 0)),
     ((2, 8), (6, 8, 1), (0, 0, 0)), ((2, 2, 2), (4, 5, 6), (3, 0, 0))],
)
def test_partition_outside_the_full_shape(shape, full, offset) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        V.he_normal(seed=0)(shape, partition_info=I.PartitionInfo(full, offset))


def test_partition_info_ranks_must_match() -> None:
    with pytest.raises(ValueError, match="different ranks"):
        I.PartitionInfo((6, 8), (0,))


def test_partition_single_offset() -> None:
    assert I.PartitionInfo((6, 8), (4, 0)).single_offset((2, 8)) == 4
    assert I.PartitionInfo((6, 8), (0, 5)).single_offset((6, 3)) == 5
    assert I.PartitionInfo((6, 8), (0, 0)).single_offset((6, 8)) == 0


def test_contrib_ignores_partition_info() -> None:
    """The contrib code takes fans from the shard's own shape, and we draw it as a whole."""
    init = V.variance_scaling_initializer(factor=2.0, uniform=True, seed=4)
    alone = init((2, 8))
    part = init((2, 8), partition_info=I.PartitionInfo((600, 8), (10, 0)))
    assert same_bytes(part, alone)
    assert np.abs(part).max() > 0.1  # limit sqrt(6 / 2), not sqrt(6 / 600)
