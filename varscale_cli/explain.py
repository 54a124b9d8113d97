"""``varscale explain``: one shape and one initializer under every framework's fan convention.

Porting a model between frameworks, the same name gives different weights for three reasons,
and this shows each one side by side:

* the **fans**: Keras/TF read a kernel as ``(..., in, out)``, PyTorch as ``(out, in, *k)``,
  JAX takes explicit ``in_axis`` / ``out_axis`` / ``batch_axis`` (defaults -2, -1, none);
* the **law** the name stands for (a truncated normal corrected to the target variance, an
  untruncated one, a uniform), with its bounds;
* **historical variants** that do not reach the target variance: TF <= 1.12's (r1.2's)
  uncorrected truncated normal cut at +-2 of the target std (variance 0.774 of the target),
  and ``torch.nn.init.trunc_normal_(std=s)``, whose bounds ``a=-2, b=2`` are absolute values,
  not multiples of ``std``: for a small ``s`` it hardly truncates at all.

Nothing here is new math: fans come from `core.fans`, laws from `core.initializers`, variances
from `core.distributions` (the truncated normal's closed-form moments).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .core.distributions import Distribution
from .core.fans import LAYOUTS, Axes, FanConvention
from .core.initializers import Initializer

#: ``schema_version`` of ``explain --json`` (docs/json/explain.schema.json).
EXPLAIN_SCHEMA_VERSION = 1

#: torch.nn.init.trunc_normal_'s default bounds, absolute values (torch/nn/init.py:
#: ``trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0)``).
TORCH_TRUNC_BOUND = 2.0


@dataclass(frozen=True)
class Convention:
    """One framework's reading of the shape: its axes, fans and what the initializer draws."""

    name: str
    axes: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    fan_in: int
    fan_out: int
    n: float | None
    target_std: float
    law: Distribution

    def to_json(self) -> dict[str, object]:
        ins, outs, batch, field = self.axes
        return {
            "name": self.name,
            "in_axes": list(ins), "out_axes": list(outs), "batch_axes": list(batch),
            "receptive_axes": list(field),
            "fan_in": self.fan_in, "fan_out": self.fan_out, "n": self.n,
            "target_std": self.target_std, **_law_json(self.law, self.target_std),
        }


@dataclass(frozen=True)
class Variant:
    """A law other code draws for the same target std, and the variance it really gets."""

    name: str
    note: str
    target_std: float
    law: Distribution

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "note": self.note, "target_std": self.target_std,
                **_law_json(self.law, self.target_std)}


def _law_json(law: Distribution, target_std: float) -> dict[str, object]:
    target_var = target_std * target_std
    return {
        "distribution": law.to_json(),
        "bound": law.bound,
        "std": law.std,
        "variance": law.variance,
        "variance_ratio": law.variance / target_var if target_var > 0 else None,
    }


def _n(init: Initializer, fan_in: int, fan_out: int) -> float | None:
    """The ``n`` of ``scale / n`` when the initializer has a fan mode (None for fixed laws)."""
    from .core.initializers.base import fan_n

    mode = getattr(init, "mode", None)
    if isinstance(mode, str) and mode.lower() in ("fan_in", "fan_out", "fan_avg", "fan_geo_avg"):
        return fan_n(mode.lower(), fan_in, fan_out)
    if init.name.startswith("torch.xavier"):
        return fan_n("fan_avg", fan_in, fan_out)
    return None


@dataclass(frozen=True)
class Explanation:
    """Everything ``varscale explain`` prints (`lines`) or emits (`to_json`)."""

    shape: tuple[int, ...]
    initializer: Initializer
    layout: str
    conventions: list[Convention]
    writes: Convention
    variants: list[Variant]

    def to_json(self) -> dict[str, object]:
        return {
            "schema_version": EXPLAIN_SCHEMA_VERSION,
            "command": "explain",
            "shape": list(self.shape),
            "initializer": self.initializer.to_spec(),
            "layout": self.layout,
            "conventions": [c.to_json() for c in self.conventions],
            "varscale_writes": self.writes.to_json(),
            "variants": [v.to_json() for v in self.variants],
        }

    def lines(self) -> list[str]:
        """The text form: at most 100 columns for shapes and parameters of ordinary length."""
        shape = "x".join(map(str, self.shape)) or "scalar"
        out = [f"shape:       {shape}", f"initializer: {describe(self.initializer)}", ""]
        head = (
            f"{'convention':<16} {'in':>5} {'out':>5} {'field':>7} {'fan_in':>9} {'fan_out':>9}"
            f" {'n':>9} {'std':>10} {'bound':>11}"
        )
        out += [head, "-" * len(head)]
        for c in self.conventions:
            ins, outs, _, field = c.axes
            bound = "none" if c.law.bound is None else f"+-{_g(c.law.bound)}"
            n = "-" if c.n is None else f"{c.n:,.0f}" if float(c.n).is_integer() else _g(c.n)
            out.append(
                f"{c.name:<16} {_ax(ins):>5} {_ax(outs):>5} {_ax(field):>7} {c.fan_in:>9,}"
                f" {c.fan_out:>9,} {n:>9} {_g(c.target_std):>10} {bound:>11}"
            )
            out.append(f"{'':<17}draws {_law(c.law)}")
        w = self.writes
        where = f"layout {self.layout}" + ("" if w.name in LAYOUTS else " with the given axes")
        out += [
            "",
            f"varscale writes ({where}): {_law(w.law)}",
            f"  std {_g(w.law.std)}, target {_g(w.target_std)}",
        ]
        if self.variants:
            out += ["", f"what other code draws for std {_g(w.target_std)}:"]
        for v in self.variants:
            ratio = v.law.variance / (v.target_std * v.target_std)
            out.append(f"  {v.name}: {_law(v.law)}")
            out.append(f"    variance {ratio:.4f} x target (std {_g(v.law.std)})")
            out.extend(f"    {line}" for line in v.note.split("; "))
        return out


