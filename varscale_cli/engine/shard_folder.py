"""What an earlier run left in a sharded output folder, and which of it varscale may remove.

A new plan with another shard count writes other file names: ``model-00001-of-00003.safetensors``
stays beside ``model-00001-of-00008.safetensors``, and a ``model.safetensors`` from a one-shard
run shadows any index (transformers, like `varscale_cli.formats.hf.open_layout`, opens the single
file first). Without ``--force`` such leftovers are refused; with it, varscale removes the files
that it wrote itself, identified by BOTH the Hugging Face name pattern AND the varscale
provenance in the file (a shard's record must name the same index and count as its file name),
and refuses anything else: a file some other tool wrote is never deleted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from pathlib import Path

from ..errors import OutputError, VarscaleError
from ..formats.base import MAX_JSON_BYTES
from ..formats.hf import HF_INDEX_FILE, HF_SINGLE_FILE
from ..inputs import read_input
from ..provenance import Provenance

#: huggingface_hub's shard names (1-based, 5 digits), the only ones varscale writes.
SHARD_NAME = re.compile(r"model-(\d{5})-of-(\d{5})\.safetensors")


def _provenance(path: Path) -> Provenance | None:
    """The varscale record in a safetensors file's header, or None (not ours, or unreadable)."""
    from ..formats.safetensors import SafetensorsFile

    try:
        with SafetensorsFile(path) as sf:
            text = sf.metadata.get("varscale")
        return None if text is None else Provenance.from_json(text, str(path))
    except VarscaleError:
        return None


def _written_by_varscale(path: Path) -> bool:
    prov = _provenance(path)
    if prov is None:
        return False
    m = SHARD_NAME.fullmatch(path.name)
    if m is None:  # model.safetensors: a one-shard plan or a plain `generate -o`
        return prov.shard is None or prov.shard.count == 1
    return prov.shard is not None and (prov.shard.index + 1, prov.shard.count) == (
        int(m.group(1)), int(m.group(2))
    )


def _index_is_ours(path: Path, stale: Collection[Path]) -> bool:
    """An index holds no provenance of its own: it is varscale's if every file it names has
    a shard name and each such file still present is a varscale shard being removed."""
    try:
        # the guarded open: a FIFO or device there is not read (nor waited on)
        weight_map = json.loads(read_input(path, "index", MAX_JSON_BYTES).decode("utf-8")).get("weight_map")
    except (VarscaleError, ValueError, AttributeError, RecursionError):
        return False
    if not isinstance(weight_map, dict):
        return False
    for shard in set(weight_map.values()):
        if not isinstance(shard, str) or SHARD_NAME.fullmatch(shard) is None:
            return False
        shard_path = path.parent / shard
        if shard_path.exists() and shard_path not in stale:
            return False
    return True


def leftovers(folder: Path, new_names: Sequence[str], *, force: bool) -> list[Path]:
    """The files of an earlier plan in ``folder`` that ``--force`` will remove (after the new
    shards are written, so a failed run leaves the old checkpoint whole).

    Args:
        folder: the output folder (may not exist yet).
        new_names: the file names of the new plan (shards, and the index if it has one).
        force: ``--force`` was given.

    Raises:
        OutputError: leftovers without ``--force``, or a leftover varscale did not write.
    """
    if not folder.is_dir():
        return []
    new = set(new_names)
    found = sorted(
        folder / e.name for e in folder.iterdir()
        if e.name not in new and (SHARD_NAME.fullmatch(e.name) or e.name == HF_SINGLE_FILE)
    )
    index = folder / HF_INDEX_FILE
    if HF_INDEX_FILE not in new and index.exists():
        found.append(index)
    if not found:
        return []
    names = ", ".join(p.name for p in found[:3]) + (f" and {len(found) - 3} more" if len(found) > 3 else "")
    if not force:
        raise OutputError(
            f"'{folder}' holds files of another shard plan ({names}) that would sit beside or "
            "shadow the new shards; use --force to remove them (varscale removes only files it wrote)"
        )
    for path in found:
        ours = _index_is_ours(path, found) if path == index else _written_by_varscale(path)
        if not ours:
            raise OutputError(
                f"'{path}' would be left beside (or shadow) the new shards but was not written by "
                "varscale (no matching varscale provenance), so --force will not delete it; "
                "move it away or choose another folder"
            )
    return found


def remove(paths: Sequence[Path]) -> None:
    """Delete ``paths``; one already gone (a concurrent task of the same job array) is fine."""
    for path in paths:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise OutputError(f"cannot remove the old '{path}': {exc.strerror or exc}") from None
