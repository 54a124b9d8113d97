"""The one function that makes text from a file safe to print on a terminal: `printable`.

Tensor names, paths and values come from files (weight files, specs, index files) that may be
hostile. Printed raw, ``ESC [ ... m`` recolours or clears the screen, ``ESC ] ... BEL`` sets the
window title (or worse, on terminals that honour OSC 52 clipboard writes), C1 controls (U+0080
to U+009F) act as ESC sequences on some terminals, a newline forges a line of output (a fake
``OK:`` after an ``Error:``), bidirectional overrides (U+202E) reorder what is shown, and a lone
surrogate cannot even be encoded to UTF-8 (printing it raises).

`printable` escapes every character that is not printable in the sense of `str.isprintable`
(Unicode categories Cc, Cf, Cs, Co, Cn, Zl, Zp and the spaces other than U+0020) the way
Python's ``repr`` does (``\\x1b``, ``\\n``, ``\\u202e``, ``\\ud800``), and leaves everything else,
letters of every script included, as it is. Every place a file-derived name reaches stdout or
stderr goes through it: the ``Error:`` line, the stats table, the verify summary, the plan
table of ``generate`` and the comments of ``spec``.
"""

from __future__ import annotations

__all__ = ["printable"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(ch: str) -> str:
    if ch in _NAMED:
        return _NAMED[ch]
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object) -> str:
    """``text`` (made a str) with every non-printable character escaped as ``repr`` would.

    >>> printable("dense/kernel")
    'dense/kernel'
    >>> printable("a\\x1b[2Jb\\nOK")
    'a\\\\x1b[2Jb\\\\nOK'
    """
    s = str(text)
    if s.isprintable():  # the common case: one pass in C
        return s
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in s)
