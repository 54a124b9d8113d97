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
* `dump_spec`: the YAML text of such a document.

Neither torch nor keras is imported by this module: `spec_from_state_dict` only needs objects
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

import copy
import fnmatch
import math
import posixpath
import re
import warnings
from collections.abc import Mapping
from typing import Any

import yaml

from .core.dtypes import SAMPLED_ALIASES as DTYPE_ALIASES
from .core.initializers import deserialize

__all__ = [
    "dump_spec", "skipped_tensors", "spec_from_keras", "spec_from_state_dict", "spec_from_tensors",
]

#: The dtypes varscale can produce (complex needs an initializer that makes it; none does).
FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")

#: PyTorch's default for ``nn.Linear`` and ``nn.ConvNd`` weights:
#: ``kaiming_uniform_(w, a=math.sqrt(5))``, i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
TORCH_DEFAULT_INIT: dict[str, Any] = {"name": "torch.kaiming_uniform", "a": math.sqrt(5)}

#: 1-D weights with these names are normalization scales (LayerNorm, BatchNorm, GroupNorm,
#: RMSNorm, ...): ones.
NORM_PATTERNS = (
    "*norm*.weight",
    "*ln*.weight",
    "*bn*.weight",
    "*layernorm*",
    "*layer_norm*",
)

#: 2-D tensors whose names contain one of these are embedding tables: N(0, 1), as
#: ``nn.Embedding`` (GPT-2's ``wte``/``wpe`` included).
EMBEDDING_MARKERS = ("emb", "wte", "wpe")


# --- PyTorch ------------------------------------------------------------------------------------


def _dtype_name(dtype: Any) -> str:
    """``torch.float32`` / ``np.dtype('float32')`` / ``ml_dtypes.bfloat16`` -> ``float32``..."""
    name = getattr(dtype, "name", None)  # numpy and ml_dtypes dtypes
    if not isinstance(name, str):
        name = str(dtype)
    return name.removeprefix("torch.")


def _canonical(dtype: str) -> str:
    canonical = DTYPE_ALIASES.get(dtype) if isinstance(dtype, str) else None
    if canonical is None:
        raise ValueError(f"dtype {dtype!r} cannot be produced; allowed: {', '.join(FLOAT_DTYPES)}")
    return canonical


def skipped_tensors(state_dict: Mapping[str, Any]) -> dict[str, str]:
    """The tensors `spec_from_state_dict` leaves out, name -> dtype: those not float16,
    bfloat16, float32 or float64 (integer buffers such as ``num_batches_tracked``, bool masks,
    float8 and complex tensors)."""
    out = {}
    for name, tensor in state_dict.items():
        dtype = _dtype_name(tensor.dtype)
        if dtype not in FLOAT_DTYPES:
            out[name] = dtype
    return out


def _torch_initializer(name: str, shape: tuple[int, ...]) -> Any:
    """The initializer for one float tensor of a state_dict; None means the default
    (`TORCH_DEFAULT_INIT`)."""
    leaf = name.rsplit(".", 1)[-1]
    lower = name.lower()
    rank = len(shape)
    if leaf == "running_mean":
        return "zeros"
    if leaf == "running_var":
        return "ones"
    if rank == 1 and lower.endswith("bias"):
        return "zeros"  # Linear/Conv/norm biases (PyTorch's own Linear bias is U(+-1/sqrt(fan_in)))
    if rank == 1 and (
        any(fnmatch.fnmatchcase(lower, p) for p in NORM_PATTERNS) or lower.endswith("weight")
    ):
        return "ones"  # every 1-D `weight` in torch.nn is a normalization scale (but PReLU's)
    if rank == 2 and any(m in lower for m in EMBEDDING_MARKERS):
        return {"name": "random_normal", "mean": 0.0, "stddev": 1.0}
    if rank < 2:
        return "zeros"  # PyTorch's fans need 2 dimensions; a lone scalar/vector is an offset
    return None


