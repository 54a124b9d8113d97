"""Specs that reproduce ``torch.nn``'s own fresh initialization, module by module.

`spec_from_module` walks a live ``nn.Module`` and gives every entry of its ``state_dict()`` the
law its module's ``reset_parameters`` draws it from (torch 2.13, ``torch/nn/modules/*.py``):

* ``nn.Linear``, ``nn.ConvNd``, ``nn.ConvTransposeNd``: weight ``kaiming_uniform_(a=sqrt(5))``
  = U(+-1/sqrt(fan_in)) with fan_in = ``w.shape[1] * prod(w.shape[2:])`` (so a transposed conv's
  fan_in is out/groups times the kernel, from the same code); bias U(+-1/sqrt(fan_in of the
  weight)): ``torch.default_bias`` naming the weight.
* ``nn.Bilinear``: weight and bias U(+-1/sqrt(in1)) (``bound = 1 / math.sqrt(self.weight.size(1))``):
  the weight's fans are taken over axis 1 only (``in_axis: 1, out_axis: 0, batch_axis: 2``).
* Norms (``_NormBase``: BatchNorm/InstanceNorm/SyncBatchNorm; LayerNorm, GroupNorm, RMSNorm):
  weight 1, bias 0, ``running_mean`` 0, ``running_var`` 1.
* ``nn.Embedding`` / ``nn.EmbeddingBag``: N(0, 1), the ``padding_idx`` row 0 (``zero_rows``).
* ``nn.MultiheadAttention._reset_parameters``: ``in_proj_weight`` (or q/k/v_proj_weight)
  xavier_uniform, ``in_proj_bias`` and ``out_proj.bias`` 0, ``bias_k``/``bias_v`` xavier_normal;
  ``out_proj.weight`` keeps the Linear default.
* ``nn.RNNBase`` / ``nn.RNNCellBase``: every parameter U(+-1/sqrt(hidden_size)).
* ``nn.PReLU``: its ``init`` value (0.25).
* ``nn.Transformer._reset_parameters``: xavier_uniform on every parameter with dim > 1.
  ``nn.TransformerEncoder/Decoder`` deep-copy one layer (``_get_clones``), so every layer starts
  with the values of layer 0: those entries are partitions of layer 0's, the same values.

A parent's rule wins over its children's, as a parent's init runs after its children's
constructors. Tied tensors (one storage under several names) become partitions of the first
name. A module type without a rule here gets the name rules of a state_dict file, with a
warning naming it.

`torch_file_entries` applies the same rules when only names and shapes are known (a
state_dict saved to safetensors or npz): the module type is inferred from the names of its
tensors, and a guess the names cannot settle is reported.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from .rules import EMBEDDING_MARKERS, TORCH, TORCH_DEFAULT_INIT
from .rules import TORCH_EMBEDDING_INIT as EMBEDDING_INIT
from .torch import spec_from_state_dict

Entry = dict[str, Any]

XAVIER_UNIFORM: dict[str, Any] = {"name": "torch.xavier_uniform"}
XAVIER_NORMAL: dict[str, Any] = {"name": "torch.xavier_normal"}
#: transformers' ``pytorch_utils.Conv1D`` (GPT-2): ``nn.init.normal_(self.weight, std=0.02)``,
#: zero bias, weight stored (in, out).
CONV1D_INIT: dict[str, Any] = {"name": "random_normal", "mean": 0.0, "stddev": 0.02}


def default_bias(weight: str) -> dict[str, Any]:
    """The ``torch.default_bias`` initializer taking its bound from ``weight``'s fan_in."""
    return {"name": "torch.default_bias", "weight": weight}


def rnn_uniform(hidden_size: int) -> Any:
    """``RNNBase.reset_parameters``: ``stdv = 1.0 / math.sqrt(self.hidden_size) if
    self.hidden_size > 0 else 0``, then ``init.uniform_(weight, -stdv, stdv)``."""
    if hidden_size <= 0:
        return "zeros"
    bound = 1.0 / math.sqrt(hidden_size)
    return {"name": "random_uniform", "minval": -bound, "maxval": bound}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# --- the live module walk -----------------------------------------------------------------------


