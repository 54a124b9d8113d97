"""Initializers from what users paste: names, spec mappings, TF ``get_config()`` dicts and
Keras ``keras.initializers.serialize(...)`` dicts ({module, class_name, config,
registered_name}, keras/src/saving/serialization_lib.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from ...echo import elide, show_py
from .base import Initializer
from .registry import get
from .variance_scaling import VarianceScaling

#: Keras class names (``keras.initializers.serialize``) and their snake_case forms.
KERAS_CLASSES: dict[str, str] = {
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
}


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
        extra = set(obj) - {"module", "class_name", "config", "registered_name"}
        if extra:
            raise ValueError(f"unknown key(s) in a Keras initializer: {', '.join(elide(k) for k in sorted(extra))}")
        cls_name = obj["class_name"]
        if cls_name not in KERAS_CLASSES:
            raise ValueError(
                f"unknown Keras initializer class {show_py(cls_name)}; allowed: "
                f"{', '.join(sorted(KERAS_CLASSES))}"
            )
        config = dict(obj.get("config") or {})
        # Keras 3 adds input_axes/output_axes; they are fan axes, which the spec carries apart.
        for key in ("input_axes", "output_axes"):
            if config.get(key) is not None:
                raise ValueError(
                    f"Keras {key} are not taken from the initializer; set in_axis/out_axis on "
                    "the tensor instead"
                )
            config.pop(key, None)
        if isinstance(config.get("seed"), dict):
            raise ValueError("a Keras SeedGenerator seed cannot be reproduced; use an integer")
        return get(KERAS_CLASSES[cls_name], **config)
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
