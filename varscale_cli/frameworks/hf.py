"""Specs in Hugging Face's own convention: what ``Model(config)`` initializes, from a
``config.json`` and the tensor names of a checkpoint.

transformers 5.x initializes a fresh model in ``PreTrainedModel._init_weights``
(``transformers/modeling_utils.py``), after torch's own ``reset_parameters`` ran, so
``_init_weights`` decides every tensor:

* ``nn.Linear`` and ``nn.Embedding`` weights N(0, std), std = ``config.initializer_range``
  (else ``init_std``, else ``initializer_factor``, else 0.02); biases 0;
* an Embedding's ``padding_idx`` row (``pad_token_id``) 0;
* LayerNorm / RMSNorm (any class whose name holds ``LayerNorm`` or ``RMSNorm``), GroupNorm and
  BatchNorm weights 1, biases 0.

Families on top of that (5.24 sources, one `Family` row each):

* Llama, Mistral, Qwen2 (``models/llama/modeling_llama.py``, ``mistral``, ``qwen2``): no
  override; ``embed_tokens`` has ``padding_idx = pad_token_id`` (default None).
* GPT-2 (``models/gpt2/modeling_gpt2.py`` ``GPT2PreTrainedModel._init_weights``): ``Conv1D``
  weights N(0, std) stored (in, out), then every ``c_proj.weight`` N(0, std / sqrt(2 n_layer));
  ``wte``/``wpe`` have no padding row.
* BERT (``models/bert/modeling_bert.py``): the generic rules; ``word_embeddings`` has
  ``padding_idx = pad_token_id`` (default 0), ``cls.predictions.bias`` 0.

Any other ``model_type`` gets the generic rule and a warning that says so. Tied targets
(``lm_head.weight`` with ``tie_word_embeddings``) are not in a saved checkpoint
(``save_pretrained`` drops aliases); when a file holds one anyway it becomes a partition of its
source, so both hold the same values.
"""

from __future__ import annotations

import copy
import fnmatch
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.dtypes import SAMPLED
from ..errors import SpecError
from .document import spec_document
from .rules import LayoutRules

CONFIG_FILE = "config.json"
#: The single-file weights ``from_pretrained`` loads (transformers ``SAFE_WEIGHTS_NAME``).
SINGLE_FILE = "model.safetensors"


@dataclass(frozen=True)
class Family:
    """The HF init rules of one model family, beyond the generic ones.

    Attributes:
        name: what the derived spec's notes call it.
        model_types: the ``config.json`` ``model_type`` values it covers.
        norms: globs of the norm scales (ones); every ``*.bias`` is zeros in every family.
        embeddings: globs of the token embeddings built with ``padding_idx = pad_token_id``.
        pad_default: ``pad_token_id`` when the config does not set it (the config class's
            default).
        residual: globs of the weights N(0, std / sqrt(2 n_layer)) (GPT-2's ``c_proj``).
        in_out: globs of 2-D weights stored (in, out) (transformers' ``Conv1D``): layout keras.
        ties: tied target -> source (``_tied_weights_keys``), for ``tie_word_embeddings``.
        tie_default: ``tie_word_embeddings`` when the config does not set it.
        leave_out: globs of non-persistent buffers old checkpoints may still hold (5.24 ignores
            them on load).
        source: where the rules come from.
    """

    name: str
    model_types: tuple[str, ...]
    norms: tuple[str, ...]
    embeddings: tuple[str, ...] = ()
    pad_default: int | None = None
    residual: tuple[str, ...] = ()
    in_out: tuple[str, ...] = ()
    ties: tuple[tuple[str, str], ...] = ()
    tie_default: bool = False
    leave_out: tuple[str, ...] = ()
    source: str = "transformers PreTrainedModel._init_weights"


