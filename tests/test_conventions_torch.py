"""`spec_from_module` against torch's own ``reset_parameters``, module type by module type.

Each model is built fresh under several seeds and generated from its spec under as many;
`fresh_init.compare` checks every tensor (constants and zero rows exactly, the rest by a
two-sample KS test and a std tolerance, ties exactly). The generated files load with
``load_state_dict(strict=True)`` and run a forward pass.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fresh_init import compare, pool

from varscale_cli.cli import cli
from varscale_cli.frameworks import dump_spec

SEEDS = range(6)

if importlib.util.find_spec("torch") is None:  # pragma: no cover - CI installs torch
    pytest.skip("torch is not installed (CI installs it)", allow_module_level=True)

import torch  # noqa: E402
from torch import nn  # noqa: E402

from varscale_cli.frameworks.torch_modules import spec_from_module, torch_file_entries  # noqa: E402


class Zoo(nn.Module):
    """One of every torch.nn module type that owns parameters, plus a tied head."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(16, 24)
        self.bilinear = nn.Bilinear(8, 6, 10)
        self.conv1d = nn.Conv1d(4, 8, 3)
        self.conv2d = nn.Conv2d(4, 8, 3, groups=2)
        self.conv3d = nn.Conv3d(2, 4, 2)
        self.convt1d = nn.ConvTranspose1d(4, 6, 3)
        self.convt2d = nn.ConvTranspose2d(8, 16, 3, groups=4)
        self.convt3d = nn.ConvTranspose3d(2, 4, 2)
        self.bn1d = nn.BatchNorm1d(8)
        self.bn2d = nn.BatchNorm2d(8)
        self.bn3d = nn.BatchNorm3d(4)
        self.in2d = nn.InstanceNorm2d(8, affine=True, track_running_stats=True)
        self.ln = nn.LayerNorm(16)
        self.gn = nn.GroupNorm(2, 8)
        self.rms = nn.RMSNorm(16)
        self.emb = nn.Embedding(50, 16, padding_idx=3)
        self.bag = nn.EmbeddingBag(40, 8, padding_idx=-1)
        self.mha = nn.MultiheadAttention(16, 2, add_bias_kv=True)
        self.mha_kv = nn.MultiheadAttention(16, 2, kdim=8, vdim=12)
        self.rnn = nn.RNN(8, 12, num_layers=2, bidirectional=True)
        self.lstm = nn.LSTM(8, 12, proj_size=6)
        self.gru = nn.GRU(8, 10)
        self.rnn_cell = nn.RNNCell(8, 10)
        self.lstm_cell = nn.LSTMCell(8, 10)
        self.gru_cell = nn.GRUCell(8, 10)
        self.prelu = nn.PReLU(4)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(16, 2, 32), 2)
        self.head = nn.Linear(16, 50, bias=False)
        self.head.weight = self.emb.weight

    def run(self) -> None:
        """A forward pass through every part."""
        x16, x8 = torch.randn(3, 16), torch.randn(3, 8)
        self.linear(x16)
        self.bilinear(x8, torch.randn(3, 6))
        self.conv1d(torch.randn(1, 4, 9))
        self.conv2d(torch.randn(1, 4, 9, 9))
        self.conv3d(torch.randn(1, 2, 5, 5, 5))
        self.convt1d(torch.randn(1, 4, 9))
        self.convt2d(torch.randn(1, 8, 5, 5))
        self.convt3d(torch.randn(1, 2, 3, 3, 3))
        self.bn1d(torch.randn(4, 8))
        self.bn2d(torch.randn(2, 8, 3, 3))
        self.bn3d(torch.randn(2, 4, 2, 2, 2))
        self.in2d(torch.randn(2, 8, 3, 3))
        self.ln(x16), self.gn(torch.randn(2, 8, 3)), self.rms(x16)
        tokens = torch.tensor([[1, 3, 5]])
        self.head(self.emb(tokens))
        self.bag(tokens)
        seq = torch.randn(5, 2, 16)
        self.mha(seq, seq, seq)
        self.mha_kv(seq, torch.randn(5, 2, 8), torch.randn(5, 2, 12))
        self.rnn(torch.randn(5, 2, 8)), self.lstm(torch.randn(5, 2, 8)), self.gru(torch.randn(5, 2, 8))
        self.rnn_cell(x8), self.lstm_cell(x8), self.gru_cell(x8)
        self.prelu(torch.randn(2, 4, 3))
        self.encoder(seq)


