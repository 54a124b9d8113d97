"""Keras ``.weights.h5`` files known by their dataset paths only: which variable is ``vars/N``.

``model.save_weights`` writes each layer's variables as ``<path>/vars/<i>`` with no names
(``keras/src/saving/saving_lib.py`` ``_save_state``; ``Layer.save_own_variables``), where
``<path>`` ends in the snake_case class name plus ``_<k>`` (``layers/batch_normalization_1``)
or, inside a layer, the attribute name (``multi_head_attention/query_dense``, ``lstm/cell``).
The index follows the layer's creation order, trainable variables first
(``keras/src/layers/``): `LAYER_VARIABLES` lists it per layer, and `VARIABLE_INIT` the
constructor default of each variable. Without those, every 1-D variable looked like an offset
and got zeros: BatchNormalization's gamma and moving_variance included, a dead network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

Entry = dict[str, Any]

#: Constructor defaults by variable name (``keras/src/layers/*``): ``glorot_uniform``
#: kernels, ``zeros`` biases/betas/moving means, ``ones`` gammas/moving variances/RMS scales,
#: Embedding's ``"uniform"`` (RandomUniform(-0.05, 0.05)), PReLU's ``alpha`` zeros.
VARIABLE_INIT: dict[str, Any] = {
    "kernel": "glorot_uniform",
    "depthwise_kernel": "glorot_uniform",
    "pointwise_kernel": "glorot_uniform",
    "bias": "zeros",
    "beta": "zeros",
    "moving_mean": "zeros",
    "gamma": "ones",
    "moving_variance": "ones",
    "scale": "ones",
    "embeddings": {"name": "random_uniform", "minval": -0.05, "maxval": 0.05},
    "alpha": "zeros",
}

#: Variables in ``vars/<i>`` order per layer (snake_case class, or the attribute a parent
#: saves it under). Recurrent kernels are Orthogonal, which varscale does not produce.
LAYER_VARIABLES: dict[str, tuple[str, ...]] = {
    **{k: ("kernel", "bias") for k in (
        "dense", "einsum_dense", "conv1d", "conv2d", "conv3d", "conv1d_transpose",
        "conv2d_transpose", "conv3d_transpose", "depthwise_conv1d", "depthwise_conv2d",
        "query_dense", "key_dense", "value_dense", "output_dense",
    )},
    "separable_conv1d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "separable_conv2d": ("depthwise_kernel", "pointwise_kernel", "bias"),
    "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
    "layer_normalization": ("gamma", "beta"),
    "group_normalization": ("gamma", "beta"),
    "rms_normalization": ("scale",),
    "embedding": ("embeddings",),
    "p_re_lu": ("alpha",),
    "cell": ("kernel", "recurrent_kernel", "bias"),
}

#: Keras 3.15 ``MultiHeadAttention`` builds its projections as EinsumDense and clones their
#: VarianceScaling initializer with the equation's axes (``_update_kernel_initializer``):
#: ``query/key/value`` kernels (d, heads, dim) fan over (d) -> (heads, dim), the output kernel
#: (heads, dim, d) over (heads, dim) -> (d).
MHA_AXES: dict[str, dict[str, list[int]]] = {
    "query_dense": {"in_axis": [0], "out_axis": [1, 2]},
    "key_dense": {"in_axis": [0], "out_axis": [1, 2]},
    "value_dense": {"in_axis": [0], "out_axis": [1, 2]},
    "output_dense": {"in_axis": [0, 1], "out_axis": [2]},
}

_EINSUM = re.compile(r"([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)")


def einsum_kernel_axes(equation: str) -> dict[str, list[int]] | None:
    """The fan axes Keras >= 3.15 gives an ``EinsumDense`` kernel's VarianceScaling
    (``EinsumDense.build`` -> ``_update_kernel_initializer``; ``_analyze_split_string``): a
    kernel axis whose letter is in the output is an output axis, else an input axis. None for
    an equation this parser does not read."""
    m = _EINSUM.fullmatch(equation.replace(" ", ""))
    if m is None:
        return None
    _, kernel, output = m.groups()
    outs = [i for i, ch in enumerate(kernel) if ch in output]
    ins = [i for i, ch in enumerate(kernel) if ch not in output]
    return {"in_axis": ins, "out_axis": outs}


_PATH = re.compile(r"(?:(?P<parent>.*)/)?(?P<group>[^/]+)/vars/(?P<index>\d+)")


def _layer(group: str) -> str:
    """``batch_normalization_3`` -> ``batch_normalization`` (saving_lib's unique suffix)."""
    if group in LAYER_VARIABLES:
        return group
    return re.sub(r"_\d+$", "", group)


def keras_file_entries(
    tensors: Sequence[tuple[str, tuple[int, ...]]],
) -> tuple[dict[str, Entry], list[str]]:
    """Each ``<path>/vars/<i>``'s variable and its constructor default, with warnings naming
    each rule applied without certainty: a layer not in `LAYER_VARIABLES`, a layer with fewer
    variables than listed (``BatchNormalization(center=False)``...), an Orthogonal recurrent
    kernel (glorot_uniform instead)."""
    counts: dict[str, int] = {}
    for name, _ in tensors:
        m = _PATH.fullmatch(name)
        if m:
            key = name.rpartition("/vars/")[0]
            counts[key] = counts.get(key, 0) + 1
    out: dict[str, Entry] = {}
    unknown: list[str] = []
    partial: list[str] = []
    recurrent: list[str] = []
    forget: list[str] = []
    for name, shape in tensors:
        m = _PATH.fullmatch(name)
        if m is None:
            continue
        group, index = m["group"], int(m["index"])
        variables = LAYER_VARIABLES.get(_layer(group))
        have = counts[name.rpartition("/vars/")[0]]
        # A layer built without some variables keeps the trailing ones (the moving
        # statistics) at the end: count those from the end.
        offset = len(variables) - have if variables is not None else -1
        entry: Entry
        if variables is None or offset < 0 or index >= have:
            rule = "glorot_uniform" if len(shape) >= 2 else "zeros"
            unknown.append(f"{name} ({'kernel' if len(shape) >= 2 else 'vector'}: {rule})")
            out[name] = {"initializer": rule}
            continue
        var = variables[index + offset if index >= 1 else 0]
        ambiguous = VARIABLE_INIT[variables[0]] != VARIABLE_INIT[variables[offset]]
        if offset and index == 0 and len(shape) < 2 and ambiguous:
            partial.append(f"{name} ({var}, not {variables[offset]})")
        if var == "recurrent_kernel":
            recurrent.append(name)
            entry = {"initializer": "glorot_uniform"}
        elif var == "bias" and group == "cell" and _layer((m["parent"] or "").rpartition("/")[2]) == "lstm":
            forget.append(name)
            entry = {"initializer": "zeros"}
        else:
            entry = {"initializer": VARIABLE_INIT[var]}
        if var == "kernel" and group in MHA_AXES:
            entry.update(MHA_AXES[group])
        out[name] = entry
    notes = []
    if unknown:
        notes.append("variables of layers varscale has no table for: " + ", ".join(unknown))
    if partial:
        notes.append(
            "layers with fewer variables than their defaults (center/scale off?); assumed: "
            + ", ".join(partial)
        )
    if forget:
        notes.append(
            "LSTM biases: Keras' unit_forget_bias=True sets the forget gate's slice [u:2u] to "
            "ones, which varscale does not produce; zeros throughout: " + ", ".join(forget)
        )
    if recurrent:
        notes.append(
            "recurrent kernels are Orthogonal in Keras, which varscale does not produce; "
            "glorot_uniform instead: " + ", ".join(recurrent)
        )
    return out, notes
