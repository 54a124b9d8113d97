"""JSON documents of the describing commands (schemas in docs/json/, described in docs/json.md)."""

from __future__ import annotations

#: ``schema_version`` of ``presets --json``.
PRESETS_SCHEMA_VERSION = 1


def presets_document() -> dict[str, object]:
    """``varscale presets --json``: every preset (with its aliases) and every initializer
    class with its parameters' defaults, from the registry."""
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
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            }
            for name, cls in CLASSES.items()
        ],
    }
