"""The result of loading a spec: a frozen `Spec` holding one `TensorPlan` per output tensor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.initializers import Initializer


@dataclass(frozen=True)
class TensorPlan:
    """One tensor to produce, with everything resolved.

    Attributes:
        name: the tensor's name in the output file.
        shape: its shape.
        dtype: canonical dtype name ('float32', 'bfloat16', ...).
        initializer: the deserialized initializer.
        layout: 'keras' ((..., in, out)) or 'torch' ((out, in, *k)).
        in_axis: explicit input axes (non-negative), or None for the layout's default.
        out_axis: explicit output axes (non-negative), or None for the layout's default.
        batch_axis: axes that count for neither fan; () by default.
        stream: the name whose random stream gives the values (a partition's ``of``).
        full_shape: the shape the fans and the stream are computed over (== shape unless
            partitioned).
        offset: where this tensor sits inside ``full_shape`` (zeros unless partitioned).
        source: the resolved entry as a JSON-able dict, for provenance.
        zero_rows: rows (indices along axis 0 of ``full_shape``, non-negative, sorted) that are
            exactly 0 whatever the initializer draws, as ``nn.Embedding(padding_idx=...)``'s.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    initializer: Initializer
    layout: str
    in_axis: tuple[int, ...] | None
    out_axis: tuple[int, ...] | None
    batch_axis: tuple[int, ...]
    stream: str
    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    # A dict is unhashable: keep it out of the generated __hash__.
    source: dict[str, Any] = field(hash=False)
    zero_rows: tuple[int, ...] = ()


@dataclass(frozen=True)
class Spec:
    """A validated spec file.

    Attributes:
        path: the file it came from, if any.
        version: the format version (always 1).
        seed: the global seed, or None if the spec leaves it to the command line.
        tensors: the tensors in spec order, after split expansion.
        sha256: hex SHA-256 of the spec file's bytes.
        hf_config: the Hugging Face ``config.json`` the spec records (``hf_config:``), which
            `varscale generate` writes beside the weights; None if it has none.
    """

    path: Path | None
    version: int
    seed: int | None
    tensors: tuple[TensorPlan, ...]
    sha256: str
    hf_config: dict[str, Any] | None = field(default=None, hash=False, compare=False)