LLAMA = Family(
    "Llama family",
    ("llama", "mistral", "qwen2"),
    norms=("*norm.weight",),
    embeddings=("*embed_tokens.weight",),
    ties=(("lm_head.weight", "model.embed_tokens.weight"),),
    source="transformers models/llama, mistral, qwen2: no _init_weights override",
)
GPT2 = Family(
    "GPT-2",
    ("gpt2",),
    norms=("*ln_?.weight", "*ln_f.weight"),
    residual=("*c_proj.weight",),
    in_out=("*.c_attn.weight", "*.c_proj.weight", "*.c_fc.weight", "*.q_attn.weight"),
    ties=(("lm_head.weight", "transformer.wte.weight"),),
    tie_default=True,
    leave_out=("*attn.bias", "*attn.masked_bias", "*crossattention.bias", "*crossattention.masked_bias"),
    source="transformers models/gpt2/modeling_gpt2.py GPT2PreTrainedModel._init_weights",
)
BERT = Family(
    "BERT",
    ("bert",),
    norms=("*LayerNorm.weight",),
    embeddings=("*word_embeddings.weight",),
    pad_default=0,
    ties=(
        ("cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"),
        ("cls.predictions.decoder.bias", "cls.predictions.bias"),
    ),
    tie_default=True,
    source="transformers models/bert/modeling_bert.py BertPreTrainedModel._init_weights",
)
GENERIC = Family(
    "generic",
    (),
    norms=("*norm*.weight", "*Norm*.weight", "*ln_*.weight", "*ln_f.weight"),
    embeddings=("*embed_tokens.weight", "*word_embeddings.weight"),
    source="transformers PreTrainedModel._init_weights",
)
FAMILIES = (LLAMA, GPT2, BERT)


def family_for(model_type: str | None) -> Family | None:
    """The family covering ``model_type``, or None (the generic rule applies)."""
    return next((f for f in FAMILIES if model_type in f.model_types), None)


def init_std(config: Mapping[str, Any]) -> float:
    """The std ``_init_weights`` uses: ``initializer_range``, else ``init_std`` (BART), else
    ``initializer_factor``, else 0.02 (every covered config class defaults it to 0.02)."""
    for key in ("initializer_range", "init_std", "initializer_factor"):
        value = config.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
    return 0.02