def _module_entries(nn: Any, mod: Any, prefix: str) -> tuple[dict[str, Entry], dict[str, str]] | None:
    """(entries for the tensors this module's init sets, copies: name -> name whose values it
    starts with), or None when torch.nn has no rule for this module type."""
    def p(name: str) -> str:
        return _join(prefix, name)

    own = {n for n, _ in mod.named_parameters(recurse=False)} | {
        n for n, _ in mod.named_buffers(recurse=False)
    }
    out: dict[str, Entry] = {}
    copies: dict[str, str] = {}
    if isinstance(mod, nn.Transformer):
        for n, param in mod.named_parameters(remove_duplicate=False):
            if param.dim() > 1:
                out[p(n)] = {"initializer": XAVIER_UNIFORM}
    elif isinstance(mod, nn.TransformerEncoder | nn.TransformerDecoder):
        first = dict(mod.layers[0].named_parameters(remove_duplicate=False))
        for i in range(1, len(mod.layers)):
            for n in first:
                copies[p(f"layers.{i}.{n}")] = p(f"layers.0.{n}")
    elif isinstance(mod, nn.TransformerEncoderLayer | nn.TransformerDecoderLayer):
        pass  # no init of its own: its children's
    elif isinstance(mod, nn.MultiheadAttention):
        for n in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            if getattr(mod, n, None) is not None:
                out[p(n)] = {"initializer": XAVIER_UNIFORM}
        if mod.in_proj_bias is not None:
            out[p("in_proj_bias")] = {"initializer": "zeros"}
            out[p("out_proj.bias")] = {"initializer": "zeros"}
        for n in ("bias_k", "bias_v"):
            if getattr(mod, n, None) is not None:
                out[p(n)] = {"initializer": XAVIER_NORMAL}
    elif isinstance(mod, nn.Bilinear):
        axes = {"in_axis": 1, "out_axis": 0, "batch_axis": 2}
        out[p("weight")] = {"initializer": TORCH_DEFAULT_INIT, **axes}
        if mod.bias is not None:
            out[p("bias")] = {"initializer": default_bias(p("weight"))}
    elif isinstance(mod, nn.Linear | nn.modules.conv._ConvNd):
        out[p("weight")] = {"initializer": TORCH_DEFAULT_INIT}
        if mod.bias is not None:
            out[p("bias")] = {"initializer": default_bias(p("weight"))}
    elif isinstance(mod, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm | nn.RMSNorm):
        laws = {"weight": "ones", "bias": "zeros", "running_mean": "zeros", "running_var": "ones"}
        for n in own & set(laws):
            out[p(n)] = {"initializer": laws[n]}
    elif isinstance(mod, nn.Embedding | nn.EmbeddingBag):
        entry: Entry = {"initializer": EMBEDDING_INIT}
        if mod.padding_idx is not None:
            entry["zero_rows"] = [int(mod.padding_idx)]
        out[p("weight")] = entry
    elif isinstance(mod, nn.RNNBase | nn.RNNCellBase):
        law = rnn_uniform(int(mod.hidden_size))
        for n, _ in mod.named_parameters(recurse=False):
            out[p(n)] = {"initializer": law}
    elif isinstance(mod, nn.PReLU):
        out[p("weight")] = {"initializer": {"name": "constant", "value": float(mod.init)}}
    elif own:
        return None
    return out, copies


def module_entries(module: Any) -> tuple[dict[str, Entry], list[str]]:
    """Every state_dict entry's law from its module's ``reset_parameters`` (see the module
    docstring), and the warnings for module types with no rule here."""
    import torch.nn as nn

    entries: dict[str, Entry] = {}
    copies: dict[str, str] = {}
    unknown: dict[str, list[str]] = {}
    for prefix, mod in module.named_modules(remove_duplicate=False):
        got = _module_entries(nn, mod, prefix)
        if got is None:
            names = [n for n, _ in mod.named_parameters(recurse=False)]
            names += [n for n, _ in mod.named_buffers(recurse=False)]
            unknown.setdefault(type(mod).__name__, []).extend(_join(prefix, n) for n in names)
            continue
        own, own_copies = got
        for name, entry in own.items():
            entries.setdefault(name, entry)  # a parent's rule (visited first) wins
        for name, source in own_copies.items():
            if name not in entries:
                copies.setdefault(name, source)
    for name, source in copies.items():
        # Registered before any descendant's rule: a deep copy of layer 0 wins over them.
        if source in entries:
            entries[name] = {**copy.deepcopy(entries[source]), "copy_of": source}
    notes = [
        f"{kind} has no reset_parameters rule in varscale; its tensors {', '.join(names)} get "
        "the state_dict name rules"
        for kind, names in unknown.items()
        if names
    ]
    return entries, notes


