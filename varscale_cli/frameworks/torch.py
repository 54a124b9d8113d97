"""`spec_from_state_dict`: a spec for a PyTorch ``state_dict()`` (see the package docstring)."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from ..core.dtypes import SAMPLED
from .document import spec_document
from .rules import TORCH, requested_dtype


class Tensor(Protocol):
    """What `spec_from_state_dict` reads of a tensor: a torch tensor, a numpy array..."""

    @property
    def shape(self) -> Sequence[int]: ...

    @property
    def dtype(self) -> object: ...


def _dtype_name(dtype: object) -> str:
    """``torch.float32`` / ``np.dtype('float32')`` / ``ml_dtypes.bfloat16`` -> ``float32``..."""
    name = getattr(dtype, "name", None)  # numpy and ml_dtypes dtypes
    if not isinstance(name, str):
        name = str(dtype)
    return name.removeprefix("torch.")


def skipped_tensors(state_dict: Mapping[str, Tensor]) -> dict[str, str]:
    """The tensors `spec_from_state_dict` leaves out, name -> dtype: those not float16,
    bfloat16, float32 or float64 (integer buffers such as ``num_batches_tracked``, bool masks,
    float8 and complex tensors)."""
    out = {}
    for name, tensor in state_dict.items():
        dtype = _dtype_name(tensor.dtype)
        if dtype not in SAMPLED:
            out[name] = dtype
    return out


def _storage_key(tensor: Any) -> tuple[object, ...] | None:
    """Identifies torch tensors that are the same memory (tied weights); None for anything else.

    `tensor` is duck-typed (torch is untyped here, and numpy arrays answer None). The storage is
    told by its StorageImpl (``_cdata``), which also tells meta-device storages apart (their
    data pointers are all 0); without it, by a non-zero data pointer."""
    try:
        if tensor.numel() == 0:
            return None
        storage = tensor.untyped_storage()
        ident = getattr(storage, "_cdata", None) or storage.data_ptr()
        if not ident:
            return None
        return (
            ident,
            tensor.storage_offset(),
            tuple(tensor.shape),
            tuple(tensor.stride()),
            str(tensor.dtype),
        )
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return None


def spec_from_state_dict(
    state_dict: Mapping[str, Tensor], *, seed: int = 0, dtype: str | None = None
) -> dict[str, Any]:
    """A spec document (the dict form of the YAML) for a PyTorch ``state_dict()``.

    Args:
        state_dict: name -> tensor; anything with ``.shape`` and ``.dtype`` works (torch tensors,
            numpy arrays). Order is kept.
        seed: The spec's ``seed``.
        dtype: Every tensor's dtype (``float32``, ``bfloat16``, ``float16``, ``float64`` or an
            alias); by default each tensor keeps its own.

    Returns:
        ``{version: 1, seed, defaults: {dtype?, layout: torch, initializer:
        torch.kaiming_uniform(a=sqrt(5))}, tensors: {name: {shape, ...}}}``. Rules
        (`varscale_cli.frameworks.rules.TORCH`), in order:

        * non-float tensors are left out (see `skipped_tensors` and the package docstring);
        * ``*running_mean`` zeros, ``*running_var`` ones (BatchNorm buffers);
        * 1-D ``*bias`` zeros;
        * 1-D normalization weights (`rules.NORM_PATTERNS`, and any other 1-D ``*weight``)
          ones;
        * 2-D embeddings (name contains ``emb``, ``wte`` or ``wpe``) ``random_normal`` with
          stddev 1.0, ``nn.Embedding``'s N(0, 1);
        * any other tensor of rank 0 or 1 zeros;
        * everything else PyTorch's Linear/Conv default: ``torch.kaiming_uniform`` with
          ``a = sqrt(5)``, U(+-1/sqrt(fan_in)) with PyTorch's fans.

        Tied torch tensors (the same memory under two names, e.g. an embedding shared with the
        output layer) become a ``partition`` of the first name covering all of it, so both names
        hold the same values.

    Raises:
        ValueError: an unknown ``dtype``, or no float tensor at all.
    """
    override = requested_dtype(dtype) if dtype is not None else None
    tensors: dict[str, dict[str, Any]] = {}
    dtypes: list[str] = []
    first_of: dict[tuple[object, ...], str] = {}
    for name, tensor in state_dict.items():
        if not isinstance(name, str):
            raise ValueError(f"state_dict keys must be strings, got {name!r}")
        own = _dtype_name(tensor.dtype)
        if own not in SAMPLED:
            continue
        shape = [int(d) for d in tensor.shape]
        entry: dict[str, Any] = {"shape": shape}
        init = TORCH.initializer_for(name, tuple(shape))
        key = _storage_key(tensor)
        tied = first_of.get(key) if key is not None else None
        if tied is not None:
            # Same stream, so the same values; the partition must agree with its whole.
            init = tensors[tied].get("initializer")
            entry["partition"] = {"of": tied, "full_shape": shape, "offset": [0] * len(shape)}
        elif key is not None:
            first_of[key] = name
        if init is not None:
            entry["initializer"] = copy.deepcopy(init)
        tensors[name] = entry
        dtypes.append(override or own)
    if not tensors:
        raise ValueError("the state_dict has no float tensors; varscale only produces floats")
    return spec_document(TORCH, seed, tensors, dtypes)
