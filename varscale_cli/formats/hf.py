"""The Hugging Face checkpoint layout: a ``model.safetensors``, or safetensors shards and an index.

The file names are huggingface_hub's (constants.py ``SAFETENSORS_SINGLE_FILE`` and
``SAFETENSORS_INDEX_FILE``); `varscale_cli.shards` writes them, `ShardedSafetensors` reads an
index, and `open_layout` opens a checkpoint folder the way transformers does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .. import provenance
from ..errors import ReadError
from ..inputs import read_input
from .base import (
    DEFAULT_CHUNK_ELEMS,
    MAX_JSON_BYTES,
    MAX_TENSORS,
    BaseWeightFile,
    WeightFile,
    loads_strict,
    one_line,
)
from .safetensors import SafetensorsFile

#: File names of Hugging Face checkpoints (huggingface_hub constants.py).
HF_SINGLE_FILE = "model.safetensors"
HF_INDEX_FILE = "model.safetensors.index.json"

#: The suffix of an index file (``model.safetensors.index.json`` and other prefixes).
INDEX_SUFFIX = ".index.json"


def open_layout(path: Path, *, max_tensors: int = MAX_TENSORS) -> WeightFile | None:
    """The checkpoint at ``path`` if it is an HF folder or index file, else None.

    A folder must hold ``model.safetensors`` or ``model.safetensors.index.json`` (the single
    file wins when both exist, as in transformers).

    Raises:
        ReadError: a folder holding neither, or an index its reader refuses.
    """
    if path.is_dir():
        if (path / HF_SINGLE_FILE).is_file():
            return SafetensorsFile(path / HF_SINGLE_FILE, max_tensors=max_tensors)
        if (path / HF_INDEX_FILE).exists():  # not a regular file: its reader says so
            return ShardedSafetensors(path / HF_INDEX_FILE, max_tensors=max_tensors)
        raise ReadError(f"'{path}': the directory holds neither {HF_SINGLE_FILE} nor {HF_INDEX_FILE}")
    if path.name.lower().endswith(INDEX_SUFFIX) and path.exists():
        return ShardedSafetensors(path, max_tensors=max_tensors)
    return None


class ShardedSafetensors(BaseWeightFile):
    """A Hugging Face sharded checkpoint, read through its ``*.index.json``.

    The index is ``{"metadata": {...}, "weight_map": {tensor: shard file}}``. Every shard
    named must exist next to the index (no absolute paths, no ``..``), be a valid safetensors
    file, and hold exactly the tensors the index assigns to it: a tensor missing from its
    shard, present in another, or absent from the index is an error.

    ``metadata`` is the index's metadata (values as text) overlaid with the shards'
    ``__metadata__``; varscale provenance (key ``varscale``) is merged so its ``tensors``
    cover every shard.
    """

    thread_safe = True  # each shard is a thread-safe SafetensorsFile

    def __init__(self, index_path: str | Path, *, max_tensors: int = MAX_TENSORS) -> None:
        self.path = Path(index_path)
        self._max_tensors = max_tensors
        self.metadata = {}
        self._infos = {}
        self._shards: dict[str, SafetensorsFile] = {}
        self._where: dict[str, str] = {}
        self._open_guarded(self._open, "invalid sharded checkpoint index")

    def _fail(self, what: str) -> ReadError:
        return ReadError(f"'{self.path}': invalid sharded checkpoint index: {what}")

    def _open(self) -> None:
        # A FIFO, device or directory is refused unopened; at most MAX_JSON_BYTES are read.
        raw = read_input(self.path, "index", MAX_JSON_BYTES)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self._fail(f"not UTF-8 (byte {exc.start})") from None
        try:
            index = loads_strict(text)
        except (ValueError, RecursionError) as exc:
            raise self._fail(f"not valid JSON: {one_line(str(exc))}") from None
        if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
            raise self._fail('no "weight_map" object')
        meta = index.get("metadata") or {}
        if not isinstance(meta, dict):
            raise self._fail('"metadata" is not an object')
        weight_map: dict[str, Any] = index["weight_map"]
        if not weight_map:
            # An empty map would check nothing and report success on a folder of shards.
            raise self._fail('the "weight_map" is empty: it assigns no tensor to any shard')
        self._check_tensor_count(len(weight_map))
        for tensor, shard in weight_map.items():
            if not isinstance(shard, str):
                raise self._fail(f"the shard of tensor {tensor!r} is not a file name")
        base = self.path.parent
        for shard in sorted(set(weight_map.values())):
            rel = PurePosixPath(shard.replace("\\", "/"))
            if rel.is_absolute() or ".." in rel.parts or not rel.parts:
                raise self._fail(f"shard {shard!r} is not a file name inside the index's folder")
            if not rel.name.endswith(".safetensors"):
                raise self._fail(f"shard {shard!r} is not a .safetensors file")
            shard_path = base.joinpath(*rel.parts)
            if not shard_path.exists():
                raise self._fail(f"shard {shard!r} listed in the index does not exist")
            self._shards[shard] = SafetensorsFile(shard_path, max_tensors=self._max_tensors)
        for shard, sf in self._shards.items():
            for info in sf.tensors():
                listed = weight_map.get(info.name)
                if listed is None:
                    raise self._fail(f"tensor {info.name!r} in shard {shard!r} is not in the weight_map")
                if listed != shard:
                    raise self._fail(
                        f"tensor {info.name!r} is in shard {shard!r} but the index puts it in {listed!r}"
                    )
                self._infos[info.name] = info
                self._where[info.name] = shard
        for tensor, shard in weight_map.items():
            if tensor not in self._infos:
                raise self._fail(f"the index puts tensor {tensor!r} in shard {shard!r}, which does not hold it")
        merged: dict[str, str] = {
            str(k): v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()
        }
        for sf in self._shards.values():
            for key, value in sf.metadata.items():
                if key == "varscale" and key in merged:
                    merged[key] = provenance.merge(merged[key], value)
                else:
                    merged[key] = value
        self.metadata = merged

    def iter_chunks(
        self, name: str, chunk_elems: int = DEFAULT_CHUNK_ELEMS, *, reuse: bool = False
    ) -> Iterator[np.ndarray]:
        self.info(name)
        return self._shards[self._where[name]].iter_chunks(name, chunk_elems, reuse=reuse)

    def shard_of(self, name: str) -> Path:
        """The shard file holding ``name``."""
        self.info(name)
        return self._shards[self._where[name]].path

    def close(self) -> None:
        for sf in self._shards.values():
            sf.close()

