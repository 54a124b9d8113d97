"""The fan case table: `fans.compute_fans` for every rank, both layouts, explicit axes, zero size.

Each row is the contract (fans.py's docstring points here). The expected values are worked out
by hand from the rules in ../shared/reference/anchors.md, section a.3:

* keras (the seeds' TF ``_compute_fans``): kernel ``(..., in, out)``; rank 0 -> (1, 1), rank 1
  ``(k,)`` -> (k, k); receptive field = prod(shape[:-2]).
* torch (``_calculate_fan_in_and_fan_out``): ``(out, in, *k)``; receptive field prod(shape[2:]).
* explicit axes (JAX ``variance_scaling``): every axis in none of in/out/batch multiplies both
  fans, batch axes count for neither; an axis in both in and out cancels out of both (JAX's
  ``receptive = prod(shape) / in / out / batch``), so rank 1 with ``in_axis=0`` is (1, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from varscale_cli.core import fans, initializers
from varscale_cli.core.fans import compute_fans
from varscale_cli.core.initializers import registry

Axes = int | list[int] | None


@dataclass(frozen=True)
class FanCase:
    id: str
    shape: tuple[int, ...]
    layout: str
    in_axis: Axes
    out_axis: Axes
    batch_axis: Axes
    fan_in: int
    fan_out: int


def _c(id, shape, fan_in, fan_out, layout="keras", in_axis=None, out_axis=None, batch_axis=None):
    return FanCase(id, tuple(shape), layout, in_axis, out_axis, batch_axis, fan_in, fan_out)


CASES = [
    # --- rank 0 and 1: the seeds' special cases, in both layouts ------------------------------
    _c("rank0-keras", (), 1, 1),
    _c("rank0-torch", (), 1, 1, layout="torch"),
    _c("rank1-bias-keras", (7,), 7, 7),
    _c("rank1-bias-torch", (7,), 7, 7, layout="torch"),
    # JAX 0.10.2: in 7, out 7 (default out_axis=-1), receptive 7/7/7 -> fans 7 * 1/7 = (1, 1).
    _c("rank1-explicit-in", (7,), 1, 1, in_axis=0),
    _c("rank1-explicit-in-torch", (7,), 1, 1, layout="torch", in_axis=0),
    _c("rank1-explicit-in-out", (1000,), 1, 1, in_axis=0, out_axis=-1),
    _c("zero-rank1-explicit", (0,), 1, 1, in_axis=0),  # nothing left to multiply: empty products
    # --- rank 2: dense kernels -------------------------------------------------------------------
    _c("rank2-dense-keras", (784, 256), 784, 256),
    _c("rank2-dense-torch", (256, 784), 784, 256, layout="torch"),
    _c("rank2-square", (5, 5), 5, 5),
    _c("rank2-explicit-swap", (784, 256), 256, 784, in_axis=1, out_axis=0),
    _c("rank2-torch-explicit-like-keras", (3, 4), 3, 4, layout="torch", in_axis=0, out_axis=1),
    # --- rank 3: conv1d kernels / attention projections -----------------------------------------
    _c("rank3-conv1d-keras", (5, 8, 16), 40, 80),  # (k, in, out)
    _c("rank3-conv1d-torch", (16, 8, 5), 40, 80, layout="torch"),  # (out, in, k)
    _c("attention-qkv", (512, 8, 64), 512, 512, in_axis=0, out_axis=[1, 2]),
    _c("attention-qkv-negative", (512, 8, 64), 512, 512, in_axis=-3, out_axis=[-2, -1]),
    _c("attention-out", (8, 64, 512), 512, 512, in_axis=[0, 1], out_axis=2),
    _c("experts-batch", (4, 512, 2048), 512, 2048, batch_axis=0),
    _c("experts-batch-negative", (4, 512, 2048), 512, 2048, batch_axis=-3),
    _c("experts-batch-torch", (4, 2048, 512), 512, 2048, layout="torch",
       in_axis=2, out_axis=1, batch_axis=0),
    _c("rank3-in-only", (2, 3, 4), 6, 12, in_axis=0),  # out defaults to -1, axis 1 receptive
    _c("rank3-out-only", (2, 3, 4), 12, 8, out_axis=0),  # in defaults to -2, axis 2 receptive
    _c("rank3-empty-in-list", (3, 4, 5), 12, 60, in_axis=[], out_axis=2),
    # --- shared in/out axes (JAX allows them): the shared axis cancels out of both fans ----------
    _c("flax-embed", (1000, 64), 64, 64, out_axis=0),  # nn.Embed: in -2 = out 0 = axis 0
    _c("shared-square", (3, 4), 4, 4, in_axis=0, out_axis=0),
    _c("shared-negative", (3, 4), 3, 3, in_axis=-1, out_axis=1),
    _c("shared-lists", (2, 3, 4), 2, 4, in_axis=[0, 1], out_axis=[1, 2]),
    _c("shared-torch", (5, 6, 3), 15, 15, layout="torch", out_axis=1),  # in 1 = out 1
    # --- rank 4: conv2d kernels -----------------------------------------------------------------
    _c("conv2d-keras", (3, 3, 64, 128), 576, 1152),
    _c("conv2d-torch", (128, 64, 3, 3), 576, 1152, layout="torch"),
    _c("conv2d-keras-explicit-negative", (3, 3, 64, 128), 576, 1152, in_axis=-2, out_axis=-1),
    _c("conv2d-keras-explicit-positive", (3, 3, 64, 128), 576, 1152, in_axis=2, out_axis=3),
    _c("conv2d-torch-explicit", (128, 64, 3, 3), 576, 1152, layout="torch",
       in_axis=1, out_axis=0),
    _c("conv2d-keras-batch-receptive", (3, 3, 64, 128), 192, 384, batch_axis=0),
    _c("depthwise-keras", (3, 3, 32, 1), 288, 9),  # depth multiplier 1
    # --- rank 5: conv3d kernels -----------------------------------------------------------------
    _c("conv3d-keras", (2, 3, 4, 5, 6), 120, 144),
    _c("conv3d-torch", (6, 5, 2, 3, 4), 120, 144, layout="torch"),
    _c("conv3d-keras-batch", (2, 3, 4, 5, 6), 60, 72, batch_axis=[0]),
    _c("rank5-multi-axes", (2, 3, 4, 5, 6), 6 * 4, 5 * 6 * 4, in_axis=[0, 1], out_axis=[-2, -1]),
    # --- zero-size dimensions: a zero fan, never an error ---------------------------------------
    _c("zero-rows", (0, 4), 0, 4),
    _c("zero-cols", (4, 0), 4, 0),
    _c("zero-rank1", (0,), 0, 0),
    _c("zero-rank1-torch", (0,), 0, 0, layout="torch"),
    _c("zero-receptive", (3, 0, 4, 5), 0, 0),
    _c("zero-in-conv", (3, 3, 0, 128), 0, 1152),
    _c("zero-out-torch", (0, 64, 3, 3), 576, 0, layout="torch"),
    _c("zero-batch-only", (0, 4, 5), 4, 5, batch_axis=0),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_fan_case_table(case: FanCase) -> None:
    got = compute_fans(case.shape, case.layout, case.in_axis, case.out_axis, case.batch_axis)
    assert got == (case.fan_in, case.fan_out)
    assert all(type(f) is int for f in got)  # exact integers, not floats


def test_case_table_covers_every_rank_and_layout() -> None:
    ranks = {len(c.shape) for c in CASES}
    assert ranks >= {0, 1, 2, 3, 4, 5}
    for layout in fans.LAYOUTS:
        assert {len(c.shape) for c in CASES if c.layout == layout} >= {0, 1, 2, 3, 4, 5}
    assert any(c.batch_axis is not None for c in CASES)
    assert any(0 in c.shape for c in CASES)


@pytest.mark.parametrize("rank", [2, 3, 4, 5])
def test_layouts_are_transposes_of_each_other(rank: int) -> None:
    """Keras (*k, in, out) and torch (out, in, *k) describe the same kernel: equal fans."""
    dims = (2, 3, 5, 7, 11)[:rank]
    keras = dims[: rank - 2] + (dims[-2], dims[-1])
    torch = (dims[-1], dims[-2]) + dims[: rank - 2]
    assert compute_fans(keras, "keras") == compute_fans(torch, "torch")


def test_receptive_field_rule_matches_the_formula() -> None:
    """Keras rank >= 2: fan_in = s[-2] * prod(s[:-2]), fan_out = s[-1] * prod(s[:-2])."""
    for shape in [(2, 3), (4, 2, 3), (5, 4, 2, 3), (1, 5, 4, 2, 3), (2, 2, 2, 2, 2, 2)]:
        rf = math.prod(shape[:-2])
        assert compute_fans(shape) == (shape[-2] * rf, shape[-1] * rf)
        t_rf = math.prod(shape[2:])
        assert compute_fans(shape, "torch") == (shape[1] * t_rf, shape[0] * t_rf)


def test_shape_may_be_any_int_sequence() -> None:
    assert compute_fans([3, 3, 64, 128]) == (576, 1152)
    assert compute_fans(np.array([3, 3, 64, 128])) == (576, 1152)
    assert compute_fans((np.int64(784), np.int32(256))) == (784, 256)


# --- zero-size tensors through the initializers -----------------------------------------------

ZERO_SHAPES = [(0, 4), (4, 0), (0,), (3, 0, 5), (3, 3, 0, 128)]


def _every_initializer() -> list[initializers.Initializer]:
    inits = [cls(seed=1) for cls in initializers.CLASSES.values()]
    inits += [initializers.get(name, seed=1) for name in initializers.PRESETS]
    inits += [initializers.VarianceScaling(2.0, mode, dist, seed=1)
              for mode in initializers.MODES for dist in initializers.DISTRIBUTIONS]
    return inits


@pytest.mark.parametrize("shape", ZERO_SHAPES, ids=str)
def test_zero_size_tensors_return_empty_arrays(shape: tuple[int, ...]) -> None:
    """Fans are 0; the initializers divide by max(1, n), so no ZeroDivisionError and no NaN."""
    for init in _every_initializer():
        for dtype in ("float32", "bfloat16", "float16", "float64"):
            out = init(shape, dtype=dtype)
            assert out.shape == shape, init
            assert out.size == 0
            assert out.dtype.name == dtype
        dist = init.distribution(*init.fans(shape))
        assert math.isfinite(dist.scale), init


def test_zero_fan_uses_n_equal_one() -> None:
    """n = max(1, n): a (0, 4) tensor gets the distribution of fan 1, as TF and Keras do."""
    vs = initializers.VarianceScaling(2.0, "fan_in", "uniform")
    assert vs.distribution(*compute_fans((0, 4))).scale == pytest.approx(math.sqrt(6.0), rel=1e-15)
    assert vs.distribution(*compute_fans((4, 0))).scale == pytest.approx(math.sqrt(1.5), rel=1e-15)
    torch = initializers.TorchKaimingNormal()
    assert torch.distribution(*torch.fans((4, 0))).scale == math.sqrt(2.0)  # fan_in = 0 -> 1


def test_zero_size_partition() -> None:
    init = registry.he_normal(seed=3)
    out = init((0, 4), partition_info=initializers.PartitionInfo((6, 4), (6, 0)))
    assert out.shape == (0, 4)


# --- the error table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FanError:
    id: str
    shape: tuple[int, ...]
    kwargs: dict
    fragments: tuple[str, ...]


ERRORS = [
    FanError("in-out-of-range", (3, 4), {"in_axis": 2}, ("in_axis 2", "out of range", "-2 .. 1")),
    FanError("in-negative-out-of-range", (3, 4), {"in_axis": -3}, ("in_axis -3", "out of range")),
    FanError("out-out-of-range", (3, 4, 5), {"out_axis": [1, 3]},
             ("out_axis 3", "rank-3", "-3 .. 2")),
    FanError("batch-out-of-range", (3, 4), {"batch_axis": 5}, ("batch_axis 5", "out of range")),
    FanError("batch-overlaps-in", (3, 4, 5), {"batch_axis": 1}, ("batch_axis [1]", "overlaps")),
    FanError("batch-overlaps-out", (3, 4, 5), {"batch_axis": -1}, ("batch_axis [2]", "overlaps")),
    FanError("batch-overlaps-torch-out", (4, 2048, 512), {"layout": "torch", "batch_axis": 0},
             ("batch_axis", "overlaps")),
    FanError("rank1-batch-without-in", (7,), {"batch_axis": 0}, ("rank-1", "in_axis: 0")),
    FanError("rank1-out-without-in", (7,), {"out_axis": -1}, ("rank-1", "in_axis=-2")),
    FanError("rank1-batch-overlaps-in", (7,), {"in_axis": 0, "batch_axis": 0}, ("overlaps",)),
    FanError("repeated-axis", (3, 4), {"in_axis": [0, -2]}, ("repeats an axis",)),
    FanError("bad-layout", (3, 4), {"layout": "jax"}, ("layout 'jax'", "'keras', 'torch'")),
    FanError("bad-layout-case", (3, 4), {"layout": "Keras"}, ("layout 'Keras'",)),
    FanError("string-axis", (3, 4), {"in_axis": "0"}, ("in_axis must be an int", "'0'")),
    FanError("bool-axis", (3, 4), {"in_axis": True}, ("in_axis must be an int", "True")),
    FanError("float-in-list", (3, 4), {"out_axis": [1.0]}, ("out_axis must be an int", "1.0")),
    FanError("none-in-list", (3, 4), {"batch_axis": [None]}, ("batch_axis must be an int",)),
    FanError("rank0-with-axes", (), {"in_axis": 0}, ("0-d tensor",)),
]


@pytest.mark.parametrize("case", ERRORS, ids=[e.id for e in ERRORS])
def test_fan_errors(case: FanError) -> None:
    with pytest.raises(ValueError) as info:
        compute_fans(case.shape, **case.kwargs)
    for fragment in case.fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize("axis", [1.0, 0.5, "1", None, object()],
                         ids=["1.0", "0.5", "str", "None-in-list", "object"])
def test_non_int_axis_items_are_value_errors(axis: object) -> None:
    """A bare non-int (not just one inside a list) is a ValueError, not a TypeError from
    iterating it (fixed in 731d41f; this pins it)."""
    for value in (axis, [axis]) if axis is not None else ([axis],):
        with pytest.raises(ValueError, match="in_axis must be an int"):
            compute_fans((3, 4), in_axis=value)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [np.int64, np.int32, np.uint8])
def test_numpy_integer_axes_are_ints(kind: type) -> None:
    assert compute_fans((3, 4, 5), in_axis=kind(0), out_axis=[kind(1)]) == compute_fans(
        (3, 4, 5), in_axis=0, out_axis=[1]
    )
    assert compute_fans((512, 8, 64), in_axis=0, out_axis=list(np.arange(1, 3))) == (512, 512)


def test_errors_surface_through_initializers() -> None:
    init = registry.he_normal(seed=0)
    with pytest.raises(ValueError, match="overlaps"):
        init((3, 4), in_axis=0, batch_axis=0)
    with pytest.raises(ValueError, match="layout 'tf'"):
        init((3, 4), layout="tf")


# --- JAX's own arithmetic as the oracle ----------------------------------------------------------


def _jax_fans(shape: tuple[int, ...], in_axis: Axes, out_axis: Axes, batch_axis: Axes):
    """JAX 0.10.2 ``jax/_src/nn/initializers.py::_compute_fans``, re-derived: sizes are the
    products over each axis argument, ``receptive = prod(shape) / in / out / batch`` in floats,
    ``fan = size * receptive``. (JAX is not installed in the test venv; this is its formula.)"""

    def size(axes: Axes) -> int:
        return shape[axes] if isinstance(axes, int) else math.prod(shape[i] for i in axes or ())

    in_size, out_size, batch_size = size(in_axis), size(out_axis), size(batch_axis)
    receptive = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive, out_size * receptive


def _axis_choices(rank: int, rng: np.random.Generator) -> list:
    axes = rng.permutation(rank)
    k = int(rng.integers(1, rank + 1))
    pick = sorted(int(a) - (rank if rng.random() < 0.5 else 0) for a in axes[:k])
    return pick if len(pick) > 1 or rng.random() < 0.5 else pick[0]


def _as_list(axes: int | list, rank: int) -> list[int]:
    return [a % rank for a in (axes if isinstance(axes, list) else [axes])]


def test_explicit_axes_agree_with_jax_formula() -> None:
    """Random shapes and axes, overlapping in/out included: exact integers equal to JAX's float
    computation (which rounds at each division: rel 1e-12 covers a few ulps)."""
    rng = np.random.default_rng(13)
    checked = shared = 0
    for _ in range(2000):
        rank = int(rng.integers(1, 6))
        shape = tuple(int(d) for d in rng.integers(1, 9, size=rank))
        ins, outs = _axis_choices(rank, rng), _axis_choices(rank, rng)
        used = set(_as_list(ins, rank)) | set(_as_list(outs, rank))
        free = [a for a in range(rank) if a not in used]
        batch = free[:1] if free and rng.random() < 0.3 else ()
        got = compute_fans(shape, "keras", ins, outs, list(batch) or None)
        want = _jax_fans(shape, ins, outs, tuple(batch))
        assert all(type(f) is int for f in got)
        assert got == pytest.approx(want, rel=1e-12), (shape, ins, outs, batch)
        checked += 1
        shared += bool(set(_as_list(ins, rank)) & set(_as_list(outs, rank)))
    assert checked == 2000 and shared > 300  # overlapping axes are well represented


def test_jax_recorded_cases() -> None:
    """Cases the issue records from JAX 0.10: ``variance_scaling(1, 'fan_in', 'truncated_normal',
    in_axis=0)`` on (1000,) has fans (1, 1), so its std is 1 / 0.8796...; Flax ``nn.Embed``'s
    ``variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)`` on a (V, D) table has fan_in D."""
    vs = initializers.VarianceScaling(1.0, "fan_in", "truncated_normal")
    assert vs.fans((1000,), in_axis=0) == (1, 1)
    assert vs.target_std(*vs.fans((1000,), in_axis=0)) == 1.0
    embed = initializers.VarianceScaling(1.0, "fan_in", "untruncated_normal")
    fan_in, _ = embed.fans((32000, 512), out_axis=0)
    assert fan_in == 512
    assert embed.target_std(fan_in, 0) == math.sqrt(1.0 / 512)
