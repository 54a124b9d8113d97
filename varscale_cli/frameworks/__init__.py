"""Specs from the two big ecosystems' own weight layouts, so `varscale generate` writes files
they load directly.

* `spec_from_state_dict`: a PyTorch ``state_dict()`` (or any mapping of name -> array) becomes
  a spec in ``layout: torch`` with the names, shapes and dtypes of the tensors and PyTorch's
  default initializers. The generated ``.safetensors`` file loads with
  ``model.load_state_dict(safetensors.torch.load_file(path), strict=True)`` once the integer
  buffers are added back (see below).
* `spec_from_keras`: a built Keras 3 model becomes a spec whose tensor names are the HDF5
  dataset paths ``model.save_weights("x.weights.h5")`` writes (``layers/dense/vars/0``, ...),
  with each layer's own initializers. The generated ``x.weights.h5`` loads with
  ``model.load_weights("x.weights.h5")``.
* `spec_from_tensors`: the names, shapes and dtypes read from any weight file become a spec in
  either layout, with the layout's naming rules shown in its ``rules:`` list.
* `spec_from_module`: a live ``torch.nn.Module`` becomes a spec that reproduces every module's
  ``reset_parameters`` (`torch_modules`), ties and deep-copied layers included.
* `spec_from_path` (``varscale spec PATH``): a weight file or a Hugging Face folder becomes a
  spec in its framework's convention, ``hf`` (`hf`: transformers' ``_init_weights`` from the
  ``config.json``), ``torch`` or ``keras`` (`keras_files`: what each ``vars/N`` is)
  (`conventions`).
* `dump_spec`: the YAML text of such a document.

Modules: `torch` (state dicts), `keras` (Keras models), `files` (any weight file), `rules` (the
one table of naming rules per layout all three follow), `document` (assembly and YAML), and the
framework conventions: `conventions` (their names: `choices`), `hf`, `torch_modules`,
`keras_files`. Each public name loads its module on first use.
Neither torch nor keras is imported by this package: `spec_from_state_dict` only needs objects
with ``.shape`` and ``.dtype``, and `spec_from_keras` imports keras when it is called.

**Integer and other non-float tensors.** varscale only produces float16, bfloat16, float32 and
float64. `spec_from_state_dict` leaves every other tensor out of the spec (BatchNorm's int64
``num_batches_tracked``, integer ``position_ids`` buffers, bool masks, float8 weights);
`skipped_tensors` lists them, with the same test. BatchNorm fills in its own missing
``num_batches_tracked`` when the state dict carries no version metadata (as one read from
safetensors does), so a module whose only integer buffers are those loads strictly as it is.
Any other left-out tensor is state of a *fresh* module, so the honest way to load strictly is to
take it from the module itself::

    sd = safetensors.torch.load_file("w.safetensors")
    fresh = model.state_dict()
    sd.update({name: fresh[name] for name in skipped_tensors(fresh)})
    model.load_state_dict(sd, strict=True)

A Keras layer checks that the file holds all of its variables, so leaving one out would make
``load_weights`` fail: `spec_from_keras` raises `ValueError` naming any non-float variable
instead.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .conventions import DerivedSpec, spec_from_path
    from .document import dump_spec
    from .files import spec_from_tensors
    from .hf import spec_from_hf_config
    from .keras import spec_from_keras
    from .rules import TORCH_DEFAULT_INIT
    from .torch import skipped_tensors, spec_from_state_dict
    from .torch_modules import spec_from_module

#: The module of each public name. They load on first use (PEP 562 ``__getattr__``): a
#: ``varscale generate`` run needs none of them, and together (yaml, the rule tables, the
#: per-framework modules) they cost 25-50 ms of start-up.
_HOMES = {
    "DerivedSpec": "conventions", "spec_from_path": "conventions", "dump_spec": "document",
    "spec_from_tensors": "files", "spec_from_hf_config": "hf", "spec_from_keras": "keras",
    "TORCH_DEFAULT_INIT": "rules", "skipped_tensors": "torch",
    "spec_from_state_dict": "torch", "spec_from_module": "torch_modules",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "TORCH_DEFAULT_INIT",
    "DerivedSpec",
    "dump_spec",
    "skipped_tensors",
    "spec_from_hf_config",
    "spec_from_keras",
    "spec_from_module",
    "spec_from_path",
    "spec_from_state_dict",
    "spec_from_tensors",
]