class Small(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.transformer = nn.Transformer(16, 2, 1, 2, 24)

    def run(self) -> None:
        self.transformer(torch.randn(5, 2, 16), torch.randn(4, 2, 16))


def _fresh(cls: type, seed: int) -> dict[str, np.ndarray]:
    torch.manual_seed(seed)
    return {n: t.detach().numpy().copy() for n, t in cls().state_dict().items() if t.is_floating_point()}


def _generated(doc: dict, tmp_path: Path, seeds) -> list[dict[str, np.ndarray]]:
    import safetensors.numpy

    spec = tmp_path / "spec.yaml"
    spec.write_text(dump_spec(doc), encoding="utf-8")
    out = []
    for s in seeds:
        path = tmp_path / f"w{s}.safetensors"
        args = ["generate", str(spec), "-o", str(path), "-q", "--seed", str(s), "--force"]
        result = CliRunner().invoke(cli, args if s == 0 else [*args, "--no-check"])
        assert result.exit_code == 0, result.output
        out.append(safetensors.numpy.load_file(path))
    return out


@pytest.mark.filterwarnings("ignore:enable_nested_tensor:UserWarning")
@pytest.mark.parametrize("cls", [Zoo, Small], ids=["every-module-type", "nn.Transformer"])
def test_module_spec_matches_torch_fresh_init(cls, tmp_path):
    import safetensors.torch

    torch.manual_seed(0)
    model = cls()
    doc = spec_from_module(model)
    gen = _generated(doc, tmp_path, SEEDS)
    fresh = pool([_fresh(cls, s) for s in SEEDS])
    result = compare(fresh, pool(gen))
    assert not result.failures, "\n".join(result.failures)
    assert len(result.ks) >= (40 if cls is Zoo else 20)
    if cls is Zoo:
        assert result.zero_rows == {"emb.weight": {3}, "head.weight": {3}, "bag.weight": {39}}
        assert frozenset(("emb.weight", "head.weight")) in result.ties
        assert frozenset(("encoder.layers.0.linear1.weight", "encoder.layers.1.linear1.weight")) in result.ties
        assert result.constants["mha.out_proj.bias"] == 0.0 and result.constants["bn2d.running_var"] == 1.0
        assert result.constants["prelu.weight"] == 0.25
    loaded = cls()
    loaded.load_state_dict(safetensors.torch.load_file(tmp_path / "w0.safetensors"), strict=True)
    for name, value in loaded.state_dict().items():
        if value.is_floating_point():
            assert np.array_equal(value.numpy(), gen[0][name]), name
    loaded.run()


def test_file_entries_name_the_guesses():
    entries, notes = torch_file_entries(
        [
            ("h.0.attn.c_attn.weight", (16, 48)),
            ("h.0.attn.c_attn.bias", (48,)),
            ("fc.weight", (3, 4)),
            ("fc.bias", (3,)),
            ("proj.weight", (4, 4)),
            ("tok_emb.weight", (10, 4)),
            ("norm.weight", (4,)),
            ("scale.weight", (4,)),
            ("lstm.weight_ih_l0", (32, 4)),
            ("lstm.weight_hh_l0", (32, 8)),
            ("lstm.bias_ih_l0", (32,)),
            ("attn.in_proj_weight", (12, 4)),
            ("attn.in_proj_bias", (12,)),
            ("attn.out_proj.weight", (4, 4)),
            ("attn.out_proj.bias", (4,)),
        ]
    )
    assert entries["h.0.attn.c_attn.weight"]["layout"] == "keras"
    assert entries["fc.bias"]["initializer"] == {"name": "torch.default_bias", "weight": ".weight"}
    assert entries["lstm.bias_ih_l0"]["initializer"]["maxval"] == pytest.approx(8**-0.5)
    assert entries["attn.out_proj.bias"]["initializer"] == "zeros"
    assert entries["attn.in_proj_weight"]["initializer"] == {"name": "torch.xavier_uniform"}
    text = "\n".join(notes)
    assert "h.0.attn.c_attn.weight" in text and "Conv1D" in text
    assert "proj.weight" in text and "rule 'Linear'" in text
    assert "tok_emb.weight" in text and "scale.weight" in text


class Plain(nn.Module):
    """Module types a state_dict file's names identify (no padding row, tie or copy, which
    only the module itself knows)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 24)
        self.proj = nn.Linear(24, 16, bias=False)
        self.bilinear = nn.Bilinear(8, 6, 10)
        self.conv = nn.Conv2d(4, 8, 3)
        self.convt = nn.ConvTranspose2d(8, 16, 3, groups=4)
        self.bn = nn.BatchNorm2d(8)
        self.norm = nn.LayerNorm(16)
        self.tok_emb = nn.Embedding(50, 16)
        self.attn = nn.MultiheadAttention(16, 2)
        self.lstm = nn.LSTM(8, 12, num_layers=2, proj_size=6)
        self.gru_cell = nn.GRUCell(8, 10)
        self.prelu = nn.PReLU(4)


@pytest.mark.filterwarnings("ignore::UserWarning:varscale_cli.*")
def test_state_dict_file_spec_matches_torch_fresh_init(tmp_path):
    import safetensors.numpy
    import safetensors.torch

    torch.manual_seed(0)
    safetensors.torch.save_file(Plain().state_dict(), tmp_path / "plain.safetensors")
    result = CliRunner().invoke(cli, ["spec", str(tmp_path / "plain.safetensors")])
    assert result.exit_code == 0, result.output
    assert "convention torch" in result.stdout
    assert "proj.weight" in result.stderr and "rule 'Linear'" in result.stderr
    assert "{name: torch.default_bias, weight: .weight}" in result.stdout
    spec = tmp_path / "spec.yaml"
    spec.write_text(result.stdout, encoding="utf-8")
    gen = []
    for s in SEEDS:
        out = tmp_path / f"g{s}.safetensors"
        r = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "-q", "--seed", str(s), "--no-check"])
        assert r.exit_code == 0, r.output
        gen.append(safetensors.numpy.load_file(out))
    result = compare(pool([_fresh(Plain, s) for s in SEEDS]), pool(gen))
    assert not result.failures, "\n".join(result.failures)
    Plain().load_state_dict(safetensors.torch.load_file(tmp_path / "g0.safetensors"), strict=True)
