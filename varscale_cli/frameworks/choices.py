"""The conventions a derived spec can follow, in a module of their own: the CLI offers them
as ``varscale spec --convention`` choices without importing the conventions themselves."""

from __future__ import annotations

#: ``auto`` first (the default: picked by the path), then whose fresh init to reproduce
#: (`conventions.spec_from_path` dispatches on them).
CONVENTIONS: tuple[str, ...] = ("auto", "hf", "torch", "keras")
