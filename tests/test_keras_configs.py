"""Keras configs as Keras 3 reads them (issue 13): ``input_axes`` / ``output_axes``, snake_case
class names, ``SeedGenerator`` seeds and ``registered_name``. The real keras (torch backend) is the
oracle: its ``compute_fans``, its ``get_config()`` and its own samples."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from varscale_cli.cli import cli
from varscale_cli.core import initializers as I
from varscale_cli.core.fans import compute_keras_axes_fans
from varscale_cli.core.initializers.deserialize import KERAS_CLASSES
from varscale_cli.spec import parse_spec

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras
KERAS_WARNINGS = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)
TRUNC_STD_2 = 0.87962566103423978  # Keras' own constant (random_initializers.py)


@pytest.fixture(scope="module")
def keras():
    return pytest.importorskip("keras")


def _keras_cases(keras):
    K = keras.initializers
    return [
        K.VarianceScaling(2.0, "fan_in", "truncated_normal", seed=3, input_axes=[2],
                          output_axes=[3]),
        K.VarianceScaling(1.0, "fan_avg", "uniform", input_axes=[0], output_axes=[1, 2]),
        K.VarianceScaling(1.0, "fan_out", "untruncated_normal", input_axes=[-2],
                          output_axes=[-1]),
        K.VarianceScaling(3.0, "fan_in", "normal", input_axes=[0]),  # one alone: ignored
        K.VarianceScaling(1.0, "fan_in", "truncated_normal", output_axes=[1]),
        K.GlorotUniform(input_axes=[0, 1], output_axes=[2]),
        K.HeNormal(seed=1),
        K.LecunNormal(input_axes=[1], output_axes=[0]),
        K.HeUniform(input_axes=[-1], output_axes=[-2]),
    ]


SHAPES = [(3, 3, 64, 128), (512, 8, 64), (8, 64, 512), (784, 256), (5, 8, 16), (7, 9, 2, 3, 4)]


def _in_range(k, shape) -> bool:
    axes = [*(k.input_axes or ()), *(k.output_axes or ())]
    return all(-len(shape) <= a < len(shape) for a in axes)


@KERAS_WARNINGS
def test_fans_std_and_config_agree_with_keras(keras) -> None:
    from keras.src.initializers.random_initializers import compute_fans

    checked = 0
    for k in _keras_cases(keras):
        raw = keras.initializers.serialize(k)
        ours = I.deserialize(json.loads(json.dumps(raw)))  # as pasted from a JSON file
        assert isinstance(ours, I.VarianceScaling)
        for shape in SHAPES:
            if not _in_range(k, shape):
                continue
            want = compute_fans(shape, input_axes=k.input_axes, output_axes=k.output_axes)
            got = ours.fans(shape)
            assert got == want, (raw, shape)
            # Keras' __call__: scale / max(1, n), then its std per distribution.
            n = {"fan_in": want[0], "fan_out": want[1]}.get(k.mode, (want[0] + want[1]) / 2.0)
            var = k.scale / max(1.0, n)
            keras_scale = {
                "truncated_normal": math.sqrt(var) / TRUNC_STD_2,
                "untruncated_normal": math.sqrt(var),
                "uniform": math.sqrt(3.0 * var),
            }[k.distribution]
            assert ours.distribution(*got).scale == pytest.approx(keras_scale, rel=1e-15)
            checked += 1
        # get_config round trip: ours back into Keras gives Keras' own config.
        cfg = {key: v for key, v in ours.get_config().items() if key != "dtype"}
        back = keras.initializers.VarianceScaling.from_config(cfg).get_config()
        full = keras.initializers.VarianceScaling(
            k.scale, k.mode, k.distribution, seed=k.get_config()["seed"],
            input_axes=k.input_axes, output_axes=k.output_axes,
        ).get_config()
        assert back == full, raw
        # The spec form (what a manifest records, no seed) rebuilds the same initializer.
        assert I.deserialize(ours.to_spec()).get_config() == {**ours.get_config(), "seed": None}
    assert checked >= 40


@KERAS_WARNINGS
def test_conv_kernel_with_both_axes_matches_keras_samples(keras) -> None:
    """The issue's case: input_axes [2], output_axes [3] on a Conv2D kernel: Keras' fans are
    (64, 128), not the receptive-field (576, 1152) (3x the std). Compared on Keras' own samples:
    the std of 73,728 truncated-normal values has relative sd sqrt((kurt - 1) / (4 N)) = 0.22%,
    so 5 sd is 1.1%, while the wrong fans are off by a factor 3."""
    k = keras.initializers.VarianceScaling(2.0, "fan_in", "truncated_normal", seed=7,
                                           input_axes=[2], output_axes=[3])
    shape = (3, 3, 64, 128)
    theirs = keras.ops.convert_to_numpy(k(shape)).astype(np.float64)
    ours = I.deserialize(keras.initializers.serialize(k))
    dist = ours.distribution(*ours.fans(shape))
    assert ours.fans(shape) == (64, 128)
    n = theirs.size
    rel_sd = math.sqrt((dist.kurtosis - 1.0) / (4.0 * n))
    assert abs(theirs.std() / dist.std - 1.0) < 5.0 * rel_sd
    ours_values = ours(shape).astype(np.float64)
    assert abs(ours_values.std() / dist.std - 1.0) < 5.0 * rel_sd
    assert np.abs(theirs).max() <= dist.bound * (1 + 1e-6)


def test_keras_axes_rule_by_hand() -> None:
    assert compute_keras_axes_fans((3, 3, 64, 128), [2], [3]) == (64, 128)
    assert compute_keras_axes_fans((512, 8, 64), [0], [1, 2]) == (512, 512)
    assert compute_keras_axes_fans((5, 6), [-1], [-2]) == (6, 5)
    assert compute_keras_axes_fans((0, 6), [0], [1]) == (0, 6)
    with pytest.raises(ValueError, match=r"output_axes \[4\]: axis 4 is out of range"):
        compute_keras_axes_fans((3, 4), [0], [4])


def test_snake_case_and_aliases_are_keras_own(keras) -> None:
    """Every class_name keras.initializers.deserialize resolves to a class varscale has."""
    from keras.src.initializers import ALL_OBJECTS_DICT

    ours = {cls: name for cls, name in KERAS_CLASSES.items() if cls[0].isupper()}
    expected = {
        key: ours[cls.__name__] for key, cls in ALL_OBJECTS_DICT.items() if cls.__name__ in ours
    }
    assert {"variance_scaling", "glorot_uniform", "he_normal", "normal", "zero"} <= set(expected)
    assert expected == KERAS_CLASSES
    # And by what they build: Keras' own reading of each snake name, config for config.
    for key in ("variance_scaling", "glorot_uniform", "lecun_normal", "random_normal", "uniform"):
        theirs = keras.initializers.get({"class_name": key, "config": {}})
        got = I.deserialize({"class_name": key, "config": {}})
        cfg = theirs.get_config()
        for name, value in got.get_config().items():
            if name in cfg and name != "seed":
                assert cfg[name] == value, (key, name)


def test_seed_generator_is_refused_with_what_to_write(keras) -> None:
    k = keras.initializers.GlorotUniform(seed=keras.random.SeedGenerator(5))
    raw = keras.initializers.serialize(k)
    with pytest.raises(ValueError) as info:
        I.deserialize(raw)
    msg = str(info.value)
    assert "SeedGenerator" in msg and '"seed": 5' in msg and '"seed": null' in msg
    raw["config"]["seed"] = 5  # what the message says to write
    assert I.deserialize(raw) == I.get("glorot_uniform", seed=5)


def test_registered_name_is_refused_with_what_to_write(keras) -> None:
    @keras.saving.register_keras_serializable(package="issue13")
    class MyInit(keras.initializers.VarianceScaling):
        pass

    raw = keras.initializers.serialize(MyInit(2.0))
    assert raw["registered_name"] == "issue13>MyInit"
    with pytest.raises(ValueError) as info:
        I.deserialize(raw)
    msg = str(info.value)
    assert "'issue13>MyInit'" in msg and '"registered_name": null' in msg
    assert "VarianceScaling" in msg
    fixed = {**raw, "class_name": "VarianceScaling", "registered_name": None}
    assert I.deserialize(fixed) == I.VarianceScaling(2.0)


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"input_axes": 2, "output_axes": [3]}, "input_axes must be a list of ints or null, got 2"),
        ({"input_axes": [2, 2], "output_axes": [3]}, "input_axes [2, 2] repeats an axis"),
        ({"input_axes": ["a"], "output_axes": [3]}, "must be a list of ints, got item 'a'"),
        ({"seed": {"class_name": "Other"}}, "a Keras seed must be an integer or null"),
        ({"seed": "x"}, "`seed` must be None or an integer"),
    ],
)
def test_bad_keras_configs(config: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        I.deserialize({"class_name": "VarianceScaling", "config": config})
    assert fragment in str(info.value)


def _spec(tmp_path: Path, tensor: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump({"version": 1, "seed": 1, "tensors": {"k": tensor}}))
    return path


KERAS_CONV = {
    "module": "keras.initializers", "class_name": "VarianceScaling", "registered_name": None,
    "config": {"scale": 2.0, "mode": "fan_in", "distribution": "truncated_normal", "seed": None,
               "input_axes": [2], "output_axes": [3]},
}


def test_cli_end_to_end_with_pasted_keras_axes(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"shape": [3, 3, 64, 128], "initializer": KERAS_CONV})
    out = tmp_path / "w.safetensors"
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(cli, ["stats", str(out), "--json"])
    doc = json.loads(result.stdout)
    assert result.exit_code == 0 and doc["ok"] is True
    (t,) = doc["tensors"]
    assert (t["fan_in"], t["fan_out"]) == (64, 128)
    assert t["target_std"] == math.sqrt(2.0 / 64)
    assert CliRunner().invoke(cli, ["verify", str(out)]).exit_code == 0


def test_spec_refuses_tensor_axes_with_keras_axes(tmp_path: Path) -> None:
    spec = _spec(tmp_path, {"shape": [3, 3, 64, 128], "in_axis": 2, "initializer": KERAS_CONV})
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(tmp_path / "w.npz")])
    assert result.exit_code == 2
    assert "the Keras input_axes/output_axes of the initializer already set the fans" in (
        result.stderr
    )
    assert "tensor 'k'" in result.stderr and not (tmp_path / "w.npz").exists()
    bad = {**KERAS_CONV, "config": {**KERAS_CONV["config"], "output_axes": [4]}}
    result = CliRunner().invoke(
        cli, ["generate", str(_spec(tmp_path, {"shape": [3, 3, 64, 128], "initializer": bad})),
              "-o", str(tmp_path / "w.npz")]
    )
    assert result.exit_code == 2 and "axis 4 is out of range for a rank-4 shape" in result.stderr


@KERAS_WARNINGS
def test_spec_from_keras_keeps_keras_axes(keras, tmp_path: Path) -> None:
    """A model whose Conv2D kernel initializer sets both axes: the spec keeps Keras' meaning
    (fans 64 x 128), the generated file loads, and the values have Keras' std."""
    from keras.src.initializers.random_initializers import compute_fans

    from varscale_cli.frameworks import dump_spec, spec_from_keras

    init = keras.initializers.HeNormal(input_axes=[2], output_axes=[3])
    model = keras.Sequential([
        keras.Input((16, 16, 64)),
        keras.layers.Conv2D(128, 3, kernel_initializer=init),
    ])
    doc = spec_from_keras(model, seed=2)
    entry = doc["tensors"]["layers/conv2d/vars/0"]
    assert "in_axis" not in entry and "out_axis" not in entry
    plan = {p.name: p for p in parse_spec(dump_spec(doc)).tensors}["layers/conv2d/vars/0"]
    fans = plan.initializer.fans(plan.full_shape, plan.layout, plan.in_axis, plan.out_axis)
    assert fans == compute_fans((3, 3, 64, 128), [2], [3]) == (64, 128)
    spec = tmp_path / "spec.yaml"
    spec.write_text(dump_spec(doc))
    out = tmp_path / "w.weights.h5"
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    model.load_weights(out)
    kernel = keras.ops.convert_to_numpy(model.layers[0].kernel).astype(np.float64)
    assert abs(kernel.std() / math.sqrt(2.0 / 64) - 1.0) < 0.011  # 5 sd at N = 73,728
