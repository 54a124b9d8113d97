"""Truncation at any bounds: the shared checks, the variance correction for bounds other than
+-2, and PyTorch's ``trunc_normal_`` (absolute bounds).

* ``lower`` / ``upper`` on `plain.TruncatedNormal` and on `VarianceScaling` with a truncated
  normal are in units of the underlying normal's std, Haiku's meaning
  (``hk.initializers.TruncatedNormal(stddev, mean, lower=-2.0, upper=2.0)``); asymmetric bounds
  are allowed (the law's mean is then not its centre).
* `TorchTruncNormal` is ``torch.nn.init.trunc_normal_(tensor, mean=0., std=1., a=-2., b=2.)``:
  N(mean, std^2) cut at the *absolute* values a and b, so ``std=0.02`` with the default a, b is
  cut at +-100 std, effectively untruncated.
"""

from __future__ import annotations

from .. import truncnorm
from ..distributions import Distribution
from ..stream.coefficients import TRUNC_STD_2
from .base import Config, DTypeSpec, Initializer, number

#: The seeds' bounds (TF, Keras, JAX, Haiku): +-2 std.
DEFAULT_LOWER, DEFAULT_UPPER = -2.0, 2.0


def bounds(lower: object, upper: object, what: str = "lower/upper") -> tuple[float, float]:
    """Checked bounds in stddev units (`truncnorm.check_bounds`)."""
    return truncnorm.check_bounds(lower, upper, what)


def truncated(scale: float, lower: float, upper: float, loc: float = 0.0) -> Distribution:
    """N(loc, scale^2) cut to [lower, upper] * scale, in `Distribution`'s canonical form: a
    symmetric cut has ``lower=None``, so +-2 is the seeds' law, bytes and record unchanged."""
    return Distribution(
        "truncated_normal", scale, loc, upper, None if lower == -upper else lower
    )


def correction(lower: float, upper: float) -> float:
    """The std of N(0, 1) cut to [lower, upper]: divide by it for a law of variance exactly
    ``scale / n``. +-2 keeps the literal every framework divides by (0.87962566103423978, which
    the closed form reproduces to 2e-16; tests/test_truncnorm.py)."""
    if (lower, upper) == (DEFAULT_LOWER, DEFAULT_UPPER):
        return TRUNC_STD_2
    return truncnorm.std(lower, upper)


class TorchTruncNormal(Initializer):
    """``torch.nn.init.trunc_normal_``: N(mean, std^2) cut at the absolute values a and b.

    The target std is the law's own (after truncation): std times the std of N(0, 1) cut to
    [(a - mean) / std, (b - mean) / std].

    Raises:
        ValueError: std <= 0, non-finite numbers, a >= b, or [a, b] holding less than
            `truncnorm.MIN_MASS` of the normal's probability.
    """

    name = "torch.trunc_normal"
    default_layout = "torch"
    uses_fans = False

    def __init__(
        self,
        mean: float = 0.0,
        std: float = 1.0,
        a: float = -2.0,
        b: float = 2.0,
        seed: int | None = None,
        dtype: DTypeSpec = "float32",
    ) -> None:
        self.mean = number(mean, "mean")
        self.std = number(std, "std")
        if self.std <= 0:
            raise ValueError(f"`std` must be positive. Received: std={std!r}")
        self.a, self.b = number(a, "a"), number(b, "b")
        if not self.a < self.b:
            raise ValueError(f"`a` must be below `b`. Received: a={a!r}, b={b!r}")
        self._lower, self._upper = bounds(
            (self.a - self.mean) / self.std, (self.b - self.mean) / self.std,
            f"a/b = {self.a}, {self.b} with mean {self.mean}, std {self.std}",
        )
        self._seeded(seed, dtype)

    def get_config(self) -> Config:
        return self._config(mean=self.mean, std=self.std, a=self.a, b=self.b)

    def distribution(self, fan_in: float, fan_out: float) -> Distribution:
        return truncated(self.std, self._lower, self._upper, self.mean)
