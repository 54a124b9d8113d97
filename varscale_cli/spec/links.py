"""Resolve-time facts that reach beyond one entry's own keys: an initializer that takes the fans
of another tensor (``torch.default_bias`` names its ``weight``), and the rows of a tensor that
are zero whatever its initializer draws (``zero_rows``, an embedding's ``padding_idx``)."""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core.fans import compute_fans
from .messages import Ctx, closest
from .model import TensorPlan


def zero_rows(entry: dict[str, Any], full_shape: tuple[int, ...], ctx: Ctx, where: str) -> tuple[int, ...]:
    """An entry's ``zero_rows`` as sorted non-negative rows (axis 0) of its full tensor. A
    negative index counts from the end, as ``nn.Embedding``'s ``padding_idx`` does
    (``torch/nn/modules/sparse.py``: ``padding_idx = num_embeddings + padding_idx``)."""
    rows = entry.get("zero_rows") or []
    if not rows:
        return ()
    if not full_shape:
        raise ctx.error("zero_rows needs a tensor of rank >= 1; a 0-d tensor has no rows", where)
    n = full_shape[0]
    bad = [r for r in rows if not -n <= r < n]
    if bad:
        raise ctx.error(
            f"zero_rows {bad[0]} is out of range for {n} rows (allowed: {-n} .. {n - 1})", where
        )
    normalized = sorted({r % n for r in rows})
    if len(normalized) != len(rows):
        raise ctx.error(f"zero_rows {list(rows)} names a row twice", where)
    return tuple(normalized)


def bind_fans(plans: list[TensorPlan], ctx: Ctx) -> list[TensorPlan]:
    """Every plan whose initializer takes another tensor's fans (`Initializer.fans_of`), with
    that initializer bound to the fans of the named tensor: its full shape, layout and axes."""
    by_name = {p.name: p for p in plans}
    out = []
    for p in plans:
        ref = p.initializer.fans_of(p.name)
        if ref is not None:
            where = f"tensor {p.name!r}"
            target = by_name.get(ref)
            if target is None:
                raise ctx.error(
                    f"initializer {p.initializer.name!r} takes the fans of {ref!r}, which is not "
                    f"a tensor of this spec{closest(ref, by_name)}",
                    where,
                )
            fans = compute_fans(
                target.full_shape, target.layout, target.in_axis, target.out_axis,
                target.batch_axis or None,
            )
            try:
                init = p.initializer.bind_fans(*fans, weight=ref)
            except ValueError as e:
                raise ctx.error(f"initializer: {e}", where) from None
            source = {**p.source, "initializer": init.to_spec()}
            p = dataclasses.replace(p, initializer=init, source=source)
        out.append(p)
    return out
