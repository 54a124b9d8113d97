"""The commands that describe rather than produce: ``spec`` (a spec from a file), ``presets``
and ``schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ..core.fans import LAYOUTS
from ..errors import VarscaleError
from ..frameworks.conventions import CONVENTIONS
from ._console import exit_codes, stderr_console, stdout_console

#: `varscale spec`'s layout when none is given, listed first (PyTorch checkpoints are the
#: common case).
SPEC_LAYOUT = "torch"


@click.command(name="spec")
@click.argument("path", metavar="PATH", type=click.Path(path_type=Path))
@click.option("--convention", type=click.Choice(CONVENTIONS), default=CONVENTIONS[0], show_default=True, help="Whose fresh init to reproduce: a Hugging Face folder's (hf), a PyTorch state_dict's (torch), a Keras .weights.h5's (keras); auto picks by PATH.")
@click.option("--layout", type=click.Choice([SPEC_LAYOUT, *(x for x in LAYOUTS if x != SPEC_LAYOUT)]), hidden=True, help="The older spelling of --convention torch or keras.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="The seed written into the spec.")
def spec_cmd(path: Path, convention: str, layout: str | None, seed: int) -> None:
    """Print a spec for the tensors of PATH (names, shapes, dtypes; data is not read).

    The spec reproduces the framework's own fresh initialization: Hugging Face's
    _init_weights for a folder with config.json, torch.nn's reset_parameters for a
    state_dict file, Keras' layer defaults for a .weights.h5. Its rules are printed, ready
    to edit; guesses the names cannot settle are reported on stderr.

    \b
    Example:
      varscale spec tiny-llama/ > llama.yaml
      varscale spec model.safetensors --convention torch
      varscale spec model.weights.h5
    """
    from ..formats import open_weights
    from ..frameworks import dump_spec, spec_from_path

    if layout is not None and convention == CONVENTIONS[0]:
        convention = layout
    with exit_codes():
        with open_weights(path) as wf:
            # Readers give logical dtypes: bfloat16 is named bfloat16, never void16.
            triples = [(i.name, tuple(i.shape), i.dtype.name) for i in wf.tensors()]
        try:
            derived = spec_from_path(path, triples, convention, seed=seed)
        except ValueError as e:
            raise VarscaleError(f"'{path}': {e}") from None
        doc = derived.doc
        header = (
            f"# varscale spec for {path} ({len(doc['tensors'])} tensors, "
            f"convention {derived.convention})\n"
        )
        header += "".join(f"# {line}\n" for line in derived.notes)
        for name, why in derived.skipped.items():
            header += f"# left out: {name} ({why})\n"
        for warning in derived.warnings:
            stderr_console().print(f"warning: {warning}")
        click.echo(header + dump_spec(doc), nl=False)


@click.command()
def presets() -> None:
    """List every preset with its scale, mode, distribution and paper.

    \b
    Example:
      varscale presets
    """
    from ..core.initializers import ALIASES, CLASSES, PRESETS

    table = Table(title="presets")
    for col in ("name", "scale", "mode", "distribution", "reference"):
        table.add_column(col)
    for p in PRESETS.values():
        aliases = [a for a, target in ALIASES.items() if target == p.name]
        name = p.name + (f" ({', '.join(aliases)})" if aliases else "")
        table.add_row(name, f"{p.scale:g}", p.mode, p.distribution, p.paper)
    stdout_console().print(table)
    other = Table(title="initializers with parameters")
    other.add_column("name")
    other.add_column("parameters (defaults)")
    other.add_column("meaning")
    for name, cls in CLASSES.items():
        cfg = {k: v for k, v in cls().get_config().items() if k not in ("seed", "dtype")}
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        other.add_row(name, json.dumps(cfg), doc)
    stdout_console().print(other)


@click.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors: yaml-language-server $schema).

    \b
    Example:
      varscale schema > varscale.schema.json
    """
    from ..spec import schema as load_schema

    click.echo(json.dumps(load_schema(), indent=2, sort_keys=True))
