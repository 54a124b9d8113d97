"""The commands that describe rather than produce: ``spec`` (a spec from a file), ``presets``
and ``schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from ..core.fans import LAYOUTS
from ..errors import VarscaleError
from ._console import exit_codes, stdout_console

#: `varscale spec`'s layout when none is given, listed first (PyTorch checkpoints are the
#: common case).
SPEC_LAYOUT = "torch"


@click.command(name="spec")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice([SPEC_LAYOUT, *(x for x in LAYOUTS if x != SPEC_LAYOUT)]), default=SPEC_LAYOUT, show_default=True, help="Fan convention and default initializers: PyTorch's or Keras'.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="The seed written into the spec.")
def spec_cmd(path: Path, layout: str, seed: int) -> None:
    """Print a spec for the tensors of FILE (names, shapes, dtypes; data is not read).

    Rules for biases, normalization weights, embeddings and kernels follow the layout's
    framework defaults and are printed, ready to edit.

    \b
    Example:
      varscale spec model.safetensors > model.yaml
      varscale spec model.weights.h5 --layout keras
    """
    from ..formats import open_weights
    from ..frameworks import dump_spec, spec_from_tensors

    with exit_codes():
        with open_weights(path) as wf:
            # Readers give logical dtypes: bfloat16 is named bfloat16, never void16.
            triples = [(i.name, tuple(i.shape), i.dtype.name) for i in wf.tensors()]
        try:
            doc, skipped = spec_from_tensors(triples, layout=layout, seed=seed)
        except ValueError as e:
            raise VarscaleError(f"'{path}': {e}") from None
        header = f"# varscale spec for {path} ({len(doc['tensors'])} tensors, layout {layout})\n"
        for name, dtype in skipped.items():
            header += f"# left out: {name} ({dtype}; varscale produces floats only)\n"
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
    _complex_table()


def _complex_table() -> None:
    """variance_scaling's complex laws, each resolved for scale / n = 1 (E|z|^2, bound)."""
    from ..core.initializers.variance_scaling import COMPLEX_VARIANTS, VarianceScaling

    table = Table(title="complex64 / complex128 (variance_scaling), per unit scale / n")
    for col in ("distribution", "corrected", "law", "E|z|^2", "max |z|", "reference"):
        table.add_column(col)
    for dist, corrected, reference in COMPLEX_VARIANTS:
        law = VarianceScaling(1.0, "fan_in", dist, corrected=corrected).law(1, 1, "complex64")
        bound = "none" if law.bound is None else f"{law.bound:.6g}"
        table.add_row(
            dist, str(corrected).lower(), law.kind, f"{law.variance:.6g}", bound, reference
        )
    stdout_console().print(table)


@click.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors: yaml-language-server $schema).

    \b
    Example:
      varscale schema > varscale.schema.json
    """
    from ..spec import schema as load_schema

    click.echo(json.dumps(load_schema(), indent=2, sort_keys=True))
