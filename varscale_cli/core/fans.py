"""Fan-in and fan-out of a weight tensor: one pure function, every layout.

Conventions (the case table in tests/test_fans.py is the contract):

* ``keras`` layout, the seeds' (TF ``_compute_fans``): kernel ``(..., in, out)``. Rank 0 gives
  (1, 1) ("avoid errors for constants"), rank 1 ``(k,)`` gives (k, k), rank >= 2 multiplies the
  leading dims in as a receptive field: ``fan_in = s[-2] * prod(s[:-2])``.
* ``torch`` layout (PyTorch ``_calculate_fan_in_and_fan_out``): weight ``(out, in, *k)``, so
  ``fan_in = s[1] * prod(s[2:])``, ``fan_out = s[0] * prod(s[2:])``. Rank 0 and 1 follow the
  rule above instead of raising as PyTorch does, so biases and scalars need no special case.
* Explicit axes (JAX ``variance_scaling`` semantics): ``in_axis``, ``out_axis`` and ``batch_axis``
  are ints or sequences of ints, negatives allowed. Every axis in none of them is receptive
  field and multiplies both fans; batch axes count for neither. An axis left out defaults to the
  layout's (keras: in -2, out -1; torch: in 1, out 0).

Fans are exact integers (products of dims). Zero-size dims give a zero fan; the initializer
divides by ``max(1, n)``, as TF and Keras do, so a zero-size tensor never divides by zero.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

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


def fan_axes(
    shape: Sequence[int],
    layout: str = "keras",
    in_axis: Axes = None,
    out_axis: Axes = None,
    batch_axis: Axes = None,
) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Which axes of ``shape`` are inputs, outputs, batch and receptive field (in that order,
    each sorted as given, non-negative); `compute_fans` multiplies them. Arguments and errors
    as `compute_fans`.

    Example:
        >>> fan_axes((3, 3, 64, 128))
        ((2,), (3,), (), (0, 1))
        >>> fan_axes((128, 64, 3, 3), layout="torch")
        ((1,), (0,), (), (2, 3))
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r} is not one of 'keras', 'torch'")
    shape = tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape {list(shape)} has a negative dimension")
    rank = len(shape)
    explicit = in_axis is not None or out_axis is not None or batch_axis is not None
    if rank == 0:
        if explicit:
            raise ValueError("a 0-d tensor has no axes to use as in_axis/out_axis/batch_axis")
        return (), (), (), ()  # (1, 1): "avoid errors for constants"
    default_in, default_out = (-2, -1) if layout == "keras" else (1, 0)
    if rank == 1:
        # One axis: it is both the input and the output unless the user says otherwise.
        default_in = default_out = 0
    ins = _normalize_axes(default_in if in_axis is None else in_axis, rank, "in_axis")
    outs = _normalize_axes(default_out if out_axis is None else out_axis, rank, "out_axis")
    batch = _normalize_axes(batch_axis, rank, "batch_axis")
    if rank > 1 and set(ins) & set(outs):
        raise ValueError(f"in_axis {list(ins)} and out_axis {list(outs)} overlap")
    if set(batch) & (set(ins) | set(outs)):
        raise ValueError(f"batch_axis {list(batch)} overlaps in_axis or out_axis")
    used = set(ins) | set(outs) | set(batch)
    return ins, outs, batch, tuple(i for i in range(rank) if i not in used)


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
        ValueError: unknown layout, or axes out of range or overlapping.

    Example:
        >>> compute_fans((3, 3, 64, 128))
        (576, 1152)
        >>> compute_fans((128, 64, 3, 3), layout="torch")
        (576, 1152)
    """
    ins, outs, _, receptive_axes = fan_axes(shape, layout, in_axis, out_axis, batch_axis)
    shape = tuple(int(d) for d in shape)
    receptive = math.prod(shape[i] for i in receptive_axes)
    fan_in = math.prod(shape[i] for i in ins) * receptive
    fan_out = math.prod(shape[i] for i in outs) * receptive
    return fan_in, fan_out