def _storage_key(tensor: Any) -> tuple | None:
    """Identifies torch tensors that are the same memory (tied weights); None for anything else.

    The storage is told by its StorageImpl (``_cdata``), which also tells meta-device storages
    apart (their data pointers are all 0); without it, by a non-zero data pointer."""
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
    state_dict: Mapping[str, Any], *, seed: int = 0, dtype: str | None = None
) -> dict:
    """A spec document (the dict form of the YAML) for a PyTorch ``state_dict()``.

    Args:
        state_dict: name -> tensor; anything with ``.shape`` and ``.dtype`` works (torch tensors,
            numpy arrays). Order is kept.
        seed: The spec's ``seed``.
        dtype: Every tensor's dtype (``float32``, ``bfloat16``, ``float16``, ``float64`` or an
            alias); by default each tensor keeps its own.

    Returns:
        ``{version: 1, seed, defaults: {dtype?, layout: torch, initializer:
        torch.kaiming_uniform(a=sqrt(5))}, tensors: {name: {shape, ...}}}``. Rules, in order:

        * non-float tensors are left out (see `skipped_tensors` and the module docstring);
        * ``*running_mean`` zeros, ``*running_var`` ones (BatchNorm buffers);
        * 1-D ``*bias`` zeros;
        * 1-D normalization weights (`NORM_PATTERNS`, and any other 1-D ``*weight``) ones;
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
    override = _canonical(dtype) if dtype is not None else None
    tensors: dict[str, dict[str, Any]] = {}
    dtypes: dict[str, str] = {}
    first_of: dict[tuple, str] = {}
    for name, tensor in state_dict.items():
        if not isinstance(name, str):
            raise ValueError(f"state_dict keys must be strings, got {name!r}")
        own = _dtype_name(tensor.dtype)
        if own not in FLOAT_DTYPES:
            continue
        shape = [int(d) for d in tensor.shape]
        entry: dict[str, Any] = {"shape": shape}
        init = _torch_initializer(name, tuple(shape))
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
        dtypes[name] = override or own
    if not tensors:
        raise ValueError("the state_dict has no float tensors; varscale only produces floats")
    defaults: dict[str, Any] = {}
    if len(set(dtypes.values())) == 1:
        defaults["dtype"] = next(iter(dtypes.values()))
    else:
        for name, entry in tensors.items():
            entry["dtype"] = dtypes[name]
    defaults["layout"] = "torch"
    defaults["initializer"] = dict(TORCH_DEFAULT_INIT)
    return {"version": 1, "seed": seed, "defaults": defaults, "tensors": tensors}


# --- Keras 3 ------------------------------------------------------------------------------------

#: Fallbacks by variable name when a layer has no usable ``<name>_initializer``.
_KERAS_FALLBACK = {
    "gamma": "ones",
    "moving_variance": "ones",
    "beta": "zeros",
    "moving_mean": "zeros",
    "bias": "zeros",
}


class _Recorder(dict):
    """Stands in for saving_lib's H5IOStore entry: ``save_own_variables`` fills it."""


