"""Real framework clients load what `varscale generate` writes from `varscale_cli.frameworks` specs.

No mocks: torch modules load the safetensors files with ``load_state_dict(strict=True)``, Keras 3
models load ``.weights.h5`` files with ``model.load_weights``, and the ``safetensors`` library
itself (numpy and torch) reads every config in every float dtype. CI installs torch (CPU wheel),
keras and safetensors and runs all of this: a test skips only when its library is not installed
at all, never because it fails to import.

Keras runs on its torch backend (torch is already the test dependency). Keras 3.15's "numpy"
backend imports jax, so it is no lighter; an explicit ``KERAS_BACKEND`` in the environment wins.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
from pathlib import Path

import h5py
import ml_dtypes  # noqa: F401  (registers bfloat16 with numpy before safetensors.numpy reads it)
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from varscale_cli.cli import cli
from varscale_cli.frameworks import (
    TORCH_DEFAULT_INIT,
    dump_spec,
    skipped_tensors,
    spec_from_keras,
    spec_from_state_dict,
)
from varscale_cli.spec import parse_spec

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
DTYPES = ("float32", "float16", "bfloat16", "float64")
Z = 5.0  # z-score bound of the variance checks
# Keras' torch backend converts with np.array(x, copy=False) (numpy 2 deprecation warning).
KERAS_WARNINGS = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)


def need(module: str):
    """Import a client library; skip only if it is not installed (import errors surface)."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (CI installs it)")
    return importlib.import_module(module)


def generate(doc: dict, out: Path) -> Path:
    """dump_spec -> spec.yaml -> `varscale generate spec.yaml -o out` (statistical check on)."""
    spec = out.with_name(out.name + ".spec.yaml")
    text = dump_spec(doc)
    parse_spec(text)  # loadable as it is
    spec.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def var_ok(values, sigma: float, kurtosis: float) -> None:
    """|s^2/sigma^2 - 1| <= Z * sqrt((kappa - 1)/N), s^2 about the known mean 0."""
    x = np.asarray(values, dtype=np.float64).ravel()
    ratio = float(np.mean(x**2)) / sigma**2
    assert abs(ratio - 1) <= Z * math.sqrt((kurtosis - 1) / x.size), (ratio, x.size)


# --- spec_from_state_dict: unit behaviour (numpy arrays are enough) ----------------------------


def test_state_dict_rules_dtypes_and_skips_from_numpy_arrays():
    bf16 = np.dtype(ml_dtypes.bfloat16)
    sd = {
        "emb.weight": np.zeros((10, 4), np.float32),
        "fc.weight": np.zeros((3, 4), np.float32),
        "fc.bias": np.zeros(3, np.float32),
        "norm.weight": np.zeros(4, bf16),
        "bn.running_mean": np.zeros(4, np.float16),
        "bn.running_var": np.zeros(4, np.float16),
        "bn.num_batches_tracked": np.zeros((), np.int64),
        "mask": np.zeros(4, bool),
        "conv.weight": np.zeros((8, 3, 3, 3), np.float64),
        "scale": np.zeros((), np.float32),
    }
    doc = spec_from_state_dict(sd, seed=7)
    t = doc["tensors"]
    assert doc["version"] == 1 and doc["seed"] == 7
    assert doc["defaults"] == {"layout": "torch", "initializer": TORCH_DEFAULT_INIT}
    assert list(t) == [n for n in sd if n not in ("bn.num_batches_tracked", "mask")]
    assert skipped_tensors(sd) == {"bn.num_batches_tracked": "int64", "mask": "bool"}
    assert t["emb.weight"]["initializer"] == {"name": "random_normal", "mean": 0.0, "stddev": 1.0}
    assert "initializer" not in t["fc.weight"] and "initializer" not in t["conv.weight"]
    assert t["fc.bias"]["initializer"] == "zeros" and t["norm.weight"]["initializer"] == "ones"
    assert t["bn.running_mean"]["initializer"] == "zeros"
    assert t["bn.running_var"]["initializer"] == "ones"
    assert t["scale"]["initializer"] == "zeros"
    assert {n: e["dtype"] for n, e in t.items()} == {
        "emb.weight": "float32",
        "fc.weight": "float32",
        "fc.bias": "float32",
        "norm.weight": "bfloat16",
        "bn.running_mean": "float16",
        "bn.running_var": "float16",
        "conv.weight": "float64",
        "scale": "float32",
    }
    plans = {p.name: p for p in parse_spec(dump_spec(doc)).tensors}
    assert plans["fc.weight"].layout == "torch" and plans["norm.weight"].dtype == "bfloat16"

    same = spec_from_state_dict(sd, dtype="bf16")
    assert same["defaults"]["dtype"] == "bfloat16"
    assert all("dtype" not in e for e in same["tensors"].values())
    with pytest.raises(ValueError, match="cannot be produced"):
        spec_from_state_dict(sd, dtype="int8")
    with pytest.raises(ValueError, match="no float tensors"):
        spec_from_state_dict({"n": np.zeros(1, np.int64)})