def spec_from_module(module: Any, *, seed: int = 0, dtype: str | None = None) -> dict[str, Any]:
    """A spec whose generated file is what a fresh ``module`` holds, law for law.

    Tensor names, shapes and dtypes are those of ``module.state_dict()`` (non-float buffers
    such as ``num_batches_tracked`` are left out, as in `spec_from_state_dict`). Each tensor
    gets its module's own init (module docstring); the result loads with
    ``module.load_state_dict(safetensors.torch.load_file(path), strict=True)``.

    Args:
        module: a ``torch.nn.Module`` with materialised parameters (no ``Lazy*`` left).
        seed: the spec's ``seed``.
        dtype: every tensor's dtype; by default each tensor's own.

    Raises:
        ValueError: an uninitialised (lazy) parameter, an unknown dtype, or no float tensor.
    """
    import torch.nn as nn

    for name, param in module.named_parameters():
        if isinstance(param, nn.parameter.UninitializedParameter):
            raise ValueError(f"{name} is not initialized yet (a Lazy module): run one forward first")
    state = module.state_dict(keep_vars=True)
    doc = spec_from_state_dict(state, seed=seed, dtype=dtype)
    entries, notes = module_entries(module)
    tensors = doc["tensors"]
    for name, entry in tensors.items():
        if "partition" in entry:
            continue  # tied: filled in from its source below
        rule = entries.get(name)
        if rule is None:
            init = TORCH.initializer_for(name, tuple(entry["shape"]))
            rule = {"initializer": TORCH_DEFAULT_INIT if init is None else init}
        _apply(entry, rule, tensors)
    for entry in tensors.values():
        part = entry.get("partition")
        if part is not None:
            source = tensors[part["of"]]
            for key in ("initializer", "in_axis", "out_axis", "batch_axis", "zero_rows", "layout"):
                entry.pop(key, None)
                if key in source:
                    entry[key] = copy.deepcopy(source[key])
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return doc


def _apply(entry: Entry, rule: Entry, tensors: Mapping[str, Entry]) -> None:
    """Write ``rule`` into a spec entry: its initializer only when not the default, its axes
    and zero rows, and a ``copy_of`` as a partition of that tensor."""
    rule = copy.deepcopy(rule)
    source = rule.pop("copy_of", None)
    init = rule.pop("initializer")
    entry.pop("initializer", None)
    if init != TORCH_DEFAULT_INIT:
        entry["initializer"] = init
    entry.update(rule)
    if source is not None and source in tensors:
        shape = entry["shape"]
        entry["partition"] = {"of": source, "full_shape": list(shape), "offset": [0] * len(shape)}


# --- names only: a state_dict file --------------------------------------------------------------

_RNN_LEAF = re.compile(r"(weight|bias)_(ih|hh|hr)(_l\d+(_reverse)?)?")
_MHA_WEIGHTS = ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight")
#: Attribute names of transformers' ``Conv1D`` layers (GPT-2 family), weight (in, out).
CONV1D_NAMES = ("c_attn", "c_fc", "c_proj", "q_attn")
NORM_MARKERS = ("norm", "ln", "bn")


