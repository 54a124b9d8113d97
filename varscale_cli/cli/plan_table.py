"""The ``generate --dry-run`` table: one row per tensor, fitted to the terminal's width.

Its columns say what each tensor will hold: the law (so ``he_normal``, Keras' truncated
normal, is told from ``torch.kaiming_normal``, PyTorch's untruncated one), the mean (so
``ones`` is told from ``zeros``) and one std, the sampler's, marked when the initializer's
law is not variance-corrected (see `varscale_cli.stats.layout.nominal_differs`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

from ..core.distributions import Kind
from ..engine.sizes import DECIMAL, human_bytes
from ..stats.layout import Column, fit_table, nominal_differs, std_text
from ..stats.render import UNCORRECTED_NOTE
from ..terminal import printable

if TYPE_CHECKING:
    from ..core.initializers import Initializer
    from ..engine.resolve import ResolvedTensor

#: How each law is named in the ``law`` column: what ``he_normal`` draws, said at a glance.
LAW_NAMES: dict[Kind, str] = {
    "truncated_normal": "trunc. normal",
    "normal": "normal",
    "uniform": "uniform",
    "constant": "constant",
}

#: Narrow terminals lose dtype first (one dtype per spec is the rule), then bytes, then the
#: fans (`fit_table`).
PLAN_COLUMNS = (
    Column("name"),
    Column("shape"),
    Column("dtype", drop=3),
    Column("initializer", squeeze=True),
    Column("law", squeeze=True),
    Column("fan in/out", "right", drop=1),
    Column("mean", "right"),
    Column("std", "right"),
    Column("bytes", "right", drop=2),
)


def describe_initializer(init: Initializer) -> str:
    """``he_normal`` for a preset, else ``name (k=v, ...)`` without seed and dtype (the space
    lets a narrow column wrap the parameters under the name)."""
    preset = init.preset
    if preset:
        return str(preset)
    spec = init.to_spec()
    name = spec.pop("name")
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in spec.items())
    return f"{name} ({args})" if args else str(name)


def plan_table(tensors: list[ResolvedTensor], seed: int, width: int) -> Table:
    """The plan of ``tensors`` as a table of at most ``width`` columns where names allow."""
    rows = []
    marked = False
    for t in tensors:
        d = t.distribution
        uncorrected = d.kind != "constant" and nominal_differs(d.std, t.target_std)
        marked = marked or uncorrected
        rows.append((
            Text(printable(t.name)),
            Text("x".join(map(str, t.plan.shape)) or "scalar"),
            Text(t.plan.dtype),
            Text(describe_initializer(t.plan.initializer)),
            Text(LAW_NAMES[d.kind]),
            Text(f"{t.fan_in}/{t.fan_out}"),
            Text(f"{d.mean:.4g}"),
            std_text(f"{d.std:.4g}", uncorrected),
            Text(human_bytes(t.nbytes, DECIMAL)),
        ))
    caption = UNCORRECTED_NOTE if marked else None
    return fit_table(PLAN_COLUMNS, rows, width, title=Text(f"plan (seed {seed})"), caption=caption)