def test_dump_spec_quotes_yaml_1_1_names():
    doc = {
        "version": 1,
        "seed": 0,
        "tensors": {n: {"shape": [2, 2]} for n in ("yes", "12:30", "2020-01-01", "017", "é")},
    }
    text = dump_spec(doc)
    assert yaml.safe_load(text) == doc
    assert [p.name for p in parse_spec(text).tensors] == list(doc["tensors"])


# --- torch --------------------------------------------------------------------------------------


def torch_models():
    torch = need("torch")
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = nn.Sequential(
                nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)
            )

    class ConvNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(32)
            self.fc = nn.Linear(32, 10)

    class Block(nn.Module):
        """Token + position embeddings (and an integer position_ids buffer), pre-LN attention
        and MLP, an output head tied to the token embedding."""

        def __init__(self) -> None:
            super().__init__()
            self.tok_emb = nn.Embedding(200, 32)
            self.pos_emb = nn.Embedding(16, 32)
            self.ln_1 = nn.LayerNorm(32)
            self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
            self.ln_2 = nn.LayerNorm(32)
            self.mlp = nn.Sequential(nn.Linear(32, 128), nn.GELU(), nn.Linear(128, 32))
            self.ln_f = nn.LayerNorm(32)
            self.head = nn.Linear(32, 200, bias=False)
            self.head.weight = self.tok_emb.weight
            self.register_buffer("position_ids", torch.arange(16))  # as Hugging Face models do

        def forward(self, idx):
            x = self.tok_emb(idx) + self.pos_emb(self.position_ids[: idx.shape[1]])
            h = self.ln_1(x)
            x = x + self.attn(h, h, h, need_weights=False)[0]
            x = x + self.mlp(self.ln_2(x))
            return self.head(self.ln_f(x))

    return torch, {"mlp": MLP, "convnet": ConvNet, "block": Block}


