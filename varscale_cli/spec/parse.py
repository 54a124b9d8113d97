"""Pass 1, parse: spec text -> Python values, with markers for what the clean pass must report.

YAML goes through a duplicate-rejecting SafeLoader that keeps YAML 1.1's surprising scalars
(yes/no/on/off as booleans, base-60 ``1:30``, octal ``010``) as `Trap` markers with their
position; JSON goes through ``json`` with hooks that mark repeated keys (`DupDict`) and
NaN/Infinity/overflowing numbers (`NonFinite`) instead of silently accepting them. Syntax errors
and duplicate keys are reported with ``file:line:col``. The YAML loader itself lives in
`yaml_loader`, imported only for a YAML spec (PyYAML costs ~20 ms of start-up); this module
holds what both formats share.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .messages import Ctx

if TYPE_CHECKING:
    import yaml


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
