"""Baseline: torch.empty + nn.init + safetensors.torch.save_file (whole checkpoint in memory)."""

from __future__ import annotations

import math
import sys

import torch
from safetensors.torch import save_file

from llama_spec import tensors

mode, dtype, path = sys.argv[1], sys.argv[2], sys.argv[3]
torch.manual_seed(0)
state = {}
for name, shape in tensors():
    w = torch.empty(shape)
    if len(shape) == 1:
        torch.nn.init.ones_(w)
    elif mode == "trunc_normal":
        std = 1.0 / math.sqrt(shape[1]) / 0.87962566103423978
        torch.nn.init.trunc_normal_(w, 0.0, std, -2 * std, 2 * std)
    else:
        torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    state[name] = w.to(torch.bfloat16) if dtype == "bfloat16" else w
save_file(state, path, metadata={"format": "pt"})
