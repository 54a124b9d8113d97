"""`spec_from_keras`: a spec whose tensors are what Keras 3's ``save_weights`` writes (see the
package docstring). keras is imported only when `spec_from_keras` is called."""

from __future__ import annotations

import copy
import posixpath
import warnings
from types import ModuleType
from typing import Any

from ..core.dtypes import SAMPLED
from ..core.initializers import deserialize
from ..core.initializers.deserialize import keras_snake_case
from .rules import KERAS, InitializerConfig, produced_dtypes, requested_dtype


class _Recorder(dict[str, Any]):
    """Stands in for saving_lib's H5IOStore entry: ``save_own_variables`` fills it."""


def _unique_name(name: str, used: dict[str, int]) -> str:
    """saving_lib._get_unique_name: ``dense``, ``dense_1``, ``dense_2``..."""
    if name in used:
        used[name] += 1
        return f"{name}_{used[name]}"
    used[name] = 0
    return name


def _keras_initializer(
    keras: ModuleType, layer: Any, value: Any, path: str, rank: int, fallbacks: list[str]
) -> InitializerConfig:
    """The initializer for the spec: the layer's own ``<var>_initializer`` as
    ``keras.initializers.serialize`` gives it when varscale reads it, else the fallback the
    Keras rules give the variable's name (`LayoutRules.variable_default`)."""
    var_name = getattr(value, "name", None) if isinstance(value, keras.Variable) else None
    init = getattr(layer, f"{var_name}_initializer", None) if var_name else None
    if init is None:
        return KERAS.variable_default(var_name, rank)
    try:
        raw = keras.initializers.serialize(init)
    except Exception:  # noqa: BLE001 - a custom callable Keras cannot serialize
        raw = None
    if isinstance(raw, dict):
        raw = copy.deepcopy(raw)
        config = raw.get("config")
        if isinstance(config, dict):
            # A SeedGenerator seed cannot be reproduced, and varscale's own seed decides the
            # values anyway. Keras fan axes (input_axes/output_axes, set e.g. by EinsumDense)
            # stay in the config: both set means no receptive field, which the spec's
            # in_axis/out_axis (JAX's meaning) cannot say.
            if config.get("seed") is not None and not isinstance(config["seed"], int):
                config.pop("seed")
        try:
            deserialize(copy.deepcopy(raw))
        except (ValueError, TypeError):
            raw = None
    if raw is None:
        fallback = KERAS.variable_default(var_name, rank)
        fallbacks.append(f"{path} ({type(init).__name__} -> {fallback})")
        return fallback
    return raw
def spec_from_keras(model: Any, *, seed: int = 0, dtype: str | None = None) -> dict[str, Any]:
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
    override = requested_dtype(dtype) if dtype is not None else None
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
                if own not in SAMPLED:
                    bad.append(f"{path} ({own})")
                    continue
                shape = [int(d) for d in value.shape]
                init = _keras_initializer(
                    keras, saveable, value, path, len(shape), fallbacks
                )
                tensors[path] = {
                    "shape": shape,
                    "dtype": override or own,
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
                name = _unique_name(keras_snake_case(item.__class__.__name__), used)
                save_state(item, posixpath.join(inner_path, name))
            elif isinstance(item, list | dict | tuple):
                name = _unique_name("container", used)
                save_container(item, posixpath.join(inner_path, name), seen)

    save_state(model, "")
    if bad:
        raise ValueError(
            f"varscale only produces {produced_dtypes()}, and Keras refuses a "
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
    defaults = {"layout": KERAS.layout}
    dtypes = {e["dtype"] for e in tensors.values()}
    if len(dtypes) == 1:
        defaults = {"dtype": dtypes.pop(), **defaults}
        for entry in tensors.values():
            del entry["dtype"]
    return {"version": 1, "seed": seed, "defaults": defaults, "tensors": tensors}
