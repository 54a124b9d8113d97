"""Write the ~271M-parameter Llama-style spec of the benchmarks (issue 5, performance.md 4).

hidden 1024, 16 layers, intermediate 2816, vocab 32000, untied lm_head: 147 tensors,
271,090,688 parameters (1,084,379,288 bytes in float32). 2-D weights use variance scaling
with scale 1 and fan_in in torch layout; norm weights are ones.
"""

from __future__ import annotations

import json
import sys

HIDDEN, LAYERS, INTER, VOCAB = 1024, 16, 2816, 32000


def tensors(layers: int = LAYERS, vocab: int = VOCAB) -> list[tuple[str, list[int]]]:
    out = [("model.embed_tokens.weight", [vocab, HIDDEN])]
    for i in range(layers):
        p = f"model.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            out.append((f"{p}.self_attn.{proj}.weight", [HIDDEN, HIDDEN]))
        out.append((f"{p}.mlp.gate_proj.weight", [INTER, HIDDEN]))
        out.append((f"{p}.mlp.up_proj.weight", [INTER, HIDDEN]))
        out.append((f"{p}.mlp.down_proj.weight", [HIDDEN, INTER]))
        out.append((f"{p}.input_layernorm.weight", [HIDDEN]))
        out.append((f"{p}.post_attention_layernorm.weight", [HIDDEN]))
    out.append(("model.norm.weight", [HIDDEN]))
    out.append(("lm_head.weight", [vocab, HIDDEN]))
    return out


def spec(distribution: str, dtype: str, layers: int = LAYERS, vocab: int = VOCAB) -> dict:
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
        "tensors": {name: {"shape": shape} for name, shape in tensors(layers, vocab)},
    }


if __name__ == "__main__":
    extra = [int(a) for a in sys.argv[3:5]]  # optional: layers, vocabulary
    json.dump(spec(sys.argv[1], sys.argv[2], *extra), sys.stdout, indent=1)
