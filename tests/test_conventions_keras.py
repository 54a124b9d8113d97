"""Keras specs against Keras' own fresh initialization: `spec_from_keras` (the model walk) and
`varscale spec x.weights.h5` (names only), for every variable of two small models.

Each model is built under several seeds and saved with ``save_weights``; the generated files
are compared dataset by dataset (`fresh_init.compare`), then loaded with ``load_weights`` and
run.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from fresh_init import compare, pool

from varscale_cli.cli import cli
from varscale_cli.frameworks import dump_spec, spec_from_keras

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

if importlib.util.find_spec("keras") is None:  # pragma: no cover - CI installs keras
    pytest.skip("keras is not installed (CI installs it)", allow_module_level=True)

import keras  # noqa: E402

SEEDS = range(5)
pytestmark = [
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"),
]


def conv_model() -> keras.Model:
    x = inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.SeparableConv2D(6, 1)(x)
    x = keras.layers.Conv2DTranspose(4, 3)(x)
    x = keras.layers.BatchNormalization(center=False)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16)(x)
    x = keras.layers.LayerNormalization()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def sequence_model() -> keras.Model:
    tokens = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(50, 16)(tokens)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x)
    x = keras.layers.GroupNormalization(groups=4)(x)
    x = keras.layers.Conv1D(8, 3)(x)
    return keras.Model(tokens, keras.layers.Dense(3)(x))


MODELS = {"conv": (conv_model, (2, 8, 8, 3)), "sequence": (sequence_model, (2, 6))}


def h5_datasets(path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, obj: out.__setitem__(n, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _fresh(build, seed: int, tmp_path: Path) -> dict[str, np.ndarray]:
    keras.utils.set_random_seed(seed)
    path = tmp_path / f"fresh{seed}.weights.h5"
    build().save_weights(path)
    return h5_datasets(path)


def _generate(spec: Path, tmp_path: Path) -> list[dict[str, np.ndarray]]:
    out = []
    for s in SEEDS:
        path = tmp_path / f"{spec.stem}{s}.weights.h5"
        args = ["generate", str(spec), "-o", str(path), "-q", "--seed", str(s)]
        result = CliRunner().invoke(cli, args if s == 0 else [*args, "--no-check"])
        assert result.exit_code == 0, result.output
        out.append(h5_datasets(path))
    return out


@pytest.mark.parametrize("route", ["model", "file"])
@pytest.mark.parametrize("which", list(MODELS))
def test_keras_spec_matches_keras_fresh_init(which, route, tmp_path):
    build, input_shape = MODELS[which]
    fresh = pool([_fresh(build, s, tmp_path) for s in SEEDS])
    spec = tmp_path / f"{route}.yaml"
    if route == "model":
        keras.utils.set_random_seed(0)
        spec.write_text(dump_spec(spec_from_keras(build())), encoding="utf-8")
    else:
        result = CliRunner().invoke(cli, ["spec", str(tmp_path / "fresh0.weights.h5")])
        assert result.exit_code == 0, result.output
        assert "convention keras" in result.stdout
        spec.write_text(result.stdout, encoding="utf-8")
    gen = _generate(spec, tmp_path)
    result = compare(fresh, pool(gen))
    assert not result.failures, "\n".join(result.failures)
    assert set(gen[0]) == set(fresh)
    if which == "conv":
        bn = "layers/batch_normalization/vars"
        assert [result.constants[f"{bn}/{i}"] for i in range(4)] == [1.0, 0.0, 0.0, 1.0]
    model = build()
    model.load_weights(tmp_path / f"{route}0.weights.h5")
    x = np.zeros(input_shape, "int32") + 3 if which == "sequence" else np.ones(input_shape, "float32")
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(model(x))))
