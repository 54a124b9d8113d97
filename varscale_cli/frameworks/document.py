"""The spec document the framework functions build, and its YAML text (`dump_spec`)."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .rules import LayoutRules


def spec_document(
    rules: LayoutRules,
    seed: int,
    tensors: dict[str, dict[str, Any]],
    dtypes: list[str],
    shown: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``{version: 1, seed, defaults: {dtype?, layout, initializer}, rules?, tensors}``.

    `dtypes` are the tensors' own, in order: one shared dtype goes into ``defaults``, else each
    entry gets its ``dtype`` (after its other keys). `shown` is the ``rules:`` list, if any.
    """
    defaults: dict[str, Any] = {}
    if len(set(dtypes)) == 1:
        defaults["dtype"] = dtypes[0]
    else:
        for entry, dtype in zip(tensors.values(), dtypes, strict=True):
            entry["dtype"] = dtype
    defaults["layout"] = rules.layout
    defaults["initializer"] = copy.deepcopy(rules.default)
    doc: dict[str, Any] = {"version": 1, "seed": seed, "defaults": defaults}
    if shown:
        doc["rules"] = shown
    doc["tensors"] = tensors
    return doc


# --- YAML ---------------------------------------------------------------------------------------


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list | tuple):
        return 1 + max(map(_depth, value), default=0)
    return 0


class _Dumper(yaml.SafeDumper):
    """safe_dump, with mappings of depth <= 2 (a tensor entry, an initializer) and lists of
    scalars (shapes) on one line each."""


def _represent_dict(dumper: yaml.SafeDumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=_depth(data) <= 2)


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_depth(data) <= 1)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(list, _represent_list)


def dump_spec(doc: dict[str, Any]) -> str:
    """The YAML text of a spec document: ``yaml.safe_dump`` (PyYAML's safe representer) with
    ``sort_keys=False``, so tensors keep their order; each tensor entry and each initializer on
    one line where it fits. PyYAML quotes names YAML 1.1 would read as something else (``yes``,
    ``12:30``, ``2020-01-01``) and writes floats so they read back as floats, so
    `varscale_cli.spec.parse_spec` reads the same document back. A recorded ``hf_config``
    (a whole ``config.json``) comes last, in block style, one key per line."""
    body = {k: v for k, v in doc.items() if k != "hf_config"}
    text = yaml.dump(body, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    if "hf_config" in doc:
        config = {"hf_config": doc["hf_config"]}
        text += yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=120)
    return text