def _snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case: how a container names its saveables."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _unique_name(name: str, used: dict[str, int]) -> str:
    """saving_lib._get_unique_name: ``dense``, ``dense_1``, ``dense_2``..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _keras_fallback(var_name: str | None, rank: int) -> str:
    if var_name in _KERAS_FALLBACK:
        return _KERAS_FALLBACK[var_name]
    return "glorot_uniform" if rank >= 2 else "zeros"


def _keras_initializer(
    keras: Any, layer: Any, value: Any, path: str, rank: int, fallbacks: list[str]
) -> tuple[Any, dict[str, Any]]:
    """(initializer for the spec, extra tensor keys): the layer's own ``<var>_initializer`` as
    ``keras.initializers.serialize`` gives it when varscale reads it, else a fallback."""
    var_name = getattr(value, "name", None) if isinstance(value, keras.Variable) else None
    init = getattr(layer, f"{var_name}_initializer", None) if var_name else None
    if init is None:
        return _keras_fallback(var_name, rank), {}
    try:
        raw = keras.initializers.serialize(init)
    except Exception:  # noqa: BLE001 - a custom callable Keras cannot serialize
        raw = None
    extra: dict[str, Any] = {}
    if isinstance(raw, dict):
        raw = copy.deepcopy(raw)
        config = raw.get("config")
        if isinstance(config, dict):
            # A SeedGenerator seed cannot be reproduced, and varscale's own seed decides the
            # values anyway; Keras fan axes are the spec's in_axis/out_axis.
            if config.get("seed") is not None and not isinstance(config["seed"], int):
                config.pop("seed")
            for key, spec_key in (("input_axes", "in_axis"), ("output_axes", "out_axis")):
                axes = config.pop(key, None)
                if axes is not None:
                    extra[spec_key] = list(axes) if isinstance(axes, list | tuple) else axes
        try:
            deserialize(copy.deepcopy(raw))
        except (ValueError, TypeError):
            raw = None
    if raw is None:
        fallback = _keras_fallback(var_name, rank)
        fallbacks.append(f"{path} ({type(init).__name__} -> {fallback})")
        return fallback, {}
    return raw, extra


def spec_from_keras(model: Any, *, seed: int = 0, dtype: str | None = None) -> dict:
    """A spec whose tensors are what ``model.save_weights("x.weights.h5")`` writes.

    The model is walked as keras' ``saving_lib._save_state`` walks it: the model's own
    variables under ``vars/``, the layers of a Sequential/Functional model under
    ``layers/<snake_case class name>[_<k>]/``, other saveable attributes (e.g. the sublayers
    of ``MultiHeadAttention``) under their attribute names, each saveable once; each
    saveable's ``save_own_variables`` decides its datasets ``vars/0``, ``vars/1``, ...
    Tensor names are those HDF5 paths (``layers/dense/vars/0``), with ``layout: keras``, each
    variable's shape and dtype, and the layer's own ``<variable>_initializer`` (e.g.
    ``kernel_initializer``, ``gamma_initializer``, ``embeddings_initializer``) as
    ``keras.initializers.serialize`` gives it. Where a layer has none, kernels get
    ``glorot_uniform``; ``gamma`` and ``moving_variance`` ones; ``beta``, ``moving_mean``,
    ``bias`` and other vectors zeros. An initializer varscale cannot reproduce (e.g.
    ``Orthogonal``) falls back the same way, with a warning.

    The optimizer's state (``optimizer/vars/...`` of a compiled model) is not model weights and
    is left out: a fresh optimizer keeps its own (Keras warns that it skips it on load).

    Args:
        model: A built Keras 3 model (or layer).
        seed: The spec's ``seed``.
        dtype: Every tensor's dtype; by default each variable's own (a ``bfloat16`` dtype
            policy gives bfloat16 tensors, stored the Keras way).

    Raises:
        ValueError: the model is not built, has a non-float variable (varscale only produces
            floats, and a layer refuses a file that lacks one of its variables), or has no
            variables.
    """
    import keras

    try:  # saving_lib's own child walk, with its per-type attribute skip lists
        from keras.src.saving.keras_saveable import KerasSaveable
        from keras.src.saving.saving_lib import _walk_saveable
    except ImportError as e:  # pragma: no cover - a Keras without the 3.x saving_lib
        raise ValueError(
            f"Keras {keras.__version__} has no keras.src.saving.saving_lib._walk_saveable; "
            "spec_from_keras needs Keras 3"
        ) from e

    if not getattr(model, "built", True):
        raise ValueError("the model is not built; build it (or call it on data) first")
    override = _canonical(dtype) if dtype is not None else None
    tensors: dict[str, dict[str, Any]] = {}
    bad: list[str] = []
    fallbacks: list[str] = []
    visited: set[int] = set()

    def save_state(saveable: Any, inner_path: str) -> None:
        if id(saveable) in visited:
            return
        if saveable._obj_type() == "Optimizer":
            visited.add(id(saveable))
            return
        if hasattr(saveable, "save_own_variables"):
            store = _Recorder()
            saveable.save_own_variables(store)
            group = posixpath.join(inner_path, "vars")
            for key, value in store.items():
                path = f"{group}/{key}"
                own = keras.backend.standardize_dtype(value.dtype)
                if own not in FLOAT_DTYPES:
                    bad.append(f"{path} ({own})")
                    continue
                shape = [int(d) for d in value.shape]
                init, extra = _keras_initializer(
                    keras, saveable, value, path, len(shape), fallbacks
                )
                tensors[path] = {
                    "shape": shape,
                    "dtype": override or own,
                    **extra,
                    "initializer": init,
                }
        visited.add(id(saveable))
        for attr, child in _walk_saveable(saveable):
            child_path = posixpath.join(inner_path, attr)
            if isinstance(child, KerasSaveable):
                save_state(child, child_path)
            elif isinstance(child, list | dict | tuple):
                save_container(child, child_path, set())

    def save_container(container: Any, inner_path: str, seen: set[int]) -> None:
        if id(container) in seen:
            return
        seen.add(id(container))
        used: dict[str, int] = {}
        items = list(container.values()) if isinstance(container, dict) else container
        for item in items:
            if isinstance(item, KerasSaveable):
                name = _unique_name(_snake_case(item.__class__.__name__), used)
                save_state(item, posixpath.join(inner_path, name))
            elif isinstance(item, list | dict | tuple):
                name = _unique_name("container", used)
                save_container(item, posixpath.join(inner_path, name), seen)

    save_state(model, "")
    if bad:
        raise ValueError(
            "varscale only produces float16, bfloat16, float32 and float64, and Keras refuses a "
            f"file without all of a layer's variables; non-float variables: {', '.join(bad)}"
        )
    if not tensors:
        raise ValueError("the model has no variables to save")
    if fallbacks:
        warnings.warn(
            "varscale cannot reproduce these layers' initializers and uses its fallback: "
            + ", ".join(fallbacks),
            stacklevel=2,
        )
    defaults = {"layout": "keras"}
    dtypes = {e["dtype"] for e in tensors.values()}
    if len(dtypes) == 1:
        defaults = {"dtype": dtypes.pop(), **defaults}
        for entry in tensors.values():
            del entry["dtype"]
    return {"version": 1, "seed": seed, "defaults": defaults, "tensors": tensors}


# --- YAML ---------------------------------------------------------------------------------------


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list | tuple):
        return 1 + max(map(_depth, value), default=0)
    return 0


class _Dumper(yaml.SafeDumper):
    """safe_dump, with mappings of depth <= 2 (a tensor entry, an initializer) and lists of
    scalars (shapes) on one line each."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=_depth(data) <= 2)


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_depth(data) <= 1)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


