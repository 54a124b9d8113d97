"""The orthogonal initializer: ``gain`` times a Haar-random matrix with orthonormal columns
(tall) or rows (wide), as ``torch.nn.init.orthogonal_``, ``keras.initializers.Orthogonal`` and
``jax.nn.initializers.orthogonal`` define it; the QR is varscale's own (`core.stream.orthogonal`),
so the bytes are the same on every machine.
"""

from __future__ import annotations

from ..distributions import Distribution
from ..stream.orthogonal import check_size, matrix_shape
from .base import Config, DTypeSpec, Initializer, number


class Orthogonal(Initializer):
    """gain * Q, Q Haar-orthogonal (Saxe et al. 2014, arXiv:1312.6120; torch orthogonal_, Keras / JAX Orthogonal).

    The matrix is rows x columns with rows = prod(shape[:-1]), columns = shape[-1] in the
    ``keras`` layout (Keras, JAX) and rows = shape[0], columns = prod(shape[1:]) in the
    ``torch`` layout (PyTorch); Q is the sign-fixed QR factor of a normal matrix, transposed
    when wide.

    Args:
        gain: positive finite multiplier (Keras ``gain``, torch ``gain``, JAX ``scale``).
        seed: None (fresh values every call) or an integer (the same values every call).
        dtype: default dtype of ``__call__``; floating only.
    """

    name = "orthogonal"
    uses_fans = False
    elementwise = False

    def __init__(self, gain: float = 1.0, seed: int | None = None, dtype: DTypeSpec = "float32") -> None:
        self.gain = number(gain, "gain")
        if self.gain <= 0.0:
            raise ValueError(f"`gain` must be positive. Received: gain={gain!r}")
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        return self._config(gain=self.gain)

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        raise ValueError("orthogonal: the law depends on the whole shape; use law(..., shape=...)")

    def _shape_law(self, shape: tuple[int, ...], layout: str) -> Distribution:
        rows, cols = matrix_shape(shape, layout)
        check_size(rows, cols)
        return Distribution("orthogonal", self.gain, rows=rows, cols=cols)