def describe(init: Initializer) -> str:
    """``he_normal = variance_scaling(scale=2, ...)`` or ``torch.kaiming_uniform(a=2.2361, ...)``."""
    spec = init.to_spec()
    name = spec.pop("name")
    params = ", ".join(f"{k}={_g(v) if isinstance(v, float) else v}" for k, v in spec.items())
    text = f"{name}({params})" if params else str(name)
    preset = getattr(init, "preset", None)
    return f"{preset} = {text}" if preset else text


def _g(x: float) -> str:
    return f"{x:.5g}"


def _ax(axes: Sequence[int]) -> str:
    return ",".join(map(str, axes)) or "-"


def _law(d: Distribution) -> str:
    loc = "" if d.loc == 0 else f"{_g(d.loc)} + "
    if d.kind == "truncated_normal":
        return f"{loc}normal(std {_g(d.scale)}) cut at +-{_g(d.cut)} std = +-{_g(d.cut * d.scale)}"
    if d.kind == "normal":
        return f"{loc}normal(std {_g(d.scale)}), unbounded"
    if d.kind == "uniform":
        return f"{loc}uniform(+-{_g(d.scale)})"
    if d.kind == "orthogonal":
        return f"{_g(d.scale)} x orthogonal {d.rows} x {d.cols} matrix, entries within +-{_g(d.scale)}"
    if d.is_complex:
        return f"{d.kind} (|z| <= {_g(d.bound)})" if d.bound is not None else d.kind
    return f"constant {_g(d.loc)}"


def explain(
    shape: Sequence[int],
    init: Initializer,
    layout: str = "keras",
    in_axis: Axes = None,
    out_axis: Axes = None,
    batch_axis: Axes = None,
) -> Explanation:
    """Compare the conventions for ``shape`` and ``init``; ``layout`` and the axes say what
    varscale writes (as a spec tensor with those keys).

    Raises:
        ValueError: a bad layout or axes (as `core.fans.compute_fans`).
    """
    shape = tuple(int(d) for d in shape)

    def convention(name: str, conv: FanConvention) -> Convention:
        axes = conv.axes(shape)
        fi, fo = conv.fans(shape)
        law = init.law(fi, fo, shape=shape, layout=conv.layout)  # orthogonal's needs the whole shape
        target = init.target_std(fi, fo) if init.elementwise else law.std
        return Convention(name, axes, fi, fo, _n(init, fi, fo), target, law)

    explicit = in_axis is not None or out_axis is not None or batch_axis is not None
    jax_name = "JAX (given axes)" if explicit else "JAX (defaults)"
    rank = len(shape)
    conventions = [
        convention("keras / TF", FanConvention("keras")),
        convention("torch", FanConvention("torch")),
        # JAX's variance_scaling: in_axis=-2, out_axis=-1, batch_axis=() unless given.
        convention(jax_name, FanConvention("keras", in_axis if explicit or rank < 2 else -2,
                                           out_axis if explicit or rank < 2 else -1, batch_axis)),
    ]
    writes = convention(
        jax_name if explicit else layout, FanConvention(layout, in_axis, out_axis, batch_axis)
    )
    std = writes.target_std
    variants = []
    if std > 0:
        variants = [
            # TF r1.2 init_ops.py VarianceScaling: truncated_normal(shape, 0.0,
            # stddev=sqrt(scale / n)), cut at +-2 of that stddev, no correction.
            Variant(
                "TF r1.2 truncated_normal (uncorrected)",
                "cut at +-2 target std without the 1/0.8796 correction (TF <= 1.12); "
                "torch trunc_normal_(std=s, a=-2s, b=2s) draws the same law",
                std, Distribution("truncated_normal", std, cut=2.0),
            ),
            Variant(
                f"torch trunc_normal_(std={_g(std)})",
                f"its default bounds a=-{TORCH_TRUNC_BOUND:g}, b={TORCH_TRUNC_BOUND:g} are "
                "absolute values, not multiples of std",
                std, Distribution("truncated_normal", std, cut=TORCH_TRUNC_BOUND / std),
            ),
        ]
    return Explanation(shape, init, layout, conventions, writes, variants)


def parse_shape(text: str) -> tuple[int, ...]:
    """``3x3x64x128``, ``256,784``, ``[256, 784]`` or ``scalar`` as a shape.

    Raises:
        ValueError: anything else, or a dimension that is not a non-negative integer.
    """
    t = text.strip().strip("[]()").strip()
    if t in ("", "scalar"):
        return ()
    parts = [p.strip() for p in t.replace("x", ",").replace("X", ",").split(",")]
    if not all(p.isdigit() for p in parts):
        raise ValueError(f"shape {text!r} is not dimensions like 3x3x64x128 or 256,784")
    dims = tuple(int(p) for p in parts)
    if math.prod(dims) > 2**62:
        raise ValueError(f"shape {text!r} has more than 2^62 elements")
    return dims
