"""Tables at a fixed terminal width: the ``--dry-run`` plan and ``stats``, at 80 and 100 columns.

The plan depends only on the spec (nothing is sampled), so it is compared as golden text;
``stats`` is checked for what a reader needs: whole names, lines within the width, a mean
column that tells ``ones`` from ``zeros`` and the mark on a law that is not variance-corrected.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.text import Text

from varscale_cli.cli import cli
from varscale_cli.stats.layout import Column, fit_table, fold_name

SPEC = """\
version: 1
seed: 7
defaults: {dtype: float32, layout: torch, initializer: kaiming_normal}
tensors:
  model.layers.0.self_attn.q_proj.weight: {shape: [512, 512]}
  model.layers.0.mlp.up_proj.weight: {shape: [1376, 512], initializer: {name: torch.kaiming_normal, nonlinearity: relu}}
  model.layers.0.input_layernorm.weight: {shape: [512], initializer: ones}
  model.layers.0.input_layernorm.bias: {shape: [512], initializer: zeros}
  model.embed_tokens.weight: {shape: [32000, 512], dtype: bfloat16, initializer: {name: truncated_normal, stddev: 0.02}}
  lm_head.weight: {shape: [32000, 512], initializer: xavier_uniform}
"""

MLP = """\
version: 1
seed: 0
defaults: {dtype: float32, layout: keras, initializer: glorot_uniform}
rules:
  - {match: "*/bias", initializer: zeros}
  - {match: "hidden_*/kernel", initializer: he_normal}
tensors:
  hidden_1/kernel: {shape: [784, 512]}
  hidden_1/bias: {shape: [512]}
  output/kernel: {shape: [512, 10]}
  output/bias: {shape: [10]}
"""

# The plan at 80 and 100 columns. At 100 every name is whole on one line; at 80 the longest
# fold after a dot; dtype, bytes and the fans go first on a narrow terminal; the law column
# says that bare kaiming_normal is a truncated normal and torch.kaiming_normal is not; the
# mean tells ones from zeros; truncated_normal's std is marked as not variance-corrected.
PLAN = {
    80: """\
plan (seed 7)
name                        shape      initializer     law       mean        std
────────────────────────────────────────────────────────────────────────────────
model.layers.0.self_attn.   512x512    kaiming_normal  trunc.       0     0.0625
q_proj.weight                                          normal
model.layers.0.mlp.         1376x512   torch.kaiming_  normal       0     0.0625
up_proj.weight                         normal (a=0,
                                       mode=fan_in,
                                       nonlinearity=r
                                       elu)
model.layers.0.             512        ones            constant     1          0
input_layernorm.weight
model.layers.0.             512        zeros           constant     0          0
input_layernorm.bias
model.embed_tokens.weight   32000x512  truncated_norm  trunc.       0   0.01759*
                                       al (mean=0,     normal
                                       stddev=0.02)
lm_head.weight              32000x512  xavier_uniform  uniform      0   0.007843
* law not variance-corrected: its std differs from the initializer's nominal std
6 tensors, 33,735,680 parameters, 102.17 MB
""",
    100: """\
plan (seed 7)
name                                    shape      initializer           law         mean        std
────────────────────────────────────────────────────────────────────────────────────────────────────
model.layers.0.self_attn.q_proj.weight  512x512    kaiming_normal        trunc.         0     0.0625
                                                                         normal
model.layers.0.mlp.up_proj.weight       1376x512   torch.kaiming_normal  normal         0     0.0625
                                                   (a=0, mode=fan_in,
                                                   nonlinearity=relu)
model.layers.0.input_layernorm.weight   512        ones                  constant       1          0
model.layers.0.input_layernorm.bias     512        zeros                 constant       0          0
model.embed_tokens.weight               32000x512  truncated_normal      trunc.         0   0.01759*
                                                   (mean=0,              normal
                                                   stddev=0.02)
lm_head.weight                          32000x512  xavier_uniform        uniform        0   0.007843
* law not variance-corrected: its std differs from the initializer's nominal std
6 tensors, 33,735,680 parameters, 102.17 MB
""",
}
# A spec with short names keeps more columns: the fans and bytes come back at 100.
MLP_PLAN = {
    80: """\
