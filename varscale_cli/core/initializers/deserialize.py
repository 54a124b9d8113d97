"""Initializers from what users paste: names, spec mappings, TF ``get_config()`` dicts and
Keras ``keras.initializers.serialize(...)`` dicts ({module, class_name, config,
registered_name}, keras/src/saving/serialization_lib.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ...echo import show_py
from .base import Initializer
from .registry import get
from .variance_scaling import VarianceScaling

#: Keras class names (``keras.initializers.serialize``) and the registry name each maps to.
_KERAS_CAMEL: dict[str, str] = {
    "VarianceScaling": "variance_scaling",
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeNormal": "he_normal",
    "HeUniform": "he_uniform",
    "LecunNormal": "lecun_normal",
    "LecunUniform": "lecun_uniform",
    "Zeros": "zeros",
    "Ones": "ones",
    "Constant": "constant",
    "RandomNormal": "random_normal",
    "TruncatedNormal": "truncated_normal",
    "RandomUniform": "random_uniform",
    "Orthogonal": "orthogonal",
}


def keras_snake_case(name: str) -> str:
    """keras.src.utils.naming.to_snake_case, which Keras 3.15 applies to every class to add its
    snake_case key to ``keras.src.initializers.ALL_OBJECTS_DICT``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


#: Every ``class_name`` Keras 3.15's ``initializers.deserialize`` resolves to one of these:
#: the class names, their snake_case forms (``variance_scaling``, ``glorot_uniform``...) and
#: its aliases ``normal``, ``uniform``, ``one``, ``zero`` (keras/src/initializers/__init__.py).
KERAS_CLASSES: dict[str, str] = {
    **_KERAS_CAMEL,
    **{keras_snake_case(k): v for k, v in _KERAS_CAMEL.items()},
    "normal": "random_normal",
    "uniform": "random_uniform",
    "one": "ones",
    "zero": "zeros",
    "OrthogonalInitializer": "orthogonal",  # Keras' alias of Orthogonal
}


def _keras_seed(seed: object) -> object:
    """A Keras config's seed: an int or None as is; a serialized ``SeedGenerator`` refused with
    what to write instead (it draws new values on every call, which no file can hold)."""
    if not isinstance(seed, Mapping):
        return seed
    inner = seed.get("config")
    value = inner.get("seed") if isinstance(inner, Mapping) else None
    if seed.get("class_name") == "SeedGenerator" and isinstance(value, int):
        raise ValueError(
            f"a Keras SeedGenerator seed (seed {value}) gives new values on every call, which a "
            f'file cannot reproduce; write "seed": {value} (the same values on every call) or '
            '"seed": null (varscale\'s seed decides)'
        )
    raise ValueError(
        f"a Keras seed must be an integer or null, got {seed!r}; write \"seed\": null or an "
        "integer"
    )


def _keras_form(obj: dict[str, object]) -> Initializer:
    """``{module, class_name, config, registered_name}`` as Keras 3.15 reads it."""
    extra = set(obj) - {"module", "class_name", "config", "registered_name"}
    if extra:
        raise ValueError(f"unknown key(s) in a Keras initializer: {', '.join(sorted(extra))}")
    cls_name = obj["class_name"]
    registered = obj.get("registered_name")
    if registered is not None and registered != cls_name:
        # serialize_keras_object sets registered_name only for register_keras_serializable
        # classes ("package>Name"); built-in initializers have None.
        raise ValueError(
            f"Keras initializer {show_py(cls_name)} is the custom registered class {show_py(registered)}, "
            "whose code varscale cannot run; if it samples as a built-in one, write that "
            'class_name with "registered_name": null (e.g. "class_name": "VarianceScaling")'
        )
    if not isinstance(cls_name, str) or cls_name not in KERAS_CLASSES:
        raise ValueError(
            f"unknown Keras initializer class {show_py(cls_name)}; allowed: "
            f"{', '.join(sorted(_KERAS_CAMEL))} (or their snake_case names)"
        )
    raw = obj.get("config") or {}
    if not isinstance(raw, Mapping):
        raise ValueError(f"a Keras initializer's config is a mapping, got {show_py(raw)}")
    config = dict(raw)
    if "seed" in config:
        config["seed"] = _keras_seed(config["seed"])
    name = KERAS_CLASSES[cls_name]
    if "input_axes" in config or "output_axes" in config:
        # Keras 3 gives every VarianceScaling (and preset) both keys, None by default; only
        # those classes take them, so null ones are dropped for the others.
        for key in ("input_axes", "output_axes"):
            if config.get(key) is None:
                config.pop(key, None)
    return get(name, **config)


def deserialize(obj: object) -> Initializer:
    """An initializer from any of the accepted forms.

    * a name: ``"he_normal"``, ``"kaiming_uniform"``, ``"zeros"``...
    * a mapping with ``name`` and parameters: ``{"name": "variance_scaling", "scale": 2.0}``
      (the contrib form is ``{"name": "variance_scaling_initializer", "factor": 1.0, ...}``);
    * a TF ``get_config()`` dict: keys among scale/mode/distribution/seed/dtype, no name;
    * a Keras ``keras.initializers.serialize(...)`` dict: ``{module, class_name, config,
      registered_name}``.
    """
    if isinstance(obj, Initializer):
        return obj
    if isinstance(obj, str):
        return get(obj)
    if not isinstance(obj, Mapping):
        raise ValueError(f"an initializer is a name or a mapping, got {show_py(obj)}")
    obj = dict(obj)
    if "class_name" in obj:
        return _keras_form(obj)
    if "name" in obj:
        name = obj.pop("name")
        if not isinstance(name, str):
            raise ValueError(f"initializer name must be a string, got {show_py(name)}")
        return get(name, **obj)
    if set(obj) <= {"scale", "mode", "distribution", "seed", "dtype", "corrected"}:
        return VarianceScaling(**obj)  # a TF get_config() dict
    raise ValueError(
        f"cannot tell which initializer {show_py(obj)} is: give it a `name`, or paste a TF "
        "get_config() or Keras serialize() dict"
    )