# --- any weight file ----------------------------------------------------------------------------

#: Keras' ``Embedding`` default (``"uniform"``): RandomUniform(-0.05, 0.05).
KERAS_EMBEDDING_INIT: dict[str, Any] = {"name": "random_uniform", "minval": -0.05, "maxval": 0.05}

#: The visible rules of a spec made from a file, per layout, first match wins. Per-tensor
#: initializers are added only where a rule (or the default) would be wrong for that tensor
#: (a rule matches names, not ranks).
FILE_RULES: dict[str, list[tuple[str, Any]]] = {
    "torch": [
        ("*running_mean", "zeros"),
        ("*running_var", "ones"),
        ("*bias", "zeros"),
        *((p, "ones") for p in NORM_PATTERNS),
        *((f"*{m}*", {"name": "random_normal", "mean": 0.0, "stddev": 1.0}) for m in EMBEDDING_MARKERS),
    ],
    "keras": [
        ("*moving_mean", "zeros"),
        ("*moving_variance", "ones"),
        ("*bias", "zeros"),
        ("*beta", "zeros"),
        ("*gamma", "ones"),
        ("*emb*", KERAS_EMBEDDING_INIT),
    ],
}
FILE_DEFAULTS = {"torch": TORCH_DEFAULT_INIT, "keras": "glorot_uniform"}