@pytest.mark.parametrize("which", ["mlp", "convnet", "block"])
def test_torch_module_loads_strictly_with_spec_statistics(which, tmp_path):
    torch, models = torch_models()
    from safetensors.torch import load_file

    torch.manual_seed(0)
    model = models[which]()
    fresh = model.state_dict()
    doc = spec_from_state_dict(fresh, seed=3)
    out = generate(doc, tmp_path / "w.safetensors")
    sd = load_file(str(out))

    skipped = skipped_tensors(fresh)
    assert set(sd) == set(fresh) - set(skipped)
    if which == "convnet":
        # BatchNorm fills in its own missing num_batches_tracked when the state dict has no
        # version metadata (as with safetensors), so strict loading works as it is.
        assert skipped == {"bn1.num_batches_tracked": "int64", "bn2.num_batches_tracked": "int64"}
    elif which == "block":
        # Other integer buffers are not in the file: strict loading names exactly them ...
        assert skipped == {"position_ids": "int64"}
        with pytest.raises(RuntimeError, match=r'Missing key\(s\) in state_dict: "position_ids"'):
            model.load_state_dict(sd, strict=True)
        # ... and the fresh module's own values complete it (see frameworks' docstring).
        sd.update({name: fresh[name] for name in skipped})
    else:
        assert skipped == {}
    model.load_state_dict(sd, strict=True)

    loaded = model.state_dict()
    checked = 0
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear | torch.nn.Conv2d) and not (
            which == "block" and name == "head"  # tied to tok_emb: checked below
        ):
            w = loaded[f"{name}.weight"].numpy()
            assert "initializer" not in doc["tensors"][f"{name}.weight"]  # the default
            fan_in = math.prod(w.shape[1:])
            bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5))
            assert np.abs(w).max() <= bound * (1 + 1e-6)
            var_ok(w, bound / math.sqrt(3), 1.8)
            if module.bias is not None:
                assert not loaded[f"{name}.bias"].any()
            checked += 1
        if isinstance(module, torch.nn.LayerNorm | torch.nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert not module.bias.any()
        if isinstance(module, torch.nn.BatchNorm2d):
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
            assert not module.running_mean.any()
            assert module.num_batches_tracked.item() == 0
    assert checked == {"mlp": 3, "convnet": 3, "block": 3}[which]

    if which == "block":
        attn = model.attn
        w = attn.in_proj_weight.detach().numpy()
        var_ok(w, 1 / math.sqrt(3 * w.shape[1]), 1.8)
        assert not attn.in_proj_bias.any()
        for emb in (model.tok_emb, model.pos_emb):
            var_ok(emb.weight.detach().numpy(), 1.0, 3.0)  # nn.Embedding's N(0, 1)
        # Tied weights are one stream in the spec, so the file holds them equal.
        assert doc["tensors"]["head.weight"]["partition"]["of"] == "tok_emb.weight"
        assert torch.equal(sd["head.weight"], sd["tok_emb.weight"])
        assert model(torch.zeros(2, 5, dtype=torch.long)).shape == (2, 5, 200)


def test_meta_device_module_gives_the_same_spec_without_false_ties():
    torch, models = torch_models()
    real = spec_from_state_dict(models["block"]().state_dict())
    with torch.device("meta"):
        meta = spec_from_state_dict(models["block"]().state_dict())
    assert meta == real  # the tie is found without memory; nothing else is tied
    assert [n for n, e in real["tensors"].items() if "partition" in e] == ["head.weight"]


def test_torch_bfloat16_spec_loads_into_a_bfloat16_module(tmp_path):
    torch, models = torch_models()
    from safetensors.torch import load_file

    model = models["convnet"]().to(torch.bfloat16)
    fresh = model.state_dict()
    doc = spec_from_state_dict(fresh)
    assert doc["defaults"]["dtype"] == "bfloat16"
    sd = load_file(str(generate(doc, tmp_path / "bf16.safetensors")))
    assert {t.dtype for t in sd.values()} == {torch.bfloat16}
    model.load_state_dict(sd, strict=True)
    w = model.fc.weight.detach().float().numpy()
    assert np.abs(w).max() <= 1 / math.sqrt(32) * (1 + 2**-7)


def test_gpt_block_config_loads_into_a_matching_module(tmp_path):
    torch = need("torch")
    from safetensors.torch import load_file

    nn = torch.nn

    class Attn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.qkv = nn.Linear(256, 768)
            self.proj = nn.Linear(256, 256)

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(256, 1024)
            self.proj = nn.Linear(1024, 256)

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(256), Attn()
            self.ln_2, self.mlp = nn.LayerNorm(256), MLP()

    class GPT(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok_emb = nn.Embedding(1000, 256)
            self.blocks = nn.ModuleList([Block()])
            self.ln_f = nn.LayerNorm(256)

    doc = yaml.safe_load((ROOT / "configs" / "gpt_block.yaml").read_text())
    model = GPT()
    sd = load_file(str(generate(doc, tmp_path / "gpt.safetensors")))
    assert list(sd) == sorted(doc["tensors"])  # safetensors sorts its header
    model.load_state_dict(sd, strict=True)

    for ln in (model.blocks[0].ln_1, model.blocks[0].ln_2, model.ln_f):
        assert torch.equal(ln.weight, torch.ones(256)) and not ln.bias.any()
    var_ok(model.tok_emb.weight.detach().numpy(), 0.02, 3.0)
    qkv = model.blocks[0].attn.qkv.weight.detach().numpy()  # xavier_uniform (the default)
    limit = math.sqrt(6 / (256 + 768))
    assert np.abs(qkv).max() <= limit * (1 + 1e-6)
    var_ok(qkv, limit / math.sqrt(3), 1.8)
    fc = model.blocks[0].mlp.fc.weight.detach().numpy()  # kaiming_normal(relu): sqrt(2 / fan_in)
    var_ok(fc, math.sqrt(2 / 256), 3.0)


# --- Keras 3 ------------------------------------------------------------------------------------


def keras_models(keras):
    layers = keras.layers

    def sequential():
        return keras.Sequential(
            [keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dense(4)]
        )

    def functional():
        inp = keras.Input((8, 8, 3))
        x = layers.Conv2D(4, 3, use_bias=False, kernel_initializer="he_normal")(inp)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(8)(x)
        x = layers.LayerNormalization()(x)
        return keras.Model(inp, layers.Dense(3)(x))

    def embedding():
        inp = keras.Input((5,), dtype="int32")
        x = layers.Embedding(20, 6)(inp)
        x = layers.LayerNormalization()(x)
        return keras.Model(inp, layers.Dense(2)(x))

    def attention():  # sublayers are saved under their attribute names
        inp = keras.Input((5, 8))
        x = layers.MultiHeadAttention(2, 4)(inp, inp)
        return keras.Model(inp, layers.Dense(3)(x))

    return {
        "sequential": sequential,
        "functional": functional,
        "embedding": embedding,
        "attention": attention,
    }


def h5_datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file, bfloat16 recovered from Keras' attribute."""
    out: dict[str, np.ndarray] = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and not name.startswith("__"):
            if obj.attrs.get("dtype") == "bfloat16":
                out[name] = np.array(obj, dtype=ml_dtypes.bfloat16)
            else:
                out[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


@KERAS_WARNINGS
@pytest.mark.parametrize("which", ["sequential", "functional", "embedding", "attention"])
def test_keras_model_loads_generated_weights_h5(which, tmp_path):
    keras = need("keras")
    model = keras_models(keras)[which]()
    reference = tmp_path / "keras.weights.h5"
    model.save_weights(reference)

    doc = spec_from_keras(model, seed=5)
    assert sorted(doc["tensors"]) == sorted(h5_datasets(reference))  # Keras' own paths
    for name, entry in doc["tensors"].items():
        assert list(h5_datasets(reference)[name].shape) == entry["shape"]
    assert doc["defaults"] == {"dtype": "float32", "layout": "keras"}

    out = generate(doc, tmp_path / "w.weights.h5")
    model.load_weights(out)
    written = h5_datasets(out)
    # What the model now holds, as Keras itself saves it, is exactly the file's data.
    roundtrip = tmp_path / "roundtrip.weights.h5"
    model.save_weights(roundtrip)
    again = h5_datasets(roundtrip)
    assert sorted(again) == sorted(written)
    for name, expected in written.items():
        np.testing.assert_array_equal(again[name], expected, err_msg=name)
    # And directly: the output Dense's kernel (its class's second Dense where there are two).
    kernel = (
        "layers/dense/vars/0" if which in ("embedding", "attention") else "layers/dense_1/vars/0"
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model.layers[-1].kernel), written[kernel]
    )

    if which == "functional":
        t = doc["tensors"]
        assert t["layers/conv2d/vars/0"]["initializer"]["class_name"] == "HeNormal"
        gamma, beta, mean, var = (written[f"layers/batch_normalization/vars/{i}"] for i in range(4))
        assert (gamma == 1).all() and (beta == 0).all() and (mean == 0).all() and (var == 1).all()
        assert (written["layers/layer_normalization/vars/0"] == 1).all()
        kernel = written["layers/dense/vars/0"]  # glorot_uniform: limit sqrt(6 / (4 + 8))
        assert np.abs(kernel).max() <= math.sqrt(6 / 12) * (1 + 1e-6)
    if which == "embedding":
        table = written["layers/embedding/vars/0"]  # Keras' default RandomUniform(-0.05, 0.05)
        assert np.abs(table).max() <= 0.05 and table.std() > 0.01


@KERAS_WARNINGS
def test_keras_bfloat16_policy_loads_the_bfloat16_attribute_convention(tmp_path):
    keras = need("keras")
    layers = keras.layers
    model = keras.Sequential(
        [keras.Input((8,)), layers.Dense(16, dtype="bfloat16"), layers.Dense(4, dtype="bfloat16")]
    )
    reference = tmp_path / "keras.weights.h5"
    model.save_weights(reference)
    doc = spec_from_keras(model)
    assert doc["defaults"]["dtype"] == "bfloat16"

    out = generate(doc, tmp_path / "bf16.weights.h5")
    with h5py.File(reference, "r") as ref, h5py.File(out, "r") as ours:
        for name in doc["tensors"]:  # stored exactly as Keras stores bfloat16
            assert ours[name].dtype == ref[name].dtype == np.dtype("V2")
            assert ours[name].attrs["dtype"] == ref[name].attrs["dtype"] == "bfloat16"
    model.load_weights(out)
    written = h5_datasets(out)
    assert {a.dtype for a in written.values()} == {np.dtype(ml_dtypes.bfloat16)}
    for i, layer in enumerate(model.layers):
        group = "layers/dense" + (f"_{i}" if i else "")
        for j, var in enumerate((layer.kernel, layer.bias)):
            assert keras.backend.standardize_dtype(var.dtype) == "bfloat16"
            loaded = keras.ops.convert_to_numpy(keras.ops.cast(var, "float32"))
            expected = written[f"{group}/vars/{j}"].astype(np.float32)
            np.testing.assert_array_equal(loaded, expected)
    assert np.abs(written["layers/dense/vars/0"].astype(np.float32)).any()


def test_spec_from_keras_refuses_non_float_variables_and_skips_the_optimizer(tmp_path):
    keras = need("keras")

    class Counter(keras.layers.Layer):
        def build(self, input_shape):
            self.count = self.add_weight(
                shape=(), dtype="int32", initializer="zeros", trainable=False
            )
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.scale

    model = keras.Sequential([keras.Input((3,)), Counter()])
    with pytest.raises(ValueError, match=r"layers/counter/vars/1 \(int32\)"):
        spec_from_keras(model)

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.optimizer.build(model.trainable_variables)
    doc = spec_from_keras(model)
    assert list(doc["tensors"]) == ["layers/dense/vars/0", "layers/dense/vars/1"]


# --- the safetensors library reads every file we write ------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_safetensors_library_reads_every_config_in_every_dtype(config, dtype, tmp_path):
    torch = need("torch")
    from safetensors import safe_open
    from safetensors.numpy import load_file as load_numpy
    from safetensors.torch import load_file as load_torch

    doc = yaml.safe_load(config.read_text())
    doc["defaults"]["dtype"] = dtype  # the configs set dtypes only in their defaults
    assert all("dtype" not in r for r in doc.get("rules", []))
    out = generate(doc, tmp_path / f"{config.stem}.safetensors")
    plans = {p.name: p for p in parse_spec(dump_spec(doc)).tensors}

    as_numpy = load_numpy(str(out))
    as_torch = load_torch(str(out))
    with safe_open(str(out), framework="pt") as f:
        metadata = f.metadata()
        keys = list(f.keys())
        lazy = {k: f.get_tensor(k) for k in keys}
    assert sorted(plans) == sorted(as_numpy) == sorted(as_torch) == keys
    assert metadata["format"] == "pt"
    provenance = json.loads(metadata["varscale"])
    assert provenance["seed"] == doc["seed"] and sorted(provenance["tensors"]) == keys
    want_np = np.dtype(ml_dtypes.bfloat16) if dtype == "bfloat16" else np.dtype(dtype)
    for name, plan in plans.items():
        a, t = as_numpy[name], as_torch[name]
        assert a.dtype == want_np and str(t.dtype) == f"torch.{dtype}"
        assert a.shape == t.shape == plan.shape
        assert provenance["tensors"][name]["dtype"] == dtype
        bits = {2: (np.int16, torch.int16), 4: (np.int32, torch.int32), 8: (np.int64, torch.int64)}
        np_int, torch_int = bits[a.dtype.itemsize]
        expected = a.view(np_int)
        assert np.array_equal(t.view(torch_int).numpy(), expected), name
        assert torch.equal(lazy[name], t), name
        assert np.isfinite(a.astype(np.float64)).all(), name
