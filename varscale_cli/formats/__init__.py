"""The weight-file formats: one module per format, which both reads and writes it, and this registry.

`REGISTRY` lists every format's `~varscale_cli.formats.description.Format` once; everything that
depends on the set of formats derives from it: the CLI's ``--format`` choices, the output
format a suffix names, the reader a suffix or a file's first bytes pick, the per-format
checks, and the "use safetensors, npz or hdf5" messages. A new format is one module in this
package plus one line in `REGISTRY` (docs/contributing.md).

The format modules never import this one, so there is no cycle; the HDF5 module imports h5py
only when an HDF5 file is opened or written, so ``varscale --help`` and safetensors-only runs
never pay for it.

    >>> from varscale_cli.formats import open_weights
    >>> with open_weights(path) as wf:                                     # doctest: +SKIP
    ...     for info in wf.tensors():
    ...         total = sum(chunk.size for chunk in wf.iter_chunks(info.name))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import ReadError, SpecError, UnsupportedDtype
from ..inputs import open_input
from . import hdf5, hf, npz, safetensors
from .base import MAX_TENSORS, WeightFile, one_line
from .description import Format
from .hf import HF_INDEX_FILE, HF_SINGLE_FILE, INDEX_SUFFIX
from .items import WriteItem, check_metadata, check_name, join

__all__ = [
    "FORMATS",
    "HF_INDEX_FILE",
    "HF_SINGLE_FILE",
    "REGISTRY",
    "RESERVED_NAMES",
    "check_items",
    "format_for",
    "get",
    "open_weights",
    "planned_size",
    "write",
]

#: Every format, in the order messages and ``--format`` list them.
REGISTRY: tuple[Format, ...] = (
    safetensors.FORMAT,
    npz.FORMAT,
    hdf5.FORMAT,
)

BY_NAME: dict[str, Format] = {f.name: f for f in REGISTRY}

#: The format names (the CLI's ``--format`` choices).
FORMATS: tuple[str, ...] = tuple(BY_NAME)

#: Output suffix (lower case) -> the format it names.
SUFFIXES: dict[str, Format] = {suffix: f for f in REGISTRY for suffix in f.suffixes}

#: Tensor names some format keeps for itself (safetensors ``__metadata__``, the npz manifest).
RESERVED_NAMES: tuple[str, ...] = tuple(dict.fromkeys(n for f in REGISTRY for n in f.reserved))

#: Formats in the order `open_weights` tries their first bytes: fixed magic bytes first, then
#: the formats that have none and must guess (a zip or HDF5 file is never taken for one).
_BY_MAGIC: tuple[Format, ...] = tuple(sorted(REGISTRY, key=lambda f: not f.magic))


def _or(names: Sequence[str]) -> str:
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]


def get(fmt: str) -> Format:
    """The format named ``fmt``.

    Raises:
        SpecError: no format has that name.
    """
    try:
        return BY_NAME[fmt]
    except KeyError:
        raise SpecError(f"unknown format '{fmt}'; use {_or(FORMATS)}") from None


def format_for(path: Path, fmt: str | None) -> str:
    """The output format: ``fmt`` when given, else the one the suffix of ``path`` names.

    Args:
        path: The output path.
        fmt: An explicit format (one of :data:`FORMATS`) or None.

    Returns:
        One of :data:`FORMATS`.

    Raises:
        SpecError: ``fmt`` is unknown; it is None and the suffix names no format; or the
            suffix names another format than ``fmt`` (the file would be published under a
            name that every reader, ours included, takes for the other format).
    """
    found = SUFFIXES.get(Path(path).suffix.lower())
    if fmt is not None:
        chosen = get(fmt)
        if found is not None and found is not chosen:
            raise SpecError(
                f"--format {chosen.name} contradicts the output name '{path}', whose suffix "
                f"{Path(path).suffix} names {found.name}; drop --format or name the file "
                f"*{chosen.suffixes[0]}"
            )
        return chosen.name
    if found is None:
        raise SpecError(
            f"cannot tell the format of '{path}' from its suffix; use --format "
            f"{'|'.join(FORMATS)} or a {_or(list(SUFFIXES))} suffix"
        )
    return found.name


def check_items(
    fmt: str, items: Sequence[WriteItem], metadata: Mapping[str, str] | None = None
) -> None:
    """Refuse, before any sampling, every tensor that ``fmt`` cannot store as asked.

    Args:
        fmt: One of :data:`FORMATS`.
        items: The tensors to write.
        metadata: The metadata map that will be written, for the checks that count it (the
            safetensors header limit); None checks with an empty map (a lower bound).

    Raises:
        UnsupportedDtype: A dtype the format cannot store (the message names the tensor, the
            dtype and what the format allows).
        SpecError: An unknown format, a duplicate, empty or format-invalid name, names that
            collide as HDF5 groups or npz members, or a safetensors header over 100 MB.
    """
    spec = get(fmt)
    seen: set[str] = set()
    for item in items:
        check_name(item.name)
        if item.name in seen:
            raise SpecError(f"tensor name '{item.name}' appears more than once")
        seen.add(item.name)
        if any(d < 0 for d in item.shape):
            raise SpecError(f"tensor '{item.name}' has a negative dimension in shape {item.shape}")
        if item.dtype.name not in spec.dtypes:
            able = [f"{f.name} ({f.suffixes[0]})" for f in REGISTRY if item.dtype.name in f.dtypes]
            instead = f"; write it as {_or(able)}" if able else ""
            raise UnsupportedDtype(
                f"tensor '{item.name}' has dtype {item.dtype.name}, which {fmt} cannot store; "
                f"{fmt} stores {join(spec.dtypes)}{instead}"
            )
    spec.check(items, seen, {} if metadata is None else metadata)


def write(fmt: str, path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    """Write the complete file at ``path``, streaming each tensor's chunks.

    Args:
        fmt: One of :data:`FORMATS`.
        path: Where to write; normally the temp path of :func:`varscale_cli.engine.atomic.atomic_output`
            (it is truncated if it exists).
        items: The tensors, in the order the caller wants them (safetensors reorders them by
            dtype size, like the reference writer, so that every tensor is aligned).
        metadata: A str -> str map: safetensors ``__metadata__``, npz manifest, HDF5 root attrs.

    Raises:
        SpecError: As :func:`check_items` (it is run again here; it is cheap).
        OutputError: A chunk iterator yielded the wrong dtype or number of bytes.
        OSError: The file could not be written (``atomic_output`` turns it into OutputError).
    """
    check_metadata(metadata)
    check_items(fmt, items, metadata)
    get(fmt).write(Path(path), items, metadata)


def planned_size(fmt: str, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """The file size :func:`write` will produce: exact for safetensors, a close upper bound else.

    Args:
        fmt: One of :data:`FORMATS`.
        items: The tensors.
        metadata: The metadata map that will be written.

    Returns:
        A byte count for the free-disk-space check.
    """
    return int(get(fmt).planned_size(items, metadata))


def open_weights(path: str | Path, *, max_tensors: int = MAX_TENSORS) -> WeightFile:
    """Open a weight file for reading, choosing the reader by suffix, else by magic bytes.

    Accepted: every registered format's suffixes (``*.safetensors``; ``*.npz``; ``*.h5`` /
    ``*.hdf5``); a Hugging Face ``*.index.json`` (sharded safetensors); a directory holding
    ``model.safetensors`` or ``model.safetensors.index.json`` (the single file wins when both
    exist, as in transformers). Any other name is recognised by its first bytes.

    Only regular files are opened (a FIFO or a device, even behind a symlink, is refused
    unopened: `varscale_cli.inputs`), and a file listing more than ``max_tensors`` tensors
    is refused before they are parsed one by one (`varscale_cli.formats.base.MAX_TENSORS`).

    Raises:
        ReadError: missing path, unknown format, or a file its reader refuses.
    """
    p = Path(path)
    if p.is_dir():
        found = hf.open_layout(p, max_tensors=max_tensors)
        assert found is not None  # a directory is an HF checkpoint or refused
        return found
    if not p.exists():
        raise ReadError(f"'{p}': no such file")
    sharded = hf.open_layout(p, max_tensors=max_tensors)
    if sharded is not None:
        return sharded
    name = p.name.lower()
    for spec in REGISTRY:
        if name.endswith(spec.suffixes):
            return spec.reader(p, max_tensors=max_tensors)
    try:
        with open_input(p) as f:  # a FIFO or device is refused unopened
            head = f.read(max(spec.sniff_bytes for spec in REGISTRY))
    except OSError as exc:
        raise ReadError(f"'{p}': cannot read: {one_line(exc.strerror or str(exc))}") from None
    for spec in _BY_MAGIC:
        if spec.detects(head):
            return spec.reader(p, max_tensors=max_tensors)
    raise ReadError(
        f"'{p}': unknown weight file format (expected "
        f"{', '.join('/'.join(spec.suffixes) for spec in REGISTRY)}, "
        f"an HF *{INDEX_SUFFIX}, or a directory holding {HF_SINGLE_FILE})"
    )
