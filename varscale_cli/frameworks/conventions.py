"""`spec_from_path`: a spec in the convention of the framework that wrote a weight file.

Three conventions (`Convention`), each a framework's own fresh initialization:

* ``hf``: a Hugging Face folder (``config.json`` + ``model.safetensors`` or a sharded index):
  ``_init_weights`` with the config's values (`varscale_cli.frameworks.hf`);
* ``torch``: a PyTorch ``state_dict`` saved to safetensors or npz: ``reset_parameters`` of the
  module each tensor's names point to (`varscale_cli.frameworks.torch_modules`);
* ``keras``: a Keras ``.weights.h5``: each ``vars/N``'s layer default
  (`varscale_cli.frameworks.keras_files`).

``auto`` picks ``hf`` for a folder with ``config.json``, ``keras`` when every tensor is a
``.../vars/N`` dataset, else ``torch``. Names the convention modules do not place get the
layout's naming rules (`varscale_cli.frameworks.rules`). The spec shows its rules
(``rules:``) and keeps a tensor's own entry only where the rules would be wrong for it.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from ..core.dtypes import SAMPLED
from .choices import CONVENTIONS
from .document import spec_document
from .hf import is_hf_folder, read_config, spec_from_hf_config
from .keras_files import keras_file_entries
from .rules import KERAS, TORCH, TORCH_EMBEDDING_INIT, LayoutRules
from .torch_modules import default_bias, torch_file_entries

#: The conventions proper (`CONVENTIONS` adds ``auto``, the default, first).
Convention = Literal["hf", "torch", "keras"]

#: The rules a torch state_dict spec shows, first match wins (``torch/nn/modules``): norm
#: buffers and scales, norm biases zeros, every other ``*.bias`` the default bias of its
#: sibling weight, ``nn.Embedding`` N(0, 1).
TORCH_RULES: tuple[dict[str, Any], ...] = (
    {"match": "*running_mean", "initializer": "zeros"},
    {"match": "*running_var", "initializer": "ones"},
    *({"match": f"*{m}*.weight", "initializer": "ones"} for m in ("norm", "ln", "bn")),
    *({"match": f"*{m}*.bias", "initializer": "zeros"} for m in ("norm", "ln", "bn")),
    {"match": "*.bias", "initializer": default_bias(".weight")},
    *({"match": f"*{m}*", "initializer": TORCH_EMBEDDING_INIT} for m in ("emb", "wte", "wpe")),
)
#: Keys a rule sets besides its match.
_RULE_KEYS = ("initializer", "layout")


@dataclass
class DerivedSpec:
    """What `spec_from_path` made, for the CLI to print.

    Attributes:
        doc: the spec document.
        convention: the convention it follows.
        notes: lines saying which rules and config values it follows (its header comment).
        warnings: guesses the names could not settle, each naming the rule applied.
        skipped: tensors left out, name -> why.
    """

    doc: dict[str, Any]
    convention: Convention
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def detect(path: Path, names: Sequence[str]) -> Convention:
    """``auto``: hf for a folder with config.json, keras for ``.../vars/N`` names, else torch."""
    if is_hf_folder(path):
        return "hf"
    if names and all("/vars/" in f"/{n}" and n.rpartition("/vars/")[2].isdigit() for n in names):
        return "keras"
    return "torch"


def spec_from_path(
    path: Path,
    tensors: Sequence[tuple[str, tuple[int, ...], str]],
    convention: str = "auto",
    *,
    seed: int = 0,
) -> DerivedSpec:
    """The spec for the tensors ``(name, shape, dtype)`` read from ``path`` (module docstring).

    Raises:
        ValueError: an unknown convention, ``hf`` without a readable config.json, or no float
            tensor.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention {convention!r} is not one of {', '.join(CONVENTIONS)}")
    if convention == "auto":
        chosen = detect(path, [t[0] for t in tensors])
    else:
        chosen = cast(Convention, convention)
    if chosen == "hf":
        folder = Path(path) if Path(path).is_dir() else Path(path).parent
        doc, notes, warnings, skipped = spec_from_hf_config(read_config(folder), tensors, seed=seed)
        return DerivedSpec(doc, "hf", notes, warnings, skipped)
    pairs = [(n, tuple(s)) for n, s, d in tensors if d in SAMPLED]
    if chosen == "torch":
        wants, warnings = torch_file_entries(pairs)
        rules, shown = TORCH, list(TORCH_RULES)
        notes = ["torch convention (torch.nn reset_parameters) from the tensor names"]
    else:
        wants, warnings = keras_file_entries(pairs)
        rules = KERAS
        shown = _keras_rules(wants) + [
            {"match": r.match, "initializer": r.initializer} for r in KERAS.shown
        ]
        notes = ["keras convention (each layer's constructor defaults) from the vars/N paths"]
    for name, shape in pairs:
        if name not in wants:  # a name no module table places: the layout's naming rules
            init = rules.initializer_for(name, shape)
            wants[name] = {"initializer": rules.default if init is None else init}
    doc, skipped = assemble(tensors, wants, shown, rules, seed=seed)
    return DerivedSpec(doc, chosen, notes, warnings, skipped)


def _keras_rules(wants: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One rule per (layer, variable index): ``*batch_normalization*/vars/0`` -> ones."""
    seen: dict[str, Any] = {}
    for name, want in wants.items():
        head, _, index = name.rpartition("/vars/")
        layer = head.rpartition("/")[2].rstrip("0123456789").rstrip("_")
        seen.setdefault(f"*{layer}*/vars/{index}", want["initializer"])
    return [{"match": g, "initializer": i} for g, i in seen.items() if i != KERAS.default]


def assemble(
    tensors: Sequence[tuple[str, tuple[int, ...], str]],
    wants: Mapping[str, Mapping[str, Any]],
    shown: Sequence[Mapping[str, Any]],
    layout: LayoutRules,
    *,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, str]]:
    """A spec for ``tensors`` in which every tensor resolves to its ``wants`` entry.

    The ``shown`` rules (first match wins per key, as the spec resolver reads them) and the
    layout's defaults carry the common case; a tensor keeps its own ``initializer`` or
    ``layout`` only where they would give it something else, and its axes and zero rows
    always. Rules no tensor uses are dropped. Non-float tensors are left out (returned as
    name -> why).
    """
    defaults = {"initializer": layout.default, "layout": layout.layout}
    entries: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    dtypes: list[str] = []
    used: set[int] = set()
    for name, shape, dtype in tensors:
        if dtype not in SAMPLED:
            skipped[name] = f"{dtype}; varscale produces floats only"
            continue
        want = dict(wants.get(name, {}))
        entry: dict[str, Any] = {"shape": list(shape)}
        for key in _RULE_KEYS:
            got = defaults[key]
            for i, rule in enumerate(shown):
                if key in rule and fnmatch.fnmatchcase(name, rule["match"]):
                    got = rule[key]
                    used.add(i)
                    break
            wanted = want.pop(key, defaults[key] if key == "layout" else got)
            if wanted != got:
                entry[key] = copy.deepcopy(wanted)
        entry.update(copy.deepcopy(want))
        entries[name] = entry
        dtypes.append(dtype)
    if not entries:
        raise ValueError("the file has no float tensors; varscale only produces floats")
    kept = [copy.deepcopy(dict(r)) for i, r in enumerate(shown) if i in used]
    return spec_document(layout, seed, entries, dtypes, kept), skipped