plan (seed 0)
name             shape    initializer     law            mean       std
───────────────────────────────────────────────────────────────────────
hidden_1/kernel  784x512  he_normal       trunc. normal     0   0.05051
hidden_1/bias    512      zeros           constant          0         0
output/kernel    512x10   glorot_uniform  uniform           0    0.0619
output/bias      10       zeros           constant          0         0
4 tensors, 407,050 parameters, 1.63 MB
""",
    100: """\
plan (seed 0)
name             shape    initializer     law            fan in/out  mean       std     bytes
─────────────────────────────────────────────────────────────────────────────────────────────
hidden_1/kernel  784x512  he_normal       trunc. normal     784/512     0   0.05051   1.61 MB
hidden_1/bias    512      zeros           constant          512/512     0         0   2.05 kB
output/kernel    512x10   glorot_uniform  uniform            512/10     0    0.0619  20.48 kB
output/bias      10       zeros           constant            10/10     0         0      40 B
4 tensors, 407,050 parameters, 1.63 MB
""",
}


def run(args: list[str], width: int) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, env={"COLUMNS": str(width), "NO_COLOR": "1"})
    return result.exit_code, result.stdout, result.stderr


def _lines(out: str) -> list[str]:
    return [line.rstrip() for line in out.splitlines()]


@pytest.mark.parametrize("width", [80, 100])
@pytest.mark.parametrize(("spec", "golden"), [(SPEC, PLAN), (MLP, MLP_PLAN)], ids=["llama", "mlp"])
def test_dry_run_plan_golden(tmp_path: Path, width: int, spec: str, golden: dict[int, str]) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    code, out, err = run(["generate", str(path), "--dry-run"], width)
    assert code == 0, err
    assert _lines(out) == golden[width].splitlines()
    assert max(len(line) for line in _lines(out)) <= width


@pytest.mark.parametrize("width", [80, 100])
def test_stats_table_fits_and_shows_means(tmp_path: Path, width: int) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    out_path = tmp_path / "w.safetensors"
    code, _, err = run(["generate", str(spec), "-o", str(out_path), "-q", "--no-check"], width)
    assert code == 0, err
    code, out, err = run(["stats", str(out_path)], width)
    assert code == 0, err
    lines = _lines(out)
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if line.startswith("name"))
    assert header.split()[:2] == ["name", "mean"] or header.split()[:3] == ["name", "shape", "dtype"]
    assert "target" in header and "sampler" not in header  # one std column, not two
    rows = {line.split()[0]: line.split() for line in lines if line.startswith(("model.", "lm_head"))}
    folded = width < 100
    if not folded:  # at 100 every name is whole on its line
        assert "model.layers.0.self_attn.q_proj.weight" in rows
        mean = header.split().index("mean")
        assert rows["model.layers.0.input_layernorm.weight"][mean] == "1"
        assert rows["model.layers.0.input_layernorm.bias"][mean] == "0"
        assert rows["model.embed_tokens.weight"][header.split().index("target")].endswith("*")
    else:  # at 80 the long names fold after a dot and read back whole
        assert "model.layers.0." in rows and "input_layernorm.weight" in out
    assert any(line.startswith("* law not variance-corrected") for line in lines)


def test_fold_name_breaks_after_separators() -> None:
    assert fold_name(Text("model.layers.10.self_attn.q_proj.weight"), 16).plain.splitlines() == [
        "model.layers.10.", "self_attn.", "q_proj.weight",
    ]
    assert fold_name(Text("a" * 30), 12).plain.splitlines() == ["a" * 12, "a" * 12, "a" * 6]
    assert fold_name(Text(""), 12).plain == ""


def test_fit_table_drops_optional_columns_before_folding_names() -> None:
    from io import StringIO

    from rich.console import Console

    columns = (Column("name"), Column("extra", drop=1), Column("value", "right"))
    rows = [(Text("a/very/long/tensor/name"), Text("x" * 20), Text("1.5"))]

    def render(width: int) -> list[str]:
        console = Console(file=StringIO(), width=width, color_system=None)
        console.print(fit_table(columns, rows, width))
        return _lines(console.file.getvalue())  # type: ignore[attr-defined]

    assert render(60)[0].split() == ["name", "extra", "value"]
    assert render(30)[0].split() == ["name", "value"]  # extra dropped, name whole
    assert "a/very/long/tensor/name" in render(30)[2]
    assert render(20)[2:4] == ["a/very/long/     1.5", "tensor/name"]  # folded after a slash
