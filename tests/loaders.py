"""Load a weight file with the real libraries (not varscale's readers): the oracle tests use."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
from safetensors.numpy import load_file

from varscale_cli.formats.npz import MANIFEST_NAME


def load_any(path: Path) -> dict[str, np.ndarray]:
    """Every tensor of a .safetensors, .npz or HDF5 file, bfloat16 restored from the npz
    manifest or the Keras-style ``dtype`` attribute (whose storage must be 2 bytes wide)."""
    if path.suffix == ".safetensors":
        return load_file(str(path))
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            manifest = json.loads(str(z[MANIFEST_NAME]))
            out = {}
            for name in z.files:
                if name == MANIFEST_NAME:
                    continue
                arr = z[name]
                if manifest["dtypes"].get(name) == "bfloat16":
                    assert arr.dtype == np.dtype("<u2"), (name, arr.dtype)
                    arr = arr.view(ml_dtypes.bfloat16)
                out[name] = arr
            return out
    out = {}
    with h5py.File(path, "r") as f:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                arr = np.asarray(obj[()])
                if obj.attrs.get("dtype") == "bfloat16":
                    assert arr.dtype.itemsize == 2, (name, arr.dtype)
                    arr = arr.view(ml_dtypes.bfloat16)
                out[name] = arr

        f.visititems(visit)
    return out
