"""`spec_from_tensors`: a spec for the tensors of any weight file (``varscale spec FILE``)."""

from __future__ import annotations

import copy
from typing import Any

from ..core.dtypes import SAMPLED
from .document import spec_document
from .rules import layout_rules


def spec_from_tensors(
    tensors: list[tuple[str, tuple[int, ...], str]], *, layout: str = "torch", seed: int = 0
) -> tuple[dict[str, Any], dict[str, str]]:
    """A spec for tensors read from any weight file: ``(name, shape, dtype name)`` triples.

    The layout's rules (`varscale_cli.frameworks.rules.RULES`) appear in the spec, so a user
    edits one line to change every bias; only the rules some tensor matches are shown. A tensor
    the shown rules would get wrong (they match names, not ranks) carries its own initializer.
    Returns the document and the tensors left out (non-float dtypes: name -> dtype).

    Raises:
        ValueError: an unknown layout, or no float tensor at all.
    """
    rules = layout_rules(layout)
    shown = rules.shown
    skipped: dict[str, str] = {}
    entries: dict[str, dict[str, Any]] = {}
    used: set[int] = set()
    dtypes: list[str] = []
    for name, shape, dtype in tensors:
        if dtype not in SAMPLED:
            skipped[name] = dtype
            continue
        want = rules.initializer_for(name, tuple(shape))
        want = rules.default if want is None else want
        ruled = rules.shown_match(name)
        got = rules.default if ruled is None else shown[ruled].initializer
        entry: dict[str, Any] = {"shape": list(shape)}
        if ruled is not None:
            used.add(ruled)
        if got != want:
            entry["initializer"] = copy.deepcopy(want)
        entries[name] = entry
        dtypes.append(dtype)
    if not entries:
        raise ValueError("the file has no float tensors; varscale only produces floats")
    kept = [
        {"match": rule.match, "initializer": copy.deepcopy(rule.initializer)}
        for i, rule in enumerate(shown)
        if i in used
    ]
    return spec_document(rules, seed, entries, dtypes, kept), skipped
