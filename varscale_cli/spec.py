"""Spec files: YAML/JSON text -> a validated, frozen `Spec` of `TensorPlan`s.

All spec validation lives here; docs/spec.md is the user-facing reference. Loading runs in four
passes, each of which raises `SpecError` (or `UnsupportedDtype`) with one line that starts with
the file name:

1. **parse**: a duplicate-rejecting SafeLoader for YAML, ``json`` with hooks for JSON. Syntax
   errors, duplicate keys and YAML 1.1 traps report ``file:line:col``.
2. **clean**: one walk over the parsed tree that turns it into plain JSON values and rejects what
   JSON Schema cannot see (NaN/Infinity, non-string keys, dates, YAML 1.1 traps, JSON duplicate
   keys); in YAML files it also turns float-looking strings into floats in float parameters.
3. **schema**: ``spec_schema.json`` (Draft 2020-12) checks the structure; the first error in
   document order is reported with its path, e.g. ``tensors.dense/kernel.shape[1]``.
4. **resolve**: rules and defaults, initializers (`initializers.deserialize`), dtypes, split
   expansion, partitions and fan axes (`fans.compute_fans`), one `TensorPlan` per tensor.
"""

from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .core.dtypes import SAMPLED_ALIASES as DTYPE_ALIASES
from .core.fans import compute_fans
from .core.initializers import Initializer, deserialize
from .errors import SpecError, UnsupportedDtype

__all__ = ["Spec", "TensorPlan", "load_spec", "parse_spec", "schema"]

#: Names the output formats use for their own metadata (safetensors ``__metadata__``, the
#: npz/HDF5 provenance member), so a tensor may not take them.
RESERVED_NAMES = ("__metadata__", "__varscale__")

#: "Absurd" sizes: past these a spec is a typo, not a model. 2**40 per dim and 2**48 elements
#: (the 48-bit practical limit of safetensors offsets; 1 PiB of float32) per tensor.
MAX_DIM = 2**40
MAX_ELEMENTS = 2**48

#: Complex dtypes are accepted only where the initializer says it can produce them.
COMPLEX_DTYPES = ("complex64", "complex128")
KNOWN_DTYPES = tuple(sorted({*DTYPE_ALIASES.values(), *COMPLEX_DTYPES}))

#: Initializer parameters that are floats. PyYAML (YAML 1.1) reads ``1e-3`` as a string, so in
#: YAML files a float-looking string in one of these is converted (docs/spec.md, "YAML pitfalls").
FLOAT_FIELDS = frozenset(
    {"scale", "factor", "a", "gain", "value", "mean", "stddev", "minval", "maxval"}
)
#: Initializer parameters that are booleans: the only places YAML 1.1's yes/no/on/off may stand.
BOOL_FIELDS = frozenset({"uniform", "corrected"})

#: Keys that may sit on an entry or, equivalently, inside its initializer mapping.
EMBEDDED_KEYS = ("layout", "dtype", "in_axis", "out_axis", "batch_axis")
AXIS_KEYS = ("in_axis", "out_axis", "batch_axis")

#: Used when no tensor, rule or default sets the key (Keras' Dense default initializer).
DEFAULT_INITIALIZER = "glorot_uniform"
DEFAULT_DTYPE = "float32"

_FLOAT_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: Guards against alias bombs ("billion laughs"): YAML aliases share objects, the clean pass
#: copies them, so a small file could otherwise expand to billions of values.
_MAX_VALUES = 2_000_000
_MAX_DEPTH = 32


