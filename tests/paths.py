"""Draw the same elements on either sampling path, for the tests that compare them."""

from __future__ import annotations

import numpy as np

from varscale_cli.core.dtypes import numpy_dtype
from varscale_cli.core.stream import TensorSampler, native_path


def fill_on_path(sampler: TensorSampler, compiled: bool, start: int, n: int) -> np.ndarray:
    """Elements ``start .. start + n`` of ``sampler``'s tensor, on the compiled kernels
    (``compiled``) or on the numpy reference path."""
    with native_path(compiled):
        out = np.empty(n, numpy_dtype(sampler.dtype))
        sampler.fill(start, out)
        return out