def _matches(name: str, globs: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


def spec_from_hf_config(
    config: Mapping[str, Any],
    tensors: Sequence[tuple[str, tuple[int, ...], str]],
    *,
    seed: int = 0,
) -> tuple[dict[str, Any], list[str], list[str], dict[str, str]]:
    """A spec in HF's convention for a checkpoint's tensors.

    Args:
        config: the parsed ``config.json``.
        tensors: ``(name, shape, dtype name)`` of the checkpoint, in file order.
        seed: the spec's ``seed``.

    Returns:
        ``(doc, notes, warnings, skipped)``: the spec document (with ``hf_config``, visible
        ``rules`` and per-tensor entries only where a rule would be wrong), the lines that say
        which convention and config values it follows, warnings (a model type without rules,
        a pad row out of range), and the tensors left out (name -> why).
    """
    model_type = config.get("model_type")
    family = family_for(model_type if isinstance(model_type, str) else None)
    warnings: list[str] = []
    if family is None:
        warnings.append(
            f"model_type {model_type!r} has no family rules in varscale; the generic HF rule "
            "applies (Linear/Embedding N(0, initializer_range), biases 0, norms 1): check the "
            "model's own _init_weights"
        )
        family = GENERIC
    std = init_std(config)
    normal = {"name": "random_normal", "mean": 0.0, "stddev": std}
    rules: list[dict[str, Any]] = [
        {"match": "*.bias", "initializer": "zeros"},
        *({"match": g, "initializer": "ones"} for g in family.norms),
    ]
    notes = [
        f"HF convention ({family.source}), model_type {model_type}, initializer_range {std:g}:",
        f"  every Linear/Embedding weight N(0, {std:g}) (defaults); biases zeros; norm weights ones",
    ]
    n_layer = config.get("n_layer", config.get("num_hidden_layers", 12))
    if family.residual:
        depth = 2 * int(n_layer)
        rules += [
            {"match": g, "initializer": {**normal, "residual_layers": depth}} for g in family.residual
        ]
        notes.append(
            f"  {', '.join(family.residual)}: N(0, {std:g} / sqrt(2 * n_layer {n_layer})) "
            f"(residual_layers {depth})"
        )
    if family.in_out:
        rules += [{"match": g, "layout": "keras"} for g in family.in_out]
        notes.append(f"  {', '.join(family.in_out)}: Conv1D weights stored (in, out): layout keras")
    pad = config.get("pad_token_id", family.pad_default)
    tie = config.get("tie_word_embeddings", family.tie_default)

    entries: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    dtypes = []
    for name, shape, dtype in tensors:
        if _matches(name, family.leave_out) and len(shape) != 1:
            skipped[name] = f"{dtype}; a buffer transformers does not load"
            continue
        if dtype not in SAMPLED:
            skipped[name] = f"{dtype}; varscale produces floats only"
            continue
        entry: dict[str, Any] = {"shape": list(shape)}
        if len(shape) == 1 and not _matches(name, ["*.bias", *family.norms]):
            entry["initializer"] = copy.deepcopy(normal)  # a custom 1-D parameter: say so
            warnings.append(f"{name}: a 1-D tensor no rule covers; N(0, {std:g}) as the default")
        if pad is not None and _matches(name, family.embeddings) and len(shape) == 2:
            if isinstance(pad, int) and not isinstance(pad, bool) and -shape[0] <= pad < shape[0]:
                entry["zero_rows"] = [pad % shape[0]]
                notes.append(f"  pad_token_id {pad}: row {pad % shape[0]} of {name} zeroed")
            else:
                warnings.append(f"pad_token_id {pad!r} is not a row of {name} {list(shape)}; no row zeroed")
        entries[name] = entry
        dtypes.append(dtype)
    if tie:
        for target, source in family.ties:
            if target in entries and source in entries:
                src = entries[source]
                entries[target] = {
                    **{k: copy.deepcopy(v) for k, v in src.items() if k != "shape"},
                    "shape": list(entries[target]["shape"]),
                    "partition": {
                        "of": source, "full_shape": list(src["shape"]), "offset": [0] * len(src["shape"]),
                    },
                }
                notes.append(f"  tie_word_embeddings: {target} holds the values of {source}")
    if not entries:
        raise ValueError("the checkpoint has no float tensors; varscale only produces floats")
    used = [r for r in rules if any(fnmatch.fnmatchcase(n, r["match"]) for n in entries)]
    doc = spec_document(LayoutRules("torch", normal, ()), seed, entries, dtypes, used)
    doc["hf_config"] = dict(config)
    return doc, notes, warnings, skipped


def read_config(folder: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of an HF folder."""
    path = Path(folder) / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ValueError(f"{path} is not JSON: {e}") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a JSON object")
    return config


def is_hf_folder(path: Path) -> bool:
    """A folder holding ``config.json`` (and weights: the reader checks those)."""
    return Path(path).is_dir() and (Path(path) / CONFIG_FILE).is_file()


def weights_path(output: Path, *, force: bool) -> Path:
    """Where `varscale generate` writes the weights of a spec with ``hf_config``: a folder (an
    existing one, or a path without a suffix) gets ``model.safetensors`` inside, the name
    ``from_pretrained`` looks for (the folder is created); a file path stays as it is.
    ``config.json`` goes beside it, so an existing one must be replaceable (``force``).

    Raises:
        SpecError: a ``config.json`` is there and ``force`` is not set.
    """
    output = Path(output)
    folder = output.is_dir() or not output.suffix
    target = (output if folder else output.parent) / CONFIG_FILE
    if target.exists() and not force:
        raise SpecError(f"'{target}' exists; pass --force to replace it")
    if folder:
        output.mkdir(parents=True, exist_ok=True)
        output = output / SINGLE_FILE
    return output


def write_config(config: Mapping[str, Any], folder: Path) -> Path:
    """Write ``config.json`` into ``folder`` as ``save_pretrained`` does (sorted keys,
    indent 2)."""
    path = Path(folder) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
