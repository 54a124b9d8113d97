"""Pass 2, clean: one walk over the parsed tree that turns it into plain JSON values and rejects
what JSON Schema cannot see (NaN/Infinity, non-string keys, dates, YAML 1.1 traps, JSON duplicate
keys). In YAML files it also turns float-looking strings into floats in float parameters.
"""

from __future__ import annotations

import math
import re
from typing import Any

from .messages import Ctx, render_path, show, yaml_pos
from .parse import DupDict, NonFinite, Trap

#: Initializer parameters that are floats. PyYAML (YAML 1.1) reads ``1e-3`` as a string, so in
#: YAML files a float-looking string in one of these is converted (docs/spec.md, "YAML pitfalls").
FLOAT_FIELDS = frozenset(
    {"scale", "factor", "a", "gain", "value", "mean", "stddev", "minval", "maxval"}
)
#: Initializer parameters that are booleans: the only places YAML 1.1's yes/no/on/off may stand.
BOOL_FIELDS = frozenset({"uniform", "corrected"})

_FLOAT_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
#: Guards against alias bombs ("billion laughs"): YAML aliases share objects, the clean pass
#: copies them, so a small file could otherwise expand to billions of values. 2,000,000 is 8
#: values per tensor (an entry, its shape and two dimensions, an initializer and a dtype make
#: 6) at the tensor limit, `resolve.MAX_TENSORS` = 250,000.
_MAX_VALUES = 2_000_000
_MAX_DEPTH = 32


def _surrogate(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (YAML and JSON both let an escape
    such as ``"\\ud800"`` spell one), or None: such a string is not Unicode text, cannot be
    encoded as UTF-8, and so cannot become a tensor name in any file or a key of the stream."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


class Cleaner:
    """Turns the parsed tree into fresh, plain JSON values (dict, list, str, int, float, bool,
    None), or raises. It is the only place that knows about the markers pass 1 leaves behind.
    """

    def __init__(self, ctx: Ctx, yaml_mode: bool) -> None:
        self.ctx = ctx
        self.yaml_mode = yaml_mode
        self.left = _MAX_VALUES

    def _check_text(self, text: str, path: list[Any]) -> None:
        at = _surrogate(text)
        if at is not None:
            raise self.ctx.error(
                f"{show(text)} holds the lone surrogate U+{ord(text[at]):04X} at character "
                f"{at}, which is not Unicode text; remove the escape or pair it",
                render_path(path),
            )

    def clean(self, obj: Any, path: list[Any], key: Any = None, in_init: bool = False) -> Any:
        """Clean ``obj`` found at ``path`` under mapping key ``key`` (inside an initializer?)."""
        self.left -= 1
        if self.left < 0:
            raise self.ctx.error(
                f"the spec holds more than {_MAX_VALUES:,} values (mappings, lists, numbers and "
                "strings, each use of a YAML alias counted again): 8 per tensor at the limit of "
                "250,000 tensors"
            )
        if len(path) > _MAX_DEPTH:
            raise self.ctx.error(f"nested more than {_MAX_DEPTH} levels deep", render_path(path))
        if isinstance(obj, dict):
            if isinstance(obj, DupDict):
                raise self.ctx.error(
                    f"duplicate key {show(obj.duplicate)}; JSON would silently keep the last one",
                    render_path(path),
                )
            out = {}
            for k, v in obj.items():
                if isinstance(k, Trap):
                    raise self.ctx.error(k.problem, render_path(path), pos=yaml_pos(k.mark))
                if not isinstance(k, str):
                    raise self.ctx.error(
                        f"key {show(k)} must be a string; quote it", render_path(path)
                    )
                self._check_text(k, path)
                out[k] = self.clean(v, [*path, k], k, in_init or k == "initializer")
            return out
        if isinstance(obj, list):
            return [self.clean(v, [*path, i], key, in_init) for i, v in enumerate(obj)]
        if obj is None or isinstance(obj, bool | int):
            return obj
        if isinstance(obj, str):
            self._check_text(obj, path)
            if self.yaml_mode and in_init and key in FLOAT_FIELDS and _FLOAT_RE.fullmatch(obj):
                obj = float(obj)  # PyYAML reads 1e-3 as a string (YAML 1.1 needs a dot)
            else:
                return obj
        if isinstance(obj, float):
            if not math.isfinite(obj):
                raise self.ctx.error(
                    f"{obj} is not a finite number; NaN and infinities are not allowed",
                    render_path(path),
                )
            return obj
        if isinstance(obj, Trap):
            if in_init and key in BOOL_FIELDS and isinstance(obj.value, bool):
                return obj.value
            raise self.ctx.error(obj.problem, render_path(path), pos=yaml_pos(obj.mark))
        if isinstance(obj, NonFinite):
            raise self.ctx.error(
                f"{obj.text} is not a finite number; NaN and infinities are not allowed",
                render_path(path),
            )
        # YAML dates, timestamps, !!binary, !!set...: not JSON, and never meant here.
        raise self.ctx.error(
            f"{show(str(obj))} is read as a YAML {type(obj).__name__}, which a spec cannot "
            "hold; quote it",
            render_path(path),
        )
