"""Fan-in and fan-out of a weight tensor, every layout: `FanConvention` and `compute_fans`.

Conventions (the case table in tests/test_fans.py is the contract):

* ``keras`` layout, the seeds' (TF ``_compute_fans``): kernel ``(..., in, out)``. Rank 0 gives
  (1, 1) ("avoid errors for constants"), rank 1 ``(k,)`` gives (k, k), rank >= 2 multiplies the
  leading dims in as a receptive field: ``fan_in = s[-2] * prod(s[:-2])``.
* ``torch`` layout (PyTorch ``_calculate_fan_in_and_fan_out``): weight ``(out, in, *k)``, so
  ``fan_in = s[1] * prod(s[2:])``, ``fan_out = s[0] * prod(s[2:])``. Rank 0 and 1 follow the
  rule above instead of raising as PyTorch does, so biases and scalars need no special case.
* Explicit axes (JAX ``variance_scaling`` semantics, ``jax._src.nn.initializers._compute_fans``
  as of JAX 0.10.2): ``in_axis``, ``out_axis`` and ``batch_axis`` are ints or sequences of ints,
  negatives allowed. An axis left out defaults to the layout's (keras: in -2, out -1, JAX's own
  defaults; torch: in 1, out 0). JAX computes ``receptive = prod(shape) / in_size / out_size /
  batch_size`` and ``fan_in = in_size * receptive``, ``fan_out = out_size * receptive``. With
  disjoint axes that is the familiar rule: every axis in none of them is receptive field and
  multiplies both fans; batch axes count for neither. JAX lets ``in_axis`` and ``out_axis``
  share axes (Flax ``nn.Embed``: ``out_axis=0`` with the default ``in_axis=-2``, the same axis of
  a 2-D table); a shared axis then cancels out of both fans, since it is in ``in_size`` once and
  divides the receptive field once: ``fan_in = prod(in-only axes) * prod(unused axes)``, likewise
  ``fan_out``. So ``(V, D)`` with in 0, out 0 gives (D, D), and a rank-1 ``(k,)`` with
  ``in_axis=0`` gives JAX's (1, 1). Computed that way the fans stay exact integers, with no
  division (JAX's float sequence lands on the same value up to its own rounding, and divides by
  zero on a zero-size axis where this gives a zero fan). A rank-1 tensor with explicit axes but
  no ``in_axis`` is refused, as JAX refuses its default ``in_axis=-2`` there. What JAX accepts
  and varscale still refuses: an axis repeated inside one argument, and batch axes shared with
  in/out axes (JAX would divide them out twice, giving fractional fans no layer has).

Fans are exact integers (products of dims). Zero-size dims give a zero fan; the initializer
divides by ``max(1, n)``, as TF and Keras do, so a zero-size tensor never divides by zero.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

LAYOUTS = ("keras", "torch")

Axes = int | Sequence[int] | None


def _normalize_axes(axes: Axes, rank: int, what: str) -> tuple[int, ...]:
    if axes is None:
        return ()
    if isinstance(axes, list | tuple):
        items: tuple = tuple(axes)
    else:
        items = (axes,)
    out = []
    for item in items:
        # operator.index accepts Python and numpy integers and refuses floats.
        try:
            a = operator.index(item) if not isinstance(item, bool) else None
        except TypeError:
            a = None
        if a is None:
            raise ValueError(f"{what} must be an int or a list of ints, got {item!r}")
        if not -rank <= a < rank:
            raise ValueError(
                f"{what} {a} is out of range for a rank-{rank} shape "
                f"(allowed: {-rank} .. {rank - 1})"
            )
        out.append(a % rank)
    if len(set(out)) != len(out):
        raise ValueError(f"{what} {list(items)} repeats an axis")
    return tuple(out)


@dataclass(frozen=True)
class FanConvention:
    """How a tensor's axes give its fans: the layout (``"keras"`` for ``(..., in, out)``,
    ``"torch"`` for ``(out, in, *k)``) and any explicit axes, as `compute_fans` takes them.

    Attributes:
        layout: ``"keras"`` or ``"torch"``.
        in_axis: axes that count as inputs; None: the layout's default.
        out_axis: axes that count as outputs; None: the layout's default.
        batch_axis: axes that count for neither fan (e.g. stacked heads or experts).
    """

    layout: str = "keras"
    in_axis: Axes = None
    out_axis: Axes = None
    batch_axis: Axes = None

    def axes(
        self, shape: Sequence[int]
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """Which axes of ``shape`` are inputs, outputs, batch and receptive field (in that
        order, each sorted as given, non-negative); `fans` multiplies them. Errors as
        `compute_fans`.

        Example:
            >>> FanConvention().axes((3, 3, 64, 128))
            ((2,), (3,), (), (0, 1))
            >>> FanConvention("torch").axes((128, 64, 3, 3))
            ((1,), (0,), (), (2, 3))
        """
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout {self.layout!r} is not one of 'keras', 'torch'")
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise ValueError(f"shape {list(shape)} has a negative dimension")
        rank = len(shape)
        in_axis, out_axis = self.in_axis, self.out_axis
        explicit = in_axis is not None or out_axis is not None or self.batch_axis is not None
        if rank == 0:
            if explicit:
                raise ValueError("a 0-d tensor has no axes to use as in_axis/out_axis/batch_axis")
            return (), (), (), ()  # (1, 1): "avoid errors for constants"
        if rank == 1 and not explicit:
            return (0,), (0,), (), ()  # one axis, both the input and the output: (k, k)
        if rank == 1 and in_axis is None:
            raise ValueError(
                "a rank-1 tensor with explicit axes needs an explicit in_axis (JAX refuses its "
                "default in_axis=-2 there); give in_axis: 0, or no axes for the (k, k) rule"
            )
        default_in, default_out = (-2, -1) if self.layout == "keras" else (1, 0)
        if rank == 1:
            default_out = 0  # the only axis (keras -1 and torch 0 both name it)
        ins = _normalize_axes(default_in if in_axis is None else in_axis, rank, "in_axis")
        outs = _normalize_axes(default_out if out_axis is None else out_axis, rank, "out_axis")
        batch = _normalize_axes(self.batch_axis, rank, "batch_axis")
        if set(batch) & (set(ins) | set(outs)):
            raise ValueError(f"batch_axis {list(batch)} overlaps in_axis or out_axis")
        shared = set(ins) & set(outs)  # JAX allows it: a shared axis cancels out of both fans
        used = set(ins) | set(outs) | set(batch)
        return (
            tuple(i for i in ins if i not in shared),
            tuple(i for i in outs if i not in shared),
            batch,
            tuple(i for i in range(rank) if i not in used),
        )

    def fans(self, shape: Sequence[int]) -> tuple[int, int]:
        """``(fan_in, fan_out)`` of ``shape`` (`compute_fans`)."""
        ins, outs, _, receptive_axes = self.axes(shape)
        shape = tuple(int(d) for d in shape)
        receptive = math.prod(shape[i] for i in receptive_axes)
        fan_in = math.prod(shape[i] for i in ins) * receptive
        fan_out = math.prod(shape[i] for i in outs) * receptive
        return fan_in, fan_out


def compute_fans(
    shape: Sequence[int],
    layout: str = "keras",
    in_axis: Axes = None,
    out_axis: Axes = None,
    batch_axis: Axes = None,
) -> tuple[int, int]:
    """Return ``(fan_in, fan_out)`` for a tensor of ``shape``.

    Args:
        shape: the full tensor shape (for a partition, the unsplit shape).
        layout: ``"keras"`` for ``(..., in, out)`` or ``"torch"`` for ``(out, in, *k)``.
        in_axis: axes that count as inputs; default from the layout.
        out_axis: axes that count as outputs; default from the layout.
        batch_axis: axes that count for neither fan (e.g. stacked heads or experts).

    Raises:
        ValueError: unknown layout, axes out of range or repeated, batch axes shared with
            in/out axes, or a rank-1 tensor with explicit axes but no in_axis.

    Example:
        >>> compute_fans((3, 3, 64, 128))
        (576, 1152)
        >>> compute_fans((128, 64, 3, 3), layout="torch")
        (576, 1152)
    """
    return FanConvention(layout, in_axis, out_axis, batch_axis).fans(shape)


def keras_axes(axes: object, what: str) -> tuple[int, ...] | None:
    """A Keras 3 ``input_axes`` / ``output_axes`` value checked without a shape: None or a list
    of ints (Keras iterates it, so a bare int fails there too), no axis twice."""
    if axes is None:
        return None
    if not isinstance(axes, list | tuple):
        raise ValueError(
            f"Keras {what} must be a list of ints or null, got {axes!r}; write e.g. [{axes!r}]"
        )
    out = []
    for item in axes:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(f"Keras {what} must be a list of ints, got item {item!r}")
        out.append(int(item))
    if len(set(out)) != len(out):
        raise ValueError(f"Keras {what} {out} repeats an axis")
    return tuple(out)


def compute_keras_axes_fans(
    shape: Sequence[int], input_axes: Sequence[int], output_axes: Sequence[int]
) -> tuple[int, int]:
    """Fans as Keras 3.15 ``keras.src.initializers.random_initializers.compute_fans`` gives them
    when a VarianceScaling config sets *both* ``input_axes`` and ``output_axes``: the products of
    exactly those axes, no receptive field (``fan_in = prod(shape[a] for a in input_axes)``).
    With only one of them set, Keras ignores it and uses its shape rule; the caller does too.
    Negative axes index from the end, as Python's ``shape[axis]`` does in Keras.

    Raises:
        ValueError: an axis out of range for ``shape`` (Keras raises IndexError).
    """
    shape = tuple(int(d) for d in shape)
    rank = len(shape)
    fans = []
    for axes, what in ((input_axes, "input_axes"), (output_axes, "output_axes")):
        for a in axes:
            if not -rank <= a < rank:
                raise ValueError(
                    f"Keras {what} {list(axes)}: axis {a} is out of range for a rank-{rank} "
                    f"shape (allowed: {-rank} .. {rank - 1})"
                )
        fans.append(math.prod(shape[a] for a in axes))
    return fans[0], fans[1]
