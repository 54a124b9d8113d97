"""Pass 1, parse: spec text -> Python values, with markers for what the clean pass must report.

YAML goes through a duplicate-rejecting SafeLoader that keeps YAML 1.1's surprising scalars
(yes/no/on/off as booleans, base-60 ``1:30``, octal ``010``) as `Trap` markers with their
position; JSON goes through ``json`` with hooks that mark repeated keys (`DupDict`) and
NaN/Infinity/overflowing numbers (`NonFinite`) instead of silently accepting them. Syntax errors
and duplicate YAML keys are reported here with ``file:line:col``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import yaml

from .messages import Ctx, show, yaml_pos


class _SpecYAMLError(yaml.MarkedYAMLError):
    """A duplicate key: reported with its position but without the 'invalid YAML' prefix."""


@dataclass(eq=False)
class Trap:
    """A YAML 1.1 scalar whose meaning differs from what most readers (and YAML 1.2) expect.

    The loader keeps it instead of the value; the clean pass either accepts it (yes/no in a
    boolean parameter) or reports it with its position.
    """

    value: Any
    mark: yaml.Mark
    problem: str


class TooManyTensors(Exception):
    """Raised mid-parse once more than `max_entries` tensor entries were seen."""


#: The most tensors a spec may produce (after split expansion). Every output format stores
#: each tensor's provenance in one JSON text that readers cap at 100 MB (`formats.base.
#: MAX_JSON_BYTES`: the reference safetensors reader's header limit, which the npz manifest
#: shares), and safetensors adds the tensor's own header entry: the smallest tensor there is
#: (a 2-character name, shape [1], zeros) costs 398 header bytes, so no safetensors file
#: holds more than 100e6 / 398 = 251,256 tensors. Rounded down to 250,000, this is checked
#: while parsing (mappings with a ``shape`` key are tensor entries), so a million-tensor spec is refused in the time it takes to read it.
MAX_TENSORS = 250_000


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader (no arbitrary objects) that rejects duplicate keys.

    The pure-Python loader, not CSafeLoader: the C parser's messages differ in places, and spec
    files are small, so we pick identical messages everywhere over speed.
    """

    entries = 0

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        # Counted while composing, so a million-tensor file stops a quarter of the way in
        # instead of building the whole node tree first.
        node = super().compose_mapping_node(anchor)
        if any(isinstance(k, yaml.ScalarNode) and k.value == "shape" for k, _ in node.value):
            self.entries += 1
            if self.entries > MAX_TENSORS:
                raise TooManyTensors
        return node

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
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
                        problem=f"duplicate key {show(key)} (first at line {first.line + 1}, "
                        f"column {first.column + 1}); YAML would silently keep the last one",
                        problem_mark=key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def _construct_bool(loader: _SpecLoader, node: yaml.ScalarNode) -> bool | Trap:
    text = loader.construct_scalar(node)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    value = yaml.SafeLoader.bool_values[text.lower()]
    return Trap(
        value,
        node.start_mark,
        f"unquoted {show(text)} is read as the boolean {json.dumps(value)} by YAML 1.1; "
        "quote it, or write true/false where a boolean is meant",
    )


def _base60(text: str, value: float, node: yaml.ScalarNode) -> Trap:
    # YAML 1.1 reads 1:30 as 90 (sexagesimal, for times and angles); YAML 1.2 dropped it.
    return Trap(
        value,
        node.start_mark,
        f"{show(text)} is read as the base-60 number {value} by YAML 1.1; quote it",
    )


def _construct_int(loader: _SpecLoader, node: yaml.ScalarNode) -> int | Trap:
    value = yaml.SafeLoader.construct_yaml_int(loader, node)
    text = loader.construct_scalar(node)
    digits = text.lstrip("+-").replace("_", "")
    if ":" in digits:
        return _base60(text, value, node)
    if len(digits) > 1 and digits[0] == "0" and digits[1].isdigit():
        return Trap(
            value,
            node.start_mark,
            f"{show(text)} is read as the octal number {value} by YAML 1.1; "
            "drop the leading zero, or quote it",
        )
    return value


def _construct_float(loader: _SpecLoader, node: yaml.ScalarNode) -> float | Trap:
    value = yaml.SafeLoader.construct_yaml_float(loader, node)
    text = loader.construct_scalar(node)
    if ":" in text:
        return _base60(text, value, node)
    return value


_SpecLoader.add_constructor("tag:yaml.org,2002:bool", _construct_bool)
_SpecLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_SpecLoader.add_constructor("tag:yaml.org,2002:float", _construct_float)


def load_yaml(text: str, ctx: Ctx) -> Any:
    loader = None
    try:
        loader = _SpecLoader(text)  # the reader rejects control characters right here
        return loader.get_single_data()
    except _SpecYAMLError as e:
        raise ctx.error(e.problem or "", pos=yaml_pos(e.problem_mark)) from None
    except yaml.MarkedYAMLError as e:
        # PyYAML prints "context / at mark / problem / at mark" on four lines; keep its order.
        msg = e.problem or ""
        if e.context:
            at = e.context_mark
            where = f" (line {at.line + 1}, column {at.column + 1})" if at is not None else ""
            msg = f"{e.context}{where}: {msg}"
        raise ctx.error(f"invalid YAML: {msg}", pos=yaml_pos(e.problem_mark)) from None
    except yaml.YAMLError as e:  # ReaderError (control characters) has no mark
        raise ctx.error(f"invalid YAML: {e}") from None
    finally:
        if loader is not None:
            loader.dispose()


class DupDict(dict[str, Any]):
    """A JSON object that had a repeated key; the clean pass reports it with its path."""

    duplicate: str


@dataclass(frozen=True)
class NonFinite:
    """A JSON NaN/Infinity literal or an overflowing number such as 1e400."""

    text: str


class _Pairs:
    """The JSON object hook, counting tensor entries (objects with a ``shape`` key)."""

    def __init__(self) -> None:
        self.entries = 0

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if any(k == "shape" for k, _ in pairs):
            self.entries += 1
            if self.entries > MAX_TENSORS:
                raise TooManyTensors
        return _json_pairs(pairs)


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            out = DupDict(out)
            out.duplicate = k
            return out
        out[k] = v
    return out


def _json_float(text: str) -> Any:
    value = float(text)
    return value if math.isfinite(value) else NonFinite(text)


def load_json(text: str, ctx: Ctx) -> Any:
    try:
        # The hooks turn what json would silently accept (repeated keys: last wins; NaN,
        # Infinity, 1e400 -> inf) into markers that the clean pass reports with their path.
        return json.loads(
            text, object_pairs_hook=_Pairs(), parse_constant=NonFinite, parse_float=_json_float
        )
    except json.JSONDecodeError as e:
        raise ctx.error(f"invalid JSON: {e.msg}", pos=(e.lineno, e.colno)) from None
