"""Write the ~271M-parameter Llama-style spec of the benchmarks (issue 5, performance.md 4).

hidden 1024, 16 layers, intermediate 2816, vocab 32000, untied lm_head: 147 tensors,
271,090,688 parameters (1,084,379,288 bytes in float32). 2-D weights use variance scaling
with scale 1 and fan_in in torch layout; norm weights are ones.

configs/llama.yaml is the same spec at README size (`SMALL`: hidden 256, 4 layers, intermediate
768 = 256 * ceil(2/3 * 4 * 256 / 256) as Llama rounds it, bfloat16); `python llama_spec.py
--small` prints it, and tests/test_readme.py checks the shipped file is that output.
"""

from __future__ import annotations

import json
import sys

HIDDEN, LAYERS, INTER, VOCAB = 1024, 16, 2816, 32000

#: configs/llama.yaml: (distribution, dtype, layers, vocab, hidden, intermediate).
SMALL = ("truncated_normal", "bfloat16", 4, VOCAB, 256, 768)


def tensors(
    layers: int = LAYERS, vocab: int = VOCAB, hidden: int = HIDDEN, inter: int = INTER
) -> list[tuple[str, list[int]]]:
    out = [("model.embed_tokens.weight", [vocab, hidden])]
    for i in range(layers):
        p = f"model.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out.append((f"{p}.self_attn.{proj}.weight", [hidden, hidden]))
        out.append((f"{p}.mlp.gate_proj.weight", [inter, hidden]))
        out.append((f"{p}.mlp.up_proj.weight", [inter, hidden]))
        out.append((f"{p}.mlp.down_proj.weight", [hidden, inter]))
        out.append((f"{p}.input_layernorm.weight", [hidden]))
        out.append((f"{p}.post_attention_layernorm.weight", [hidden]))
    out.append(("model.norm.weight", [hidden]))
    out.append(("lm_head.weight", [vocab, hidden]))
    return out


def spec(
    distribution: str, dtype: str, layers: int = LAYERS, vocab: int = VOCAB,
    hidden: int = HIDDEN, inter: int = INTER,
) -> dict:
    return {
        "version": 1,
        "seed": 0,
        "defaults": {
            "dtype": dtype,
            "layout": "torch",
            "initializer": {
                "name": "variance_scaling", "scale": 1.0, "mode": "fan_in",
                "distribution": distribution,
            },
        },
        "rules": [{"match": "*norm.weight", "initializer": "ones"}],
        "tensors": {name: {"shape": shape} for name, shape in tensors(layers, vocab, hidden, inter)},
    }


def small_yaml() -> str:
    """configs/llama.yaml: the `SMALL` spec as YAML, one flow mapping per line."""
    doc = spec(*SMALL)
    init = doc["defaults"]["initializer"]
    lines = [
        "# yaml-language-server: $schema=../varscale_cli/spec/spec_schema.json",
        "# A Llama-style decoder at README size: hidden 256, 4 layers, intermediate 768, vocabulary",
        "# 32000, untied lm_head, PyTorch layout (Linear weights are (out, in)); 39 tensors,",
        "# 19,794,176 parameters, 39.6 MB in bfloat16. The benchmarks' 271M-parameter spec has the",
        "# same tensors at hidden 1024 and 16 layers. Written by `python bench/llama_spec.py --small`.",
        f"version: {doc['version']}",
        f"seed: {doc['seed']}",
        "defaults:",
        f"  dtype: {doc['defaults']['dtype']}",
        f"  layout: {doc['defaults']['layout']}",
        "  # LeCun-style variance scaling on fan_in for every projection and the embeddings",
        "  initializer: {" + ", ".join(f"{k}: {v}" for k, v in init.items()) + "}",
        "rules:",
        *(f'  - {{match: "{r["match"]}", initializer: {r["initializer"]}}}  # RMSNorm scales'
          for r in doc["rules"]),
        "tensors:",
        *(f"  {name}: {{shape: [{', '.join(map(str, t['shape']))}]}}" for name, t in doc["tensors"].items()),
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] == ["--small"]:
        sys.stdout.write(small_yaml())
        sys.exit()
    extra = [int(a) for a in sys.argv[3:5]]  # optional: layers, vocabulary
    json.dump(spec(sys.argv[1], sys.argv[2], *extra), sys.stdout, indent=1)
