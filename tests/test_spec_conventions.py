"""The spec features the framework conventions need: ``torch.default_bias`` (a bias bound from
its weight's fans), ``zero_rows`` (an embedding's padding row) and ``residual_layers`` (a
depth-scaled std); and `varscale spec` of a Hugging Face folder without the frameworks."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy
from click.testing import CliRunner

from varscale_cli.cli import cli
from varscale_cli.errors import SpecError
from varscale_cli.spec import parse_spec


def spec(tensors: str, extra: str = "") -> str:
    return f"version: 1\nseed: 3\ndefaults: {{layout: torch}}\n{extra}tensors:\n{tensors}"


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_default_bias_takes_the_fans_of_its_weight():
    s = parse_spec(spec(
        "  fc.bias: {shape: [3], initializer: {name: torch.default_bias, weight: fc.weight}}\n"
        "  fc.weight: {shape: [3, 16]}\n"
        "  conv.bias: {shape: [8]}\n"
        "  conv.weight: {shape: [8, 4, 3, 3]}\n",
        "rules:\n- {match: '*.bias', initializer: {name: torch.default_bias, weight: .weight}}\n",
    ))
    plans = {p.name: p for p in s.tensors}
    fc, conv = plans["fc.bias"].initializer, plans["conv.bias"].initializer
    assert fc.to_spec() == {"name": "torch.default_bias", "weight": "fc.weight", "fan_in": 16}
    assert fc.distribution(3, 3).scale == 0.25  # U(+-1/sqrt(16)), whatever the bias's own fans
    assert conv.to_spec()["weight"] == "conv.weight" and conv.to_spec()["fan_in"] == 36
    assert plans["fc.bias"].source["initializer"]["fan_in"] == 16


def test_default_bias_of_a_weight_with_fan_in_zero_is_zeros_as_in_torch():
    s = parse_spec(spec(
        "  b: {shape: [5], initializer: {name: torch.default_bias, weight: w}}\n  w: {shape: [5, 0]}\n"
    ))
    assert s.tensors[0].initializer.distribution(5, 5).kind == "constant"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{name: torch.default_bias, weight: fc.wieght}",
         "takes the fans of 'fc.wieght', which is not a tensor of this spec (did you mean 'fc.weight'?)"),
        ("{name: torch.default_bias, weight: fc.weight, fan_in: 3}",
         "fan_in 3 differs from the fan_in 16 of its weight 'fc.weight'; drop fan_in"),
        ("{name: torch.default_bias, weight: 3}", "`weight` must be a tensor name"),
    ],
)
def test_default_bias_errors_name_the_problem(entry, message):
    with pytest.raises(SpecError, match="tensor 'fc.bias': .*" + re.escape(message)):
        parse_spec(spec(f"  fc.bias: {{shape: [3], initializer: {entry}}}\n  fc.weight: {{shape: [3, 16]}}\n"))


def test_default_bias_alone_needs_a_fan_in():
    from varscale_cli.core.initializers import get

    with pytest.raises(ValueError, match="needs the fan_in of its weight"):
        get("torch.default_bias")((4,))
    values = get("torch.default_bias", fan_in=4, seed=1)((1000,))
    assert np.abs(values).max() <= 0.5 and np.abs(values).max() > 0.45


def test_zero_rows_are_exact_zeros_and_survive_verify(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(spec(
        "  emb: {shape: [10, 4], initializer: {name: random_normal, stddev: 1.0}, zero_rows: [0, -1]}\n"
        "  tied: {shape: [10, 4], initializer: {name: random_normal, stddev: 1.0}, zero_rows: [9, 0],"
        " partition: {of: emb, full_shape: [10, 4], offset: [0, 0]}}\n"
    ))
    assert parse_spec(path.read_text()).tensors[0].zero_rows == (0, 9)
    out = tmp_path / "w.safetensors"
    assert invoke("generate", str(path), "-o", str(out), "-q")[0] == 0
    w = safetensors.numpy.load_file(out)
    assert np.all(w["emb"][[0, 9]] == 0) and np.all(w["emb"][1:9] != 0)
    assert np.array_equal(w["emb"], w["tied"])
    code, _, err = invoke("verify", str(out))
    assert code == 0, err
    meta = json.loads(safetensors.safe_open(out, "np").metadata()["varscale"])
    assert meta["tensors"]["emb"]["zero_rows"] == [0, 9]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{shape: [4, 2], zero_rows: [4]}", "zero_rows 4 is out of range for 4 rows (allowed: -4 .. 3)"),
        ("{shape: [4, 2], zero_rows: [1, -3]}", "zero_rows [1, -3] names a row twice"),
        ("{shape: [], zero_rows: [0]}", "zero_rows needs a tensor of rank >= 1"),
        ("{shape: [4], zero_rows: [1.0]}", "zero_rows"),
    ],
)
def test_zero_rows_errors(entry, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(spec(f"  t: {entry}\n"))


def test_partitions_of_one_stream_must_agree_on_zero_rows():
    with pytest.raises(SpecError, match="zero_rows"):
        parse_spec(spec(
            "  a: {shape: [4, 2], zero_rows: [0]}\n"
            "  b: {shape: [4, 2], partition: {of: a, full_shape: [4, 2], offset: [0, 0]}}\n"
        ))


def test_residual_layers_scale_the_std():
    from varscale_cli.core.initializers import get

    init = get("random_normal", stddev=0.02, residual_layers=8)
    assert init.distribution(1, 1).scale == pytest.approx(0.02 / math.sqrt(8))
    assert init.to_spec() == {"name": "random_normal", "mean": 0.0, "stddev": 0.02, "residual_layers": 8}
    assert "residual_layers" not in get("random_normal").to_spec()  # unchanged provenance
    for bad in (0, 2.0, True):
        with pytest.raises(ValueError, match="`residual_layers` must be a positive integer"):
            get("random_normal", residual_layers=bad)


def test_stats_passes_a_file_whose_norm_scales_are_zero_because_the_spec_said_so(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(spec("  norm.weight: {shape: [4096], initializer: zeros}\n  fc.weight: {shape: [64, 128]}\n"))
    out = tmp_path / "w.safetensors"
    assert invoke("generate", str(path), "-o", str(out), "-q")[0] == 0
    code, _, err = invoke("stats", str(out))
    assert code == 0, err


def _hf_folder(tmp_path: Path, config: dict, tensors: dict[str, tuple[int, ...]]) -> Path:
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    safetensors.numpy.save_file(
        {n: np.zeros(s, np.float32) for n, s in tensors.items()}, folder / "model.safetensors",
        metadata={"format": "pt"},
    )
    return folder


def test_hf_gpt2_spec_shows_its_rules_and_writes_the_config_beside_the_weights(tmp_path):
    config = {"model_type": "gpt2", "n_layer": 2, "initializer_range": 0.01, "architectures": ["GPT2LMHeadModel"]}
    folder = _hf_folder(tmp_path, config, {
        "transformer.wte.weight": (32, 8), "transformer.h.0.attn.c_attn.weight": (8, 24),
        "transformer.h.0.attn.c_attn.bias": (24,), "transformer.h.0.attn.c_proj.weight": (8, 8),
        "transformer.h.0.ln_1.weight": (8,), "transformer.ln_f.weight": (8,),
    })
    code, text, err = invoke("spec", str(folder))
    assert code == 0, err
    assert "HF convention" in text and "initializer_range 0.01" in text
    assert "{match: '*c_proj.weight', initializer: {name: random_normal, mean: 0.0, stddev: 0.01, residual_layers: 4}}" in text
    assert "{match: '*.c_attn.weight', layout: keras}" in text
    path = tmp_path / "s.yaml"
    path.write_text(text)
    plans = {p.name: p for p in parse_spec(text).tensors}
    assert plans["transformer.h.0.attn.c_attn.weight"].layout == "keras"
    assert plans["transformer.h.0.ln_1.weight"].initializer.name == "ones"
    code, _, err = invoke("generate", str(path), "-o", str(tmp_path / "out"), "-q")
    assert code == 0, err
    assert json.loads((tmp_path / "out" / "config.json").read_text()) == config
    code, _, err = invoke("generate", str(path), "-o", str(tmp_path / "out"), "-q")
    assert code == 2 and "config.json' exists; pass --force" in err


def test_hf_tied_head_in_the_file_is_a_partition_of_the_embedding(tmp_path):
    config = {"model_type": "llama", "tie_word_embeddings": True, "pad_token_id": 2}
    folder = _hf_folder(tmp_path, config, {
        "model.embed_tokens.weight": (16, 4), "lm_head.weight": (16, 4), "model.norm.weight": (4,),
    })
    code, text, err = invoke("spec", str(folder))
    assert code == 0, err
    plans = {p.name: p for p in parse_spec(text).tensors}
    assert plans["lm_head.weight"].stream == "model.embed_tokens.weight"
    assert plans["lm_head.weight"].zero_rows == plans["model.embed_tokens.weight"].zero_rows == (2,)
    assert "pad_token_id 2: row 2 of model.embed_tokens.weight zeroed" in text


def test_keras_file_spec_gives_normalization_scales_ones_not_zeros(tmp_path):
    import h5py

    path = tmp_path / "m.weights.h5"
    with h5py.File(path, "w") as f:
        for i, shape in enumerate([(8,)] * 4):
            f.create_dataset(f"layers/batch_normalization/vars/{i}", data=np.zeros(shape, np.float32))
        f.create_dataset("layers/layer_normalization/vars/0", data=np.zeros(8, np.float32))
        f.create_dataset("layers/layer_normalization/vars/1", data=np.zeros(8, np.float32))
        f.create_dataset("layers/mystery/vars/0", data=np.zeros(8, np.float32))
        for i, shape in enumerate([(4, 32), (8, 32), (32,)]):
            f.create_dataset(f"layers/lstm/cell/vars/{i}", data=np.zeros(shape, np.float32))
    code, text, err = invoke("spec", str(path))
    assert code == 0, err
    init = {p.name: p.initializer.name for p in parse_spec(text).tensors}
    assert [init[f"layers/batch_normalization/vars/{i}"] for i in range(4)] == ["ones", "zeros", "zeros", "ones"]
    assert init["layers/layer_normalization/vars/0"] == "ones"
    assert "layers/mystery/vars/0 (vector: zeros)" in err
    assert "Orthogonal" in err and "layers/lstm/cell/vars/1" in err  # what it cannot reproduce
    assert "unit_forget_bias" in err and "layers/lstm/cell/vars/2" in err
