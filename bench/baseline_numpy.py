"""Baseline: numpy Generator (rejection for the truncation) + safetensors.numpy.save_file."""

from __future__ import annotations

import math
import sys

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file

from llama_spec import tensors

mode, dtype, path = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.Generator(np.random.PCG64(0))
state = {}
for name, shape in tensors():
    if len(shape) == 1:
        w = np.ones(shape, np.float32)
    elif mode == "trunc_normal":
        w = rng.standard_normal(shape, dtype=np.float32)
        bad = np.abs(w) > 2
        while bad.any():
            w[bad] = rng.standard_normal(int(bad.sum()), dtype=np.float32)
            bad = np.abs(w) > 2
        w *= np.float32(1.0 / math.sqrt(shape[1]) / 0.87962566103423978)
    else:
        w = rng.random(shape, dtype=np.float32)
        w = (w * 2 - 1) * np.float32(1.0 / math.sqrt(shape[1]))
    state[name] = w.astype(ml_dtypes.bfloat16) if dtype == "bfloat16" else w
save_file(state, path, metadata={"format": "pt"})