def torch_file_entries(
    tensors: Sequence[tuple[str, tuple[int, ...]]],
) -> tuple[dict[str, Entry], list[str]]:
    """The torch.nn rules for tensors known by name and shape only (a state_dict file).

    The module kind of each ``prefix.leaf`` group is read from its leaves: ``in_proj_*`` is a
    MultiheadAttention, ``weight_ih_l0`` an RNN, ``running_mean`` a BatchNorm, a 1-D weight a
    norm, a rank >= 2 weight a Linear/Conv (its bias ``torch.default_bias``). Returns the
    entries (initializer and any axes, layout or zero rows) and warnings naming each guess the
    names cannot settle: a 2-D weight with no bias (Embedding or bias-free Linear), a GPT-2
    style ``Conv1D`` (in, out) weight, a lone 1-D weight (RMSNorm or PReLU).
    """
    shapes = dict(tensors)
    groups: dict[str, dict[str, tuple[int, ...]]] = {}
    for name, shape in tensors:
        prefix, _, leaf = name.rpartition(".")
        groups.setdefault(prefix, {})[leaf] = tuple(shape)
    out: dict[str, Entry] = {}
    linear_guess: list[str] = []
    embedding_guess: list[str] = []
    conv1d: list[str] = []
    lone_1d: list[str] = []
    for prefix, leaves in groups.items():
        p = functools.partial(_join, prefix)
        lower = prefix.lower()
        short = lower.rpartition(".")[2]
        if any(leaf in leaves for leaf in _MHA_WEIGHTS):
            for leaf in leaves:
                if leaf in _MHA_WEIGHTS:
                    out[p(leaf)] = {"initializer": XAVIER_UNIFORM}
                elif leaf in ("bias_k", "bias_v"):
                    out[p(leaf)] = {"initializer": XAVIER_NORMAL}
                elif leaf == "in_proj_bias":
                    out[p(leaf)] = {"initializer": "zeros"}
            if p("out_proj.bias") in shapes:
                out[p("out_proj.bias")] = {"initializer": "zeros"}
            continue
        rnn = [leaf for leaf in leaves if _RNN_LEAF.fullmatch(leaf)]
        if rnn:
            hidden = _rnn_hidden(leaves)
            for leaf in rnn:
                out[p(leaf)] = {"initializer": rnn_uniform(hidden)}
            continue
        weight = leaves.get("weight")
        for leaf, shape in leaves.items():
            name = p(leaf)
            if name in out:
                continue
            if leaf == "running_mean":
                out[name] = {"initializer": "zeros"}
            elif leaf == "running_var":
                out[name] = {"initializer": "ones"}
            elif leaf == "weight" and len(shape) == 1:
                if "prelu" in lower:
                    out[name] = {"initializer": {"name": "constant", "value": 0.25}}
                else:
                    out[name] = {"initializer": "ones"}
                    if "bias" not in leaves and not any(m in short for m in NORM_MARKERS):
                        lone_1d.append(name)
            elif leaf == "weight" and len(shape) >= 2:
                if short in CONV1D_NAMES and len(shape) == 2:
                    out[name] = {"initializer": CONV1D_INIT, "layout": "keras"}
                    conv1d.append(name)
                elif len(shape) == 2 and "bias" not in leaves:
                    if any(m in lower for m in EMBEDDING_MARKERS):
                        out[name] = {"initializer": EMBEDDING_INIT}
                        embedding_guess.append(name)
                    else:
                        out[name] = {"initializer": TORCH_DEFAULT_INIT}
                        linear_guess.append(name)
                elif "bilinear" in short and len(shape) == 3:
                    out[name] = {"initializer": TORCH_DEFAULT_INIT, "in_axis": 1, "out_axis": 0, "batch_axis": 2}
                else:
                    out[name] = {"initializer": TORCH_DEFAULT_INIT}
            elif leaf == "bias" and len(shape) == 1:
                if weight is not None and len(weight) >= 2:
                    if short in CONV1D_NAMES and len(weight) == 2:
                        out[name] = {"initializer": "zeros"}
                    else:
                        out[name] = {"initializer": default_bias(".weight")}  # its sibling
                else:
                    out[name] = {"initializer": "zeros"}  # a norm's bias (or a lone offset)
    for name, shape in tensors:
        if name not in out and len(shape) < 2:
            out[name] = {"initializer": "zeros"}  # a scalar or vector with no telling name
    notes = []
    if conv1d:
        notes.append(
            f"{_some(conv1d)}: 2-D weights named like transformers' Conv1D (GPT-2), stored "
            "(in, out): rule 'Conv1D' (N(0, 0.02), fans with layout keras); for the model's own "
            "init use --convention hf"
        )
    if linear_guess:
        notes.append(
            f"{_some(linear_guess)}: 2-D weights without a bias may be nn.Embedding (N(0, 1)) or "
            "nn.Linear(bias=False); rule 'Linear' (torch.kaiming_uniform, a=sqrt(5)) applied"
        )
    if embedding_guess:
        notes.append(
            f"{_some(embedding_guess)}: 2-D weights without a bias named like embeddings; rule "
            "'Embedding' (N(0, 1)) applied"
        )
    if lone_1d:
        notes.append(
            f"{_some(lone_1d)}: 1-D weights without a bias may be RMSNorm (ones) or PReLU (0.25); "
            "rule 'norm' (ones) applied"
        )
    return out, notes


def _rnn_hidden(leaves: Mapping[str, tuple[int, ...]]) -> int:
    """hidden_size from ``weight_hr_l0`` (LSTM with proj_size: (P, H)) or ``weight_hh*``
    ((G H, H))."""
    for leaf, shape in leaves.items():
        if leaf.startswith("weight_hr"):
            return int(shape[1])
    for leaf, shape in leaves.items():
        if leaf.startswith("weight_hh") and "weight_hr" not in "".join(leaves):
            return int(shape[1])
    return 0


def _some(names: Sequence[str], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" and {len(names) - most} more" if len(names) > most else "")
