"""`show`: the one function that echoes a user's value into a message, capped and elided.

A spec can hold a 2 MB initializer name, a 1 MB dtype or a 100 kB tensor name; every error
message that quotes one goes through `show`, which keeps the head and the tail (where names
differ: ``model.layers.0...self_attn.q_proj.weight``) and says how long the value was, so an
``Error:`` line stays one readable line. It imports nothing from varscale, so the core (the
initializers' messages), the spec passes and the engine can all use it.

The cap, `SHOW_LIMIT` = 60 characters of the value's spelling, fits the longest spellings the
spec reference admits in full (preset names of 20 characters, dtypes of 10, initializer
parameters) and the long-but-real tensor names of transformer checkpoints
(``model.layers.31.self_attn.rotary_emb.inv_freq`` is 46), and leaves an ``Error:`` line with
its file name and place well inside a 200-column terminal.
"""

from __future__ import annotations

import json
from typing import Any

#: The most characters of a value a message quotes (see the module docstring).
SHOW_LIMIT = 60


def elide(text: str, limit: int = SHOW_LIMIT) -> str:
    """``text`` as is (no quotes) up to ``limit`` characters, else its ends and its length."""
    if len(text) <= limit:
        return text
    keep = max(limit // 2 - 2, 4)
    return f"{text[:keep]}...{text[-keep:]} ({len(text):,} characters)"


def show_py(value: Any, limit: int = SHOW_LIMIT) -> str:
    """`show` with Python's spelling for non-strings (``True``, ``None``): for the core's
    messages, which read like the Keras and PyTorch ones they mirror."""
    return show(value, limit, python=True)


def show(value: Any, limit: int = SHOW_LIMIT, *, python: bool = False) -> str:
    """A one-line rendering of ``value`` as the user wrote it (JSON spelling, or Python's with
    ``python``; strings with Python's quotes and escapes), elided in the middle past ``limit``
    characters with the value's full length, e.g. ``'nnnnnnnnnnnnnnnnnnnnnnnn...nnnnnnnnnnnn'
    (100,000 characters)``. Bounded time and memory whatever the size: only the kept ends are
    rendered."""
    if isinstance(value, str):
        if len(value) <= limit:
            text = repr(value)
            if len(text) <= limit + 2:
                return text
        keep = max(limit // 2 - 2, 4)
        head, tail = repr(value[:keep])[:-1], repr(value[-keep:])[1:]
        return f"{head}...{tail} ({len(value):,} characters)"
    if (isinstance(value, bool) or value is None) and not python:
        return json.dumps(value)
    if isinstance(value, int) and not isinstance(value, bool):
        # repr() refuses past 4300 digits (sys.int_info.default_max_str_digits), ~14,284 bits.
        if value.bit_length() > 14_000:
            return f"an integer of {value.bit_length():,} bits"
        text = repr(value)
    elif isinstance(value, float) or python:
        text = repr(value)
    else:
        try:
            text = json.dumps(value, separators=(", ", ": "), allow_nan=True)
        except (TypeError, ValueError):
            text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 3]}... ({len(text):,} characters)"


def closest_match(word: object, choices: list[str]) -> str | None:
    """The closest of ``choices`` to ``word`` by difflib (cutoff 0.6), or None; in bounded
    time: difflib's ratio is 2 M / (len(a) + len(b)) <= 2 len(b) / (len(a) + len(b)), so a
    word over 3x the longest choice can never reach the cutoff (and comparing a 2 MB word
    would take seconds)."""
    import difflib

    text = str(word)
    if len(text) > 3 * max((len(c) for c in choices), default=0):
        return None
    close = difflib.get_close_matches(text, choices, n=1)
    return close[0] if close else None
