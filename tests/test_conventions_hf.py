"""`varscale spec HF_FOLDER` against transformers' own fresh initialization.

For each covered family a tiny model is built from a config (never downloaded) and saved with
``save_pretrained``; `varscale spec` derives the spec from that folder and `varscale generate`
writes it under several seeds. Every tensor of the generated files is compared with
``Model(config)`` built under as many seeds (`fresh_init.compare`: constants and the padding
row exactly, the rest by a two-sample KS test and a std tolerance), and the first generated
folder loads with ``from_pretrained`` with no missing, unexpected or mismatched key and runs.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fresh_init import compare, pool

from varscale_cli.cli import cli

if importlib.util.find_spec("transformers") is None:  # pragma: no cover - CI installs it
    pytest.skip("transformers is not installed (CI installs it)", allow_module_level=True)

import torch  # noqa: E402
import transformers  # noqa: E402

SEEDS = range(5)
TINY = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64}
MODELS = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {**TINY, "pad_token_id": 0}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {**TINY, "pad_token_id": 5}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {**TINY, "pad_token_id": 1, "tie_word_embeddings": True}),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", {"vocab_size": 96, "n_embd": 32, "n_layer": 3, "n_head": 4, "n_positions": 64}),
    "bert": ("BertConfig", "BertForMaskedLM", {"vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 64}),
}
HF_WARNINGS = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:transformers.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


def _build(family: str, seed: int):
    config_name, model_name, kwargs = MODELS[family]
    config = getattr(transformers, config_name)(**kwargs)
    torch.manual_seed(seed)
    return getattr(transformers, model_name)(config)


def _spec(folder: Path, spec: Path) -> str:
    result = CliRunner().invoke(cli, ["spec", str(folder)])
    assert result.exit_code == 0, result.output
    spec.write_text(result.stdout, encoding="utf-8")
    return result.output


def _generate(spec: Path, out: Path, seed: int) -> dict[str, np.ndarray]:
    import safetensors.numpy

    args = ["generate", str(spec), "-o", str(out), "-q", "--seed", str(seed)]
    result = CliRunner().invoke(cli, args if seed == 0 else [*args, "--no-check"])
    assert result.exit_code == 0, result.output
    return safetensors.numpy.load_file(out / "model.safetensors")


@pytest.mark.parametrize("family", list(MODELS))
def test_hf_folder_spec_matches_transformers_fresh_init(family, tmp_path, *_):
    src = tmp_path / "src"
    model = _build(family, 0)
    model.save_pretrained(src)
    text = _spec(src, tmp_path / "spec.yaml")
    assert "HF convention" in text and "initializer_range 0.02" in text
    gen = [_generate(tmp_path / "spec.yaml", tmp_path / f"out{s}", s) for s in SEEDS]
    names = list(gen[0])
    fresh = pool(
        [{n: t.detach().numpy() for n, t in _build(family, s).state_dict().items() if n in names} for s in SEEDS]
    )
    result = compare(fresh, pool(gen), names)
    assert not result.failures, "\n".join(result.failures)
    assert len(result.ks) >= 8
    pad = MODELS[family][2].get("pad_token_id", 0 if family == "bert" else None)
    assert ([pad] if pad is not None else []) == [r for rows in result.zero_rows.values() for r in rows]

    out = tmp_path / "out0"
    assert json.loads((out / "config.json").read_text())["model_type"] == family
    cls = type(model)
    loaded, info = cls.from_pretrained(out, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    state = loaded.state_dict()
    for name, value in gen[0].items():
        assert np.array_equal(state[name].detach().numpy(), value), name
    with torch.no_grad():
        logits = loaded(input_ids=torch.tensor([[2, 3, 4, 5]])).logits
    assert logits.shape == (1, 4, 96) and torch.isfinite(logits).all()


for mark in HF_WARNINGS:
    test_hf_folder_spec_matches_transformers_fresh_init = mark(test_hf_folder_spec_matches_transformers_fresh_init)


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_other_model_type_gets_the_generic_rule_and_a_warning(tmp_path):
    config = transformers.OPTConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                    ffn_dim=32, num_attention_heads=2, max_position_embeddings=32,
                                    word_embed_proj_dim=16)
    transformers.OPTForCausalLM(config).save_pretrained(tmp_path / "opt")
    result = CliRunner().invoke(cli, ["spec", str(tmp_path / "opt")])
    assert result.exit_code == 0, result.output
    assert "model_type 'opt' has no family rules" in result.stderr
    assert "generic HF rule" in result.stderr


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_sharded_hf_folder_round_trips_through_spec_and_from_pretrained(tmp_path):
    model = _build("llama", 0)
    model.save_pretrained(tmp_path / "src")
    _spec(tmp_path / "src", tmp_path / "spec.yaml")
    out = tmp_path / "sharded"
    args = ["generate", str(tmp_path / "spec.yaml"), "-o", str(out), "-q", "--num-shards", "2"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors.index.json").is_file() and (out / "config.json").is_file()
    again = CliRunner().invoke(cli, ["spec", str(out)])  # a sharded HF folder reads back
    body = (tmp_path / "spec.yaml").read_text().split("\n", 1)[1]  # all but the path line
    assert again.exit_code == 0 and again.stdout.split("\n", 1)[1] == body
    loaded, info = type(model).from_pretrained(out, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
