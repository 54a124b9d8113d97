"""The YAML half of pass 1 (`parse`): a duplicate-rejecting SafeLoader that keeps YAML 1.1's
surprising scalars as `Trap` markers. A module of its own so that a JSON spec never imports
PyYAML."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from .messages import Ctx, show, yaml_pos
from .parse import MAX_TENSORS, TooManyTensors, Trap


class _SpecYAMLError(yaml.MarkedYAMLError):
    """A duplicate key: reported with its position but without the 'invalid YAML' prefix."""


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


@dataclass
class _Open:
    """A collection the event stream is inside (`_too_many_entries`)."""

    mapping: bool
    at_key: bool = True  # in a mapping: the next node is a key
    has_shape: bool = False  # in a mapping: one of its keys is "shape"


def _too_many_entries(text: str) -> bool:
    """Whether the text holds more than MAX_TENSORS mappings with a ``shape`` key, counted
    on libyaml's event stream before the pure-Python loader builds a node tree: that loader
    took 46 s and 840 MB to reach the limit in a 300,000-entry spec, libyaml's events take a
    few seconds and no memory. Only a text with more than MAX_TENSORS ``shape`` substrings
    can exceed the limit, so a real spec never pays for this. False when libyaml is missing
    or the text is not YAML it accepts: the loader then counts (and reports) as before."""
    if text.count("shape") <= MAX_TENSORS or not getattr(yaml, "__with_libyaml__", False):
        return False
    inside: list[_Open] = []  # the collections the stream is in, innermost last
    entries = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.CollectionStartEvent)):
                # A node: in a mapping, keys and values alternate.
                if inside and inside[-1].mapping:
                    top = inside[-1]
                    if top.at_key and isinstance(event, yaml.ScalarEvent) and event.value == "shape":
                        top.has_shape = True
                    top.at_key = not top.at_key
                if isinstance(event, yaml.CollectionStartEvent):
                    inside.append(_Open(mapping=isinstance(event, yaml.MappingStartEvent)))
            elif isinstance(event, yaml.CollectionEndEvent):
                if inside.pop().has_shape:
                    entries += 1
                    if entries > MAX_TENSORS:
                        return True
    except yaml.YAMLError:
        return False
    return False


def load_yaml(text: str, ctx: Ctx) -> Any:
    if _too_many_entries(text):
        raise TooManyTensors
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