def _keras_file_initializer(name: str, shape: tuple[int, ...]) -> Any:
    """Keras' layer defaults by variable name: kernels glorot_uniform, biases and betas zeros,
    gammas and moving variances ones, embeddings RandomUniform(+-0.05)."""
    lower = name.lower()
    leaf = lower.rsplit("/", 1)[-1]
    for key, init in _KERAS_FALLBACK.items():
        if leaf == key or lower.endswith(key):
            return init
    if len(shape) == 2 and "emb" in lower:
        return dict(KERAS_EMBEDDING_INIT)
    if len(shape) < 2:
        return "zeros"  # a vector with no telling name: an offset, not a kernel
    return None


def spec_from_tensors(
    tensors: list[tuple[str, tuple[int, ...], str]], *, layout: str = "torch", seed: int = 0
) -> tuple[dict, dict[str, str]]:
    """A spec for tensors read from any weight file: ``(name, shape, dtype name)`` triples.

    The rules (`FILE_RULES`) appear in the spec, so a user edits one line to change every
    bias; a tensor the rules would get wrong carries its own initializer. Returns the document
    and the tensors left out (non-float dtypes: name -> dtype).
    """
    if layout not in FILE_RULES:
        raise ValueError(f"layout {layout!r} is not one of 'keras', 'torch'")
    want_of = _torch_initializer if layout == "torch" else _keras_file_initializer
    default = FILE_DEFAULTS[layout]
    rules = FILE_RULES[layout]
    skipped: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    used_rules: set[int] = set()
    dtypes = []
    for name, shape, dtype in tensors:
        if dtype not in FLOAT_DTYPES:
            skipped[name] = dtype
            continue
        want = want_of(name, tuple(shape))
        want = default if want is None else want
        ruled = next((i for i, (glob, _) in enumerate(rules) if fnmatch.fnmatchcase(name, glob)), None)
        got = default if ruled is None else rules[ruled][1]
        entry: dict[str, Any] = {"shape": list(shape)}
        if ruled is not None:
            used_rules.add(ruled)
        if got != want:
            entry["initializer"] = copy.deepcopy(want)
        entries[name] = entry
        dtypes.append(dtype)
    if not entries:
        raise ValueError("the file has no float tensors; varscale only produces floats")
    defaults: dict[str, Any] = {"layout": layout, "initializer": copy.deepcopy(default)}
    if len(set(dtypes)) == 1:
        defaults = {"dtype": dtypes[0], **defaults}
    else:
        for entry, dtype in zip(entries.values(), dtypes, strict=True):
            entry["dtype"] = dtype
    doc: dict[str, Any] = {"version": 1, "seed": seed, "defaults": defaults}
    kept = [{"match": g, "initializer": copy.deepcopy(i)} for k, (g, i) in enumerate(rules) if k in used_rules]
    if kept:
        doc["rules"] = kept
    doc["tensors"] = entries
    return doc, skipped


def dump_spec(doc: dict) -> str:
    """The YAML text of a spec document: ``yaml.safe_dump`` (PyYAML's safe representer) with
    ``sort_keys=False``, so tensors keep their order; each tensor entry and each initializer on
    one line where it fits. PyYAML quotes names YAML 1.1 would read as something else (``yes``,
    ``12:30``, ``2020-01-01``) and writes floats so they read back as floats, so
    `varscale_cli.spec.parse_spec` reads the same document back."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
