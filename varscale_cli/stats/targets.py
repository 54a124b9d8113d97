"""What each tensor should hold: a `Target`, from an initializer, a spec or a file's provenance.

A target is the exact law the configured sampler draws from (`~varscale_cli.core.distributions.
Distribution`) plus the facts a report shows beside it (documented std, fans, stored dtype).
`targets_for_file` picks the source the way ``varscale stats`` does: ``--spec``, else
``--init``, else the provenance varscale's writers record in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..core.distributions import Distribution
from ..core.dtypes import BY_NAME, numpy_dtype
from ..core.fans import Axes
from ..core.initializers import Initializer, get
from ..errors import SpecError
from ..formats.base import WeightFile
from ..provenance import recorded_distributions

__all__ = ["Target", "target_for", "targets_for_file", "targets_from_provenance"]


@dataclass(frozen=True)
class Target:
    """What a tensor should hold.

    Attributes:
        distribution: the law the configured sampler draws from (for the uncorrected
            truncated normal: scale sqrt(s / n), actual std 0.8796 of that).
        target_std: the std the initializer documents, sqrt(scale / n).
        fan_in: fan-in used, if the initializer uses fans.
        fan_out: fan-out used, if the initializer uses fans.
        dtype: the dtype the tensor was meant to be stored as (None: unknown).
    """

    distribution: Distribution
    target_std: float
    fan_in: float | None = None
    fan_out: float | None = None
    dtype: np.dtype | None = None


def target_for(
    initializer: Initializer,
    shape: tuple[int, ...],
    dtype: npt.DTypeLike | None = None,
    *,
    layout: str | None = None,
    in_axis: Axes = None,
    out_axis: Axes = None,
    batch_axis: Axes = None,
) -> Target:
    """The `Target` of an `~varscale_cli.core.initializers.Initializer` applied to ``shape``.

    Args:
        initializer: an Initializer (``initializers.get("he_normal")``).
        shape: the full tensor shape.
        dtype: the stored dtype, if known.
        layout, in_axis, out_axis, batch_axis: the fan convention (`fans.compute_fans`).
    """
    fan_in, fan_out = initializer.fans(tuple(shape), layout, in_axis, out_axis, batch_axis)
    uses = initializer.uses_fans
    return Target(
        distribution=initializer.distribution(fan_in, fan_out),
        target_std=float(initializer.target_std(fan_in, fan_out)),
        fan_in=float(fan_in) if uses else None,
        fan_out=float(fan_out) if uses else None,
        dtype=None if dtype is None else np.dtype(dtype),
    )


def targets_for_file(
    wf: WeightFile,
    spec_path: Path | None = None,
    init_name: str | None = None,
    layout: str | None = None,
) -> dict[str, Target | None]:
    """name -> Target for the tensors of ``wf``: what ``varscale stats`` checks them against.

    Args:
        wf: an open weight file.
        spec_path: a spec whose tensors are matched by name (tensors it lacks: no target).
        init_name: else, one initializer preset for every tensor, fans by ``layout``.
        layout: the fan convention for ``init_name``; None: the initializer's own
            (``default_layout``: torch for ``torch.*``, else keras), as a spec resolves it.

    Returns:
        With neither ``spec_path`` nor ``init_name``: the file's provenance targets (empty if
        it has none).

    Raises:
        SpecError: the spec is invalid or ``init_name`` names no initializer.
        ReadError: the file's provenance is malformed.
    """
    tensors = wf.tensors()
    if spec_path is not None:
        from ..engine.resolve import resolve
        from ..spec import load_spec

        spec = load_spec(spec_path)
        by_name = {t.name: t for t in resolve(spec, spec.seed or 0)}
        return {
            info.name: (
                Target(
                    distribution=by_name[info.name].distribution,
                    target_std=by_name[info.name].target_std,
                    fan_in=by_name[info.name].fan_in,
                    fan_out=by_name[info.name].fan_out,
                    dtype=info.dtype,
                )
                if info.name in by_name
                else None
            )
            for info in tensors
        }
    if init_name is not None:
        try:
            init = get(init_name)
        except ValueError as e:
            raise SpecError(f"--init: {e}") from None
        return {
            info.name: target_for(init, info.shape, info.dtype, layout=layout)
            for info in tensors
        }
    return dict(targets_from_provenance(wf.metadata, str(wf.path)) or {})


# --- provenance ------------------------------------------------------------------------------


def _dtype_from_name(name: str) -> np.dtype | None:
    if name in BY_NAME:
        return numpy_dtype(name)
    try:
        return np.dtype(name)
    except TypeError:
        return None


def targets_from_provenance(metadata: Mapping[str, str], where: str) -> dict[str, Target] | None:
    """Targets recorded by varscale's writers in a file's metadata (key ``varscale``).

    ``where`` names the file in messages.

    Returns:
        name -> Target for every tensor the provenance lists, or None if the file carries
        no varscale provenance.

    Raises:
        ReadError: the provenance is present but malformed.
    """
    raw = metadata.get("varscale")
    if raw is None:
        return None
    return {
        name: Target(
            distribution=r.distribution,
            target_std=r.distribution.std if r.target_std is None else r.target_std,
            fan_in=r.fan_in,
            fan_out=r.fan_out,
            dtype=_dtype_from_name(r.dtype) if r.dtype is not None else None,
        )
        for name, r in recorded_distributions(raw, where).items()
    }