# --- the result ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorPlan:
    """One tensor to produce, with everything resolved.

    Attributes:
        name: the tensor's name in the output file.
        shape: its shape.
        dtype: canonical dtype name ('float32', 'bfloat16', ...).
        initializer: the deserialized initializer.
        layout: 'keras' ((..., in, out)) or 'torch' ((out, in, *k)).
        in_axis: explicit input axes (non-negative), or None for the layout's default.
        out_axis: explicit output axes (non-negative), or None for the layout's default.
        batch_axis: axes that count for neither fan; () by default.
        stream: the name whose random stream gives the values (a partition's ``of``).
        full_shape: the shape the fans and the stream are computed over (== shape unless
            partitioned).
        offset: where this tensor sits inside ``full_shape`` (zeros unless partitioned).
        source: the resolved entry as a JSON-able dict, for provenance.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    initializer: Initializer
    layout: str
    in_axis: tuple[int, ...] | None
    out_axis: tuple[int, ...] | None
    batch_axis: tuple[int, ...]
    stream: str
    full_shape: tuple[int, ...]
    offset: tuple[int, ...]
    # A dict is unhashable: keep it out of the generated __hash__.
    source: dict = field(hash=False)


@dataclass(frozen=True)
class Spec:
    """A validated spec file.

    Attributes:
        path: the file it came from, if any.
        version: the format version (always 1).
        seed: the global seed, or None if the spec leaves it to the command line.
        tensors: the tensors in spec order, after split expansion.
        sha256: hex SHA-256 of the spec file's bytes.
    """

    path: Path | None
    version: int
    seed: int | None
    tensors: tuple[TensorPlan, ...]
    sha256: str


# --- public API ---------------------------------------------------------------------------------


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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise SpecError(f"{path}: cannot read the spec: {e.strerror or e}") from None
    try:
        # utf-8-sig: editors on Windows like to prepend a BOM, which json.loads refuses.
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: the spec is not UTF-8 text (byte {e.start})") from None
    return _parse(text, path, None, hashlib.sha256(data).hexdigest())


def parse_spec(text: str, *, path: Path | None = None, fmt: str | None = None) -> Spec:
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


def schema() -> dict:
    """The spec's JSON Schema (Draft 2020-12), as shipped in ``spec_schema.json``.

    Returns a fresh copy on every call, so callers may modify it.
    """
    return json.loads(_schema_text())


# --- plumbing -----------------------------------------------------------------------------------


@cache
def _schema_text() -> str:
    return resources.files(__package__).joinpath("spec_schema.json").read_text("utf-8")


def _is_strict_int(checker: Any, instance: Any) -> bool:
    # jsonschema counts 3.0 as an integer (JSON has one number type); a dim of 3.0 is a typo
    # here, and bools are ints in Python but never integers in a spec.
    return isinstance(instance, int) and not isinstance(instance, bool)


@cache
def _validator() -> jsonschema.protocols.Validator:
    base = jsonschema.Draft202012Validator
    cls = jsonschema.validators.extend(
        base, type_checker=base.TYPE_CHECKER.redefine("integer", _is_strict_int)
    )
    return cls(_inline_refs(schema()))


def _inline_refs(doc: dict) -> dict:
    """The schema with every local ``$ref`` replaced by its target: jsonschema resolves each
    ``$ref`` anew for every value it checks, which made it 2/3 of the load time of a large spec.
    The shipped file keeps its ``$ref``s (editors show the names of the definitions)."""
    defs = doc.get("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, list):
            return [inline(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: inline(v) for k, v in node.items() if k not in ("$ref", "$defs")}
        ref = node.get("$ref")
        if ref is not None:
            target = inline(defs[ref.removeprefix("#/$defs/")])
            assert not set(target) & set(out), f"$ref {ref} beside keywords it also sets"
            out.update(target)
        return out

    return inline(doc)


def _one_line(text: str) -> str:
    # Messages from PyYAML and deserialize may span lines; values we quote are repr()-escaped.
    return re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()


def _show(value: Any, limit: int = 60) -> str:
    """A short one-line rendering of a value as the user wrote it (JSON spelling)."""
    if isinstance(value, str):
        text = repr(value)
    elif isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        try:
            text = json.dumps(value, separators=(", ", ": "), allow_nan=True)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _show_limit(n: int) -> str:
    for k in (40, 48, 63):
        if n == 2**k:
            return f"{n} (2**{k})"
        if n == 2**k - 1:
            return f"{n} (2**{k} - 1)"
    return str(n)


def _render_path(parts: Iterable[Any]) -> str:
    """``tensors.dense/kernel.shape[1]``; keys that would be ambiguous are quoted."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p and p.isprintable() and not re.search(r"[\s.\[\]'\"]", p):
            out += f".{p}" if out else p
        else:
            out += f"[{p!r}]"
    return out


def _closest(word: Any, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Ctx:
    """Per-file error formatting: every message starts with the file name."""

    def __init__(self, path: Path | None) -> None:
        self.label = str(path) if path is not None else "<spec>"

    def error(
        self,
        message: str,
        where: str = "",
        pos: tuple[int, int] | None = None,
        cls: type[SpecError] = SpecError,
    ) -> SpecError:
        """The exception to raise: ``file[:line:col]: [where: ]message`` on one line."""
        loc = self.label
        if pos is not None:
            loc += f":{pos[0]}:{pos[1]}"
        prefix = f"{loc}: {where}: " if where else f"{loc}: "
        return cls(prefix + _one_line(message))


# --- pass 1: parse ------------------------------------------------------------------------------


class _SpecYAMLError(yaml.MarkedYAMLError):
    """A duplicate key: reported with its position but without the 'invalid YAML' prefix."""


@dataclass(eq=False)
class _Trap:
    """A YAML 1.1 scalar whose meaning differs from what most readers (and YAML 1.2) expect.

    The loader keeps it instead of the value; the clean pass either accepts it (yes/no in a
    boolean parameter) or reports it with its position.
    """

    text: str
    value: Any
    mark: Any
    problem: str


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (no arbitrary objects) that rejects duplicate keys.

    The pure-Python loader, not CSafeLoader: the C parser's messages differ in places, and spec
    files are small, so we pick identical messages everywhere over speed.
    """

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # `<<: *base` entries may legitimately be overridden
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.setdefault(key, key_node.start_mark)
                except TypeError:
                    continue  # unhashable: SafeConstructor reports it with its position
                if first is not key_node.start_mark:
                    raise _SpecYAMLError(
                        problem=f"duplicate key {_show(key)} (first at line {first.line + 1}, "
                        f"column {first.column + 1}); YAML would silently keep the last one",
                        problem_mark=key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def _construct_bool(loader: _SpecLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    value = yaml.SafeLoader.bool_values[text.lower()]
    return _Trap(
        text,
        value,
        node.start_mark,
        f"unquoted {text!r} is read as the boolean {json.dumps(value)} by YAML 1.1; "
        "quote it, or write true/false where a boolean is meant",
    )


def _construct_int(loader: _SpecLoader, node: yaml.ScalarNode) -> Any:
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    text = loader.construct_scalar(node)
    digits = text.lstrip("+-").replace("_", "")
    if ":" in digits:
        return _Trap(
            text,
            value,
            node.start_mark,
            f"{text!r} is read as the base-60 number {value} by YAML 1.1; quote it",
        )
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return _Trap(
            text,
            value,
            node.start_mark,
            f"{text!r} is read as the octal number {value} by YAML 1.1; "
            "drop the leading zero, or quote it",
        )
    return value


def _construct_float(loader: _SpecLoader, node: yaml.ScalarNode) -> Any:
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    text = loader.construct_scalar(node)
    if ":" in text:
        return _Trap(
            text,
            value,
            node.start_mark,
            f"{text!r} is read as the base-60 number {value} by YAML 1.1; quote it",
        )
    return value


_SpecLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_SpecLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def _pos(mark: Any) -> tuple[int, int] | None:
    """1-based (line, column) of a PyYAML mark (which counts from 0)."""
    return None if mark is None else (mark.line + 1, mark.column + 1)


def _load_yaml(text: str, ctx: _Ctx) -> Any:
    loader = None
    try:
        loader = _SpecLoader(text)  # the reader rejects control characters right here
        return loader.get_single_data()
    except _SpecYAMLError as e:
        raise ctx.error(e.problem or "", pos=_pos(e.problem_mark)) from None
    except yaml.MarkedYAMLError as e:
        # PyYAML prints "context / at mark / problem / at mark" on four lines; keep its order.
        msg = e.problem or ""
        if e.context:
            at = e.context_mark
            where = f" (line {at.line + 1}, column {at.column + 1})" if at is not None else ""
            msg = f"{e.context}{where}: {msg}"
        raise ctx.error(f"invalid YAML: {msg}", pos=_pos(e.problem_mark)) from None
    except yaml.YAMLError as e:  # ReaderError (control characters) has no mark
        raise ctx.error(f"invalid YAML: {e}") from None
    finally:
        if loader is not None:
            loader.dispose()


class _DupDict(dict):
    """A JSON object that had a repeated key; the clean pass reports it with its path."""

    duplicate: str


@dataclass(frozen=True)
class _NonFinite:
    """A JSON NaN/Infinity literal or an overflowing number such as 1e400."""

    text: str


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            out = _DupDict(out)
            out.duplicate = k
            return out
        out[k] = v
    return out


def _json_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else _NonFinite(text)


def _load_json(text: str, ctx: _Ctx) -> Any:
    try:
        # The hooks turn what json would silently accept (repeated keys: last wins; NaN,
        # Infinity, 1e400 -> inf) into markers that the clean pass reports with their path.
        return json.loads(
            text, object_pairs_hook=_json_pairs, parse_constant=_NonFinite, parse_float=_json_float
        )
    except json.JSONDecodeError as e:
        raise ctx.error(f"invalid JSON: {e.msg}", pos=(e.lineno, e.colno)) from None


# --- pass 2: clean ------------------------------------------------------------------------------


class _Cleaner:
    """Turns the parsed tree into fresh, plain JSON values (dict, list, str, int, float, bool,
    None), or raises. It is the only place that knows about the markers pass 1 leaves behind.
    """

    def __init__(self, ctx: _Ctx, yaml_mode: bool) -> None:
        self.ctx = ctx
        self.yaml_mode = yaml_mode
        self.left = _MAX_VALUES

    def clean(self, obj: Any, path: list[Any], key: Any = None, in_init: bool = False) -> Any:
        """Clean ``obj`` found at ``path`` under mapping key ``key`` (inside an initializer?)."""
        self.left -= 1
        if self.left < 0:
            raise self.ctx.error(
                f"the spec holds more than {_MAX_VALUES} values once YAML aliases are expanded"
            )
        if len(path) > _MAX_DEPTH:
            raise self.ctx.error(f"nested more than {_MAX_DEPTH} levels deep", _render_path(path))
        if isinstance(obj, dict):
            if isinstance(obj, _DupDict):
                raise self.ctx.error(
                    f"duplicate key {obj.duplicate!r}; JSON would silently keep the last one",
                    _render_path(path),
                )
            out = {}
            for k, v in obj.items():
                if isinstance(k, _Trap):
                    raise self.ctx.error(k.problem, _render_path(path), pos=_pos(k.mark))
                if not isinstance(k, str):
                    raise self.ctx.error(
                        f"key {_show(k)} must be a string; quote it", _render_path(path)
                    )
                out[k] = self.clean(v, [*path, k], k, in_init or k == "initializer")
            return out
        if isinstance(obj, list):
            return [self.clean(v, [*path, i], key, in_init) for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, bool | int):
            return obj
        if isinstance(obj, str):
            if self.yaml_mode and in_init and key in FLOAT_FIELDS and _FLOAT_RE.fullmatch(obj):
                obj = float(obj)  # PyYAML reads 1e-3 as a string (YAML 1.1 needs a dot)
            else:
                return obj
        if isinstance(obj, float):
            if not math.isfinite(obj):
                raise self.ctx.error(
                    f"{obj} is not a finite number; NaN and infinities are not allowed",
                    _render_path(path),
                )
            return obj
        if isinstance(obj, _Trap):
            if in_init and key in BOOL_FIELDS and isinstance(obj.value, bool):
                return obj.value
            raise self.ctx.error(obj.problem, _render_path(path), pos=_pos(obj.mark))
        if isinstance(obj, _NonFinite):
            raise self.ctx.error(
                f"{obj.text} is not a finite number; NaN and infinities are not allowed",
                _render_path(path),
            )
        # YAML dates, timestamps, !!binary, !!set...: not JSON, and never meant here.
        raise self.ctx.error(
            f"{_show(str(obj))} is read as a YAML {type(obj).__name__}, which a spec cannot "
            "hold; quote it",
            _render_path(path),
        )


# --- pass 3: schema -----------------------------------------------------------------------------

#: Among errors at the same path, the most useful first: a misspelt key explains a "missing"
#: one, and a wrong type explains any other complaint about the value.
_PRIORITY = {"additionalProperties": 0, "type": 1, "required": 2}


def _check_schema(doc: dict, ctx: _Ctx) -> None:
    errors = list(_validator().iter_errors(doc))
    if not errors:
        return
    order = _doc_order(doc)
    err = min(errors, key=lambda e: (order(e.absolute_path), _PRIORITY.get(e.validator, 9)))
    path = list(err.absolute_path)
    where = _render_path(path)
    if len(path) >= 2 and path[0] == "tensors" and isinstance(path[1], int):
        name = (
            doc["tensors"][path[1]].get("name")
            if isinstance(doc["tensors"][path[1]], dict)
            else None
        )
        if isinstance(name, str):
            where += f" (tensor {name!r})"
    cls = UnsupportedDtype if path and path[-1] == "dtype" else SpecError
    raise ctx.error(_schema_message(err), where, cls=cls)


def _doc_order(doc: Any) -> Callable[[Iterable[Any]], tuple[int, ...]]:
    """A sort key putting schema error paths in the order they appear in the file."""
    index: dict[int, dict[str, int]] = {}

    def key(path: Iterable[Any]) -> tuple[int, ...]:
        out = []
        node = doc
        for p in path:
            if isinstance(node, dict):
                idx = index.setdefault(id(node), {k: i for i, k in enumerate(node)})
                out.append(idx[p])
            else:
                out.append(p)
            node = node[p]
        return tuple(out)

    return key


def _schema_message(err: jsonschema.ValidationError) -> str:
    """jsonschema's message, reworded where ours says more (allowed keys, did-you-mean)."""
    v, inst, arg = err.validator, err.instance, err.validator_value
    if v == "additionalProperties":
        allowed = sorted(err.schema.get("properties", {}))
        extra = next(k for k in inst if k not in allowed)
        return f"unknown key {extra!r}{_closest(extra, allowed)}; allowed: {', '.join(allowed)}"
    if v == "required":
        missing = next(k for k in arg if k not in inst)
        return f"missing required key {missing!r}"
    if v == "type":
        types = " or ".join(repr(t) for t in ([arg] if isinstance(arg, str) else arg))
        return f"{_show(inst)} is not of type {types}"
    if v == "enum":
        return f"{_show(inst)} is not one of {', '.join(_show(a) for a in arg)}"
    if v == "const":
        return f"{_show(inst)} is not {_show(arg)}"
    if v == "minimum":
        return f"{_show(inst)} is less than the minimum of {_show_limit(arg)}"
    if v == "maximum":
        return f"{_show(inst)} is greater than the maximum of {_show_limit(arg)}"
    if v in ("minItems", "minProperties", "minLength") and arg == 1:
        return "must not be empty"
    if v == "maxItems":
        return f"has {len(inst)} items, more than the maximum of {arg}"
    return err.message


# --- pass 4: resolve ----------------------------------------------------------------------------


def _canonical_dtype(name: Any) -> str | None:
    if isinstance(name, str):
        if name in DTYPE_ALIASES:
            return DTYPE_ALIASES[name]
        if name in COMPLEX_DTYPES:
            return name
    return None


def _label(init: Initializer) -> str:
    """The name the user knows the initializer by (a preset's, else the class's registry name)."""
    return getattr(init, "preset", None) or init.name


def _check_name(name: str, ctx: _Ctx, what: str = "tensor name") -> None:
    if not name:
        raise ctx.error(f"{what} must not be empty")
    if name.startswith("/") or name.endswith("/"):
        raise ctx.error(f"{what} {name!r} must not start or end with '/'")
    if "//" in name:
        raise ctx.error(f"{what} {name!r} must not contain '//'")
    if name in RESERVED_NAMES:
        raise ctx.error(
            f"{what} {name!r} is reserved (output formats keep their metadata under it); "
            f"reserved: {', '.join(RESERVED_NAMES)}"
        )


class _Resolver:
    """Builds `TensorPlan`s from a schema-valid document."""

    def __init__(self, doc: dict, ctx: _Ctx) -> None:
        self.ctx = ctx
        # One deserialize per distinct initializer: a default shared by thousands of tensors is
        # built once, and equal configs give the same object.
        self.inits: dict[str, Initializer] = {}
        self.defaults = self.level(doc.get("defaults", {}), "defaults", tensor=False)
        self.rules: list[tuple[str, str, dict[str, Any]]] = []
        for i, rule in enumerate(doc.get("rules", [])):
            where = f"rules[{i}]"
            values = self.level(rule, where, tensor=False)
            if not values:
                raise ctx.error(
                    "the rule sets nothing; give it initializer, dtype or layout", where
                )
            self.rules.append((rule["match"], where, values))

    def initializer(self, raw: Any, where: str) -> Initializer:
        key = json.dumps(raw, sort_keys=True)
        if key not in self.inits:
            try:
                self.inits[key] = deserialize(copy.deepcopy(raw))
            except (ValueError, TypeError, OverflowError) as e:
                raise self.ctx.error(f"initializer: {e}", where) from None
        return self.inits[key]

    def level(self, entry: dict, where: str, tensor: bool) -> dict[str, Any]:
        """The keys one entry (tensor, rule or defaults) sets, with embedded keys taken out of
        its initializer mapping; ``initializer`` maps to (raw form, object)."""
        values: dict[str, Any] = {}
        for k in EMBEDDED_KEYS:
            if k in entry:
                values[k] = self._normalize(k, entry[k], where, tensor)
        raw = entry.get("initializer")
        if isinstance(raw, dict):
            raw = dict(raw)
            for k in EMBEDDED_KEYS:
                if k in raw:
                    inner = raw.pop(k)
                    value = self._normalize(k, inner, where, tensor)
                    if k in values and values[k] != value:
                        raise self.ctx.error(
                            f"{k} {_show(entry[k])} conflicts with {k} {_show(inner)} inside its "
                            "initializer; set it in one place",
                            where,
                        )
                    values[k] = value
            if not raw:
                raise self.ctx.error(
                    "the initializer mapping is empty once layout, dtype and axes are taken "
                    "out; give it a `name`",
                    where,
                )
        if raw is not None:
            values["initializer"] = (raw, self.initializer(raw, where))
        return values

    def _normalize(self, key: str, value: Any, where: str, tensor: bool) -> Any:
        if key in AXIS_KEYS:
            return (value,) if isinstance(value, int) else tuple(value)
        if key == "dtype":
            canonical = _canonical_dtype(value)
            if canonical is not None:
                return canonical
            if not tensor:
                # A tensor's unknown dtype is reported with its initializer (see plans());
                # a rule's or the defaults' must not wait for a tensor to use it.
                raise self.ctx.error(
                    f"dtype {value!r} is not a known dtype; allowed: {', '.join(KNOWN_DTYPES)}"
                    f"{_closest(value, [*DTYPE_ALIASES, *COMPLEX_DTYPES])}",
                    where,
                    cls=UnsupportedDtype,
                )
        return value

    def plans(self, name: str, entry: dict, origin: str) -> list[tuple[TensorPlan, str]]:
        """The plans of one tensor entry (several if it is split), each with its origin."""
        ctx = self.ctx
        where = f"tensor {name!r}"
        own = self.level(entry, where, tensor=True)
        levels = [("tensor", own)]
        levels += [(w, vals) for pat, w, vals in self.rules if fnmatch.fnmatchcase(name, pat)]
        levels.append(("defaults", self.defaults))
        resolved: dict[str, Any] = {}
        origins: dict[str, str] = {}
        for key in ("initializer", *EMBEDDED_KEYS):
            for level_name, vals in levels:
                if key in vals:
                    resolved[key], origins[key] = vals[key], level_name
                    break
        if "initializer" not in resolved:
            raw = DEFAULT_INITIALIZER
            resolved["initializer"] = (raw, self.initializer(raw, where))
            origins["initializer"] = "builtin"
        init_raw, init = resolved["initializer"]

        dtype_raw = resolved.get("dtype", DEFAULT_DTYPE)
        dtype = _canonical_dtype(dtype_raw)
        if dtype is None or not init.supports_dtype(dtype):
            allowed = [d for d in KNOWN_DTYPES if init.supports_dtype(d)]
            hint = _closest(dtype_raw, [*DTYPE_ALIASES, *COMPLEX_DTYPES]) if dtype is None else ""
            raise ctx.error(
                f"dtype {dtype_raw!r} cannot be produced by initializer {_label(init)!r}; "
                f"allowed: {', '.join(allowed)}{hint}",
                where,
                cls=UnsupportedDtype,
            )
        # No layout anywhere: the initializer's own (torch for torch.*, else keras).
        layout = resolved.get("layout", init.default_layout)
        in_axis, out_axis = resolved.get("in_axis"), resolved.get("out_axis")
        batch_axis = resolved.get("batch_axis", ())

        shape = tuple(entry["shape"])
        parts = self._parts(name, shape, entry, where)
        full = parts[0][3]
        for s in (shape, full):
            if math.prod(s) > MAX_ELEMENTS:
                raise ctx.error(
                    f"shape {list(s)} has {math.prod(s)} elements, more than the limit of "
                    f"{_show_limit(MAX_ELEMENTS)}",
                    where,
                )
        try:
            compute_fans(full, layout, in_axis, out_axis, batch_axis or None)
        except ValueError as e:
            raise ctx.error(str(e), where) from None
        # compute_fans accepted the axes, so they are in range: store them non-negative, so that
        # -1 and rank-1 compare equal when partitions of one stream are checked against each other.
        rank = len(full)
        in_axis, out_axis, batch_axis = (
            None if a is None else tuple(i % rank for i in a)
            for a in (in_axis, out_axis, batch_axis)
        )

        out = []
        for pname, pshape, stream, pfull, offset, extra, porigin in parts:
            source: dict[str, Any] = {
                "name": pname,
                "shape": list(pshape),
                "dtype": dtype,
                "layout": layout,
                "initializer": copy.deepcopy(init_raw),
            }
            for k, a in zip(AXIS_KEYS, (in_axis, out_axis, batch_axis), strict=True):
                if a is not None and (a or k != "batch_axis"):  # in_axis: [] is not unset
                    source[k] = list(a)
            if stream != pname or pfull != pshape:
                source["partition"] = {
                    "of": stream,
                    "full_shape": list(pfull),
                    "offset": list(offset),
                }
            source.update(extra)
            source["origin"] = dict(origins)
            plan = TensorPlan(
                name=pname,
                shape=pshape,
                dtype=dtype,
                initializer=init,
                layout=layout,
                in_axis=in_axis,
                out_axis=out_axis,
                batch_axis=batch_axis or (),
                stream=stream,
                full_shape=pfull,
                offset=offset,
                source=source,
            )
            out.append((plan, porigin if porigin else origin))
        return out

    def _parts(
        self, name: str, shape: tuple[int, ...], entry: dict, where: str
    ) -> list[tuple[str, tuple[int, ...], str, tuple[int, ...], tuple[int, ...], dict, str]]:
        """(name, shape, stream, full_shape, offset, extra source, origin) of each output tensor."""
        ctx = self.ctx
        part, split = entry.get("partition"), entry.get("split")
        rank = len(shape)
        if part is not None and split is not None:
            raise ctx.error("a tensor cannot have both `partition` and `split`", where)
        if part is not None:
            of = part.get("of", name)
            _check_name(of, ctx, f"{where}: partition.of")
            full, offset = tuple(part["full_shape"]), tuple(part["offset"])
            if len(full) != rank or len(offset) != rank:
                raise ctx.error(
                    f"partition full_shape {list(full)} and offset {list(offset)} must both have "
                    f"the rank of shape {list(shape)} ({rank})",
                    where,
                )
            for i, (o, d, f) in enumerate(zip(offset, shape, full, strict=True)):
                if o + d > f:
                    raise ctx.error(
                        f"partition does not fit in full_shape {list(full)}: on axis {i}, "
                        f"offset {o} + shape {d} = {o + d} > {f}",
                        where,
                    )
            return [(name, shape, of, full, offset, {}, "")]
        if split is not None:
            axis, count = split["axis"], split["parts"]
            if not -rank <= axis < rank:
                allowed = f"allowed: {-rank} .. {rank - 1}" if rank else "a 0-d tensor has no axes"
                raise ctx.error(
                    f"split axis {axis} is out of range for shape {list(shape)} ({allowed})", where
                )
            a = axis % rank
            if shape[a] % count:
                raise ctx.error(
                    f"split: axis {axis} has size {shape[a]}, which is not divisible into "
                    f"{count} parts",
                    where,
                )
            step = shape[a] // count
            out = []
            for k in range(count):
                pshape = shape[:a] + (step,) + shape[a + 1 :]
                offset = tuple(k * step if i == a else 0 for i in range(rank))
                extra = {"split": {"axis": a, "parts": count, "index": k}}
                out.append(
                    (
                        f"{name}/part_{k}",
                        pshape,
                        name,
                        shape,
                        offset,
                        extra,
                        f"the split of {name!r}",
                    )
                )
            return out
        return [(name, shape, name, shape, (0,) * rank, {}, "")]


def _check_streams(plans: list[TensorPlan], ctx: _Ctx) -> None:
    """Tensors that share a random stream must describe the same full tensor: a partition has
    the values of the matching slice of ``of`` only if both agree on everything the values
    depend on."""
    by_name = {p.name: p for p in plans}
    reference: dict[str, TensorPlan] = {}
    for p in plans:
        owner = by_name.get(p.stream)
        if owner is not None and owner.stream != owner.name:
            raise ctx.error(
                f"partition of {p.stream!r}, which is itself a slice of {owner.stream!r}; "
                f"point `of` at {owner.stream!r}",
                f"tensor {p.name!r}",
            )
        # Compare against the full tensor itself when the spec has it, else the first slice.
        ref = reference.setdefault(p.stream, owner or p)
        if ref is p:
            continue
        for what in (
            "full_shape",
            "dtype",
            "initializer",
            "layout",
            "in_axis",
            "out_axis",
            "batch_axis",
        ):
            mine, theirs = getattr(p, what), getattr(ref, what)
            if mine != theirs:
                show = repr if what == "initializer" else _show
                ref_what = "shape" if what == "full_shape" and ref is owner else what
                raise ctx.error(
                    f"{what} {show(_plain(mine))} differs from {ref_what} "
                    f"{show(_plain(theirs))} of tensor {ref.name!r}; tensors that share the "
                    f"random stream {p.stream!r} must agree on it",
                    f"tensor {p.name!r}",
                )


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _resolve(doc: dict, ctx: _Ctx) -> tuple[TensorPlan, ...]:
    resolver = _Resolver(doc, ctx)
    tensors = doc["tensors"]
    if isinstance(tensors, dict):
        entries = [(n, e, _render_path(["tensors", n])) for n, e in tensors.items()]
    else:
        entries = [(e["name"], e, f"tensors[{i}]") for i, e in enumerate(tensors)]
    plans: list[TensorPlan] = []
    seen: dict[str, str] = {}
    for name, entry, origin in entries:
        _check_name(name, ctx)
        for plan, porigin in resolver.plans(name, entry, origin):
            if plan.name in seen:
                raise ctx.error(
                    f"tensor name {plan.name!r} is defined twice ({seen[plan.name]} and {porigin})"
                )
            seen[plan.name] = porigin
            plans.append(plan)
    _check_streams(plans, ctx)
    return tuple(plans)


_KINDS = {list: "a list", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


def _parse(text: str, path: Path | None, fmt: str | None, sha256: str) -> Spec:
    path = Path(path) if path is not None else None
    ctx = _Ctx(path)
    if fmt is None:
        fmt = "json" if path is not None and path.suffix.lower() == ".json" else "yaml"
    if fmt not in ("yaml", "json"):
        raise ctx.error(f"unknown spec format {fmt!r}; allowed: json, yaml")
    text = text.removeprefix("\ufeff")  # a BOM (json.loads refuses it); the hash keeps it
    if not text.strip():
        raise ctx.error("the spec is empty")
    try:
        raw = _load_json(text, ctx) if fmt == "json" else _load_yaml(text, ctx)
        doc = _Cleaner(ctx, fmt == "yaml").clean(raw, [])
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
            f"{_show(doc['version'])} is not a supported spec version; this varscale reads "
            "version 1",
            "version",
        )
    _check_schema(doc, ctx)
    plans = _resolve(doc, ctx)
    return Spec(path=path, version=1, seed=doc.get("seed"), tensors=plans, sha256=sha256)
