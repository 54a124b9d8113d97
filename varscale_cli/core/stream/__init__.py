"""The random stream: counter-based bits, bit-stable transforms, and the tensor sampler.

* `coefficients`: every constant and polynomial coefficient of the transforms (shared with the
  compiled kernels in ``varscale_cli._native``);
* `philox`: the bits (``STREAM_ID``, `stream_key`, `raw_words`, `raw_bits32`);
* `transforms`: bits -> values in numpy, float32 and float64 (`Scratch` holds their buffers);
* `native`: whether the compiled kernels run the float32 transforms (`native_path`);
* `sampler`: `TensorSampler` and the region / chunk-job helpers the engine uses.
"""

from __future__ import annotations

from .native import compiled_kernels, native_path
from .philox import STREAM_ID, stream_key
from .sampler import BLOCK, ChunkJob, TensorSampler, iter_region, region_jobs, region_runs, sample
from .transforms import Scratch

__all__ = [
    "BLOCK", "STREAM_ID", "ChunkJob", "Scratch", "TensorSampler", "compiled_kernels",
    "iter_region", "native_path", "region_jobs", "region_runs", "sample", "stream_key",
]
