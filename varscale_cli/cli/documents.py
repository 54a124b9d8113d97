"""JSON documents of the describing commands (schemas in docs/json/, described in docs/json.md)."""

from __future__ import annotations

from collections.abc import Callable

#: ``schema_version`` of ``presets --json``.
PRESETS_SCHEMA_VERSION = 1


def presets_document(meaning: Callable[[type], str]) -> dict[str, object]:
    """``varscale presets --json``: every preset (with its aliases and the law it draws) and
    every initializer class with its law, its parameters' defaults and ``meaning`` of it (the
    text the table prints)."""
    from ..core.initializers import ALIASES, CLASSES, PRESETS

    return {
        "schema_version": PRESETS_SCHEMA_VERSION,
        "command": "presets",
        "presets": [
            {
                "name": p.name,
                "aliases": sorted(a for a, target in ALIASES.items() if target == p.name),
                "scale": p.scale,
                "mode": p.mode,
                "distribution": p.distribution,
                "law": p.build().distribution(1.0, 1.0).kind,
                "reference": p.paper,
            }
            for p in PRESETS.values()
        ],
        "initializers": [
            {
                "name": name,
                "parameters": {
                    k: v for k, v in cls().get_config().items() if k not in ("seed", "dtype")
                },
                "law": cls().distribution(1.0, 1.0).kind,
                "meaning": meaning(cls),
            }
            for name, cls in CLASSES.items()
        ],
    }
