"""The public entry points: spec text or file -> `Spec`, through the four passes in order."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from ..errors import SpecError
from ..inputs import read_input
from .clean import Cleaner
from .messages import Ctx, show
from .model import Spec
from .parse import MAX_TENSORS, TooManyTensors, load_json
from .resolve import resolve_plans
from .schema_check import check_schema

#: Largest spec file read: 100 MB, the safetensors header limit (MAX_HEADER_SIZE in
#: huggingface/safetensors' tensor.rs). Every tensor of a spec is recorded in that header
#: (its provenance, ~600 bytes, is longer than the spec's line for it), so a larger spec
#: describes a file no safetensors reader would load.
MAX_SPEC_BYTES = 100_000_000

#: The two spellings a spec file can have.
SpecFormat = Literal["yaml", "json"]


def load_spec(path: Path) -> Spec:
    """Read, parse and validate a spec file (JSON if its suffix is ``.json``, else YAML).

    Args:
        path: the spec file.

    Returns:
        The validated `Spec`; its ``sha256`` is that of the file's bytes.

    Raises:
        SpecError: the file cannot be read or is not a valid spec.
        UnsupportedDtype: a tensor's dtype is unknown or its initializer cannot produce it.
    """
    path = Path(path)
    # A FIFO, device or directory (even behind a symlink) is refused before it is opened.
    data = read_input(path, "spec", MAX_SPEC_BYTES, error=SpecError)
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which json.loads refuses.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: the spec is not UTF-8 text (byte {e.start})") from None
    return _parse(text, path, None, hashlib.sha256(data).hexdigest())


def parse_spec(text: str, *, path: Path | None = None, fmt: SpecFormat | None = None) -> Spec:
    """Parse and validate spec text.

    Args:
        text: the YAML or JSON text.
        path: where it came from; used in messages and to pick the format.
        fmt: 'yaml' or 'json'; default: 'json' if ``path`` ends in ``.json``, else 'yaml'.

    Returns:
        The validated `Spec`; its ``sha256`` is that of ``text`` encoded as UTF-8.

    Raises:
        SpecError: the text is not a valid spec (or ``fmt`` is neither 'yaml' nor 'json').
        UnsupportedDtype: a tensor's dtype is unknown or its initializer cannot produce it.
    """
    return _parse(text, path, fmt, hashlib.sha256(text.encode("utf-8")).hexdigest())


#: How the top-level-type message names a value the user wrote.
_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _check_count(raw: object, ctx: Ctx) -> None:
    """Refuse a spec with more than MAX_TENSORS entries before the passes walk it."""
    tensors = raw.get("tensors") if isinstance(raw, dict) else None
    if isinstance(tensors, dict | list) and len(tensors) > MAX_TENSORS:
        raise ctx.error(_too_many(len(tensors)), "tensors")


def _too_many(count: int | None) -> str:
    """``count`` tensors (None: parsing stopped once the limit was passed)."""
    has = f"{count:,} tensors, more than" if count is not None else "more tensors than"
    return (
        f"the spec has {has} the limit of {MAX_TENSORS:,} (no output format can store more: "
        'docs/spec.md, "Limits"); write the model as several files'
    )


def _parse(text: str, path: Path | None, fmt: str | None, sha256: str) -> Spec:
    path = Path(path) if path is not None else None
    ctx = Ctx(path)
    if fmt is None:
        fmt = "json" if path is not None and path.suffix.lower() == ".json" else "yaml"
    # Checked at run time too: callers without a type checker may pass any string.
    if fmt not in ("yaml", "json"):
        raise ctx.error(f"unknown spec format {show(fmt)}; allowed: json, yaml")
    text = text.removeprefix("\ufeff")  # a BOM (json.loads refuses it); the hash keeps it
    if not text.strip():
        raise ctx.error("the spec is empty")
    try:
        if fmt == "json":
            raw = load_json(text, ctx)
        else:
            from .yaml_loader import load_yaml  # PyYAML only for a YAML spec

            raw = load_yaml(text, ctx)
        _check_count(raw, ctx)
    except TooManyTensors:
        raise ctx.error(_too_many(None), "tensors") from None
    except RecursionError:
        raise ctx.error("the spec is nested too deeply") from None
    try:
        doc = Cleaner(ctx, fmt == "yaml").clean(raw, [])
    except RecursionError:
        raise ctx.error("the spec is nested too deeply") from None
    if doc is None:
        raise ctx.error("the spec is empty")
    if not isinstance(doc, dict):
        raise ctx.error(
            f"the top level must be a mapping with `version` and `tensors`, got "
            f"{_KINDS.get(type(doc), type(doc).__name__)}"
        )
    # Checked before the schema: a file for another version would fail in confusing ways.
    if "version" in doc and (type(doc["version"]) is not int or doc["version"] != 1):
        raise ctx.error(
            f"{show(doc['version'])} is not a supported spec version; this varscale reads "
            "version 1",
            "version",
        )
    check_schema(doc, ctx)
    plans = resolve_plans(doc, ctx)
    return Spec(
        path=path, version=1, seed=doc.get("seed"), tensors=plans, sha256=sha256,
        hf_config=doc.get("hf_config"),
    )
