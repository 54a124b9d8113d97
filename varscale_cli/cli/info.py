"""The commands that describe rather than produce: ``spec`` (a spec from a file), ``presets``
and ``schema``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..core.fans import LAYOUTS
from ..errors import VarscaleError
from ..terminal import printable
from ._console import exit_codes, max_tensors_option, stdout_console

#: `varscale spec`'s layout when none is given, listed first: the checkpoints one reads a
#: spec from are mostly PyTorch's, and the spec it prints names its layout, so nothing
#: downstream depends on this default (``stats --init`` takes the initializer's own layout).
SPEC_LAYOUT = "torch"


@click.command(name="spec")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice([SPEC_LAYOUT, *(x for x in LAYOUTS if x != SPEC_LAYOUT)]), default=SPEC_LAYOUT, show_default=True, help="Fan convention and default initializers: PyTorch's or Keras'.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="The seed written into the spec.")
@max_tensors_option
def spec_cmd(path: Path, layout: str, seed: int, max_tensors: int) -> None:
    """Print a spec for the tensors of FILE (names, shapes, dtypes; data is not read).

    Rules for biases, normalization weights, embeddings and kernels follow the layout's
    framework defaults and are printed, ready to edit. The default layout is torch (most
    checkpoints are PyTorch's) and the printed spec states it, so `generate` and `stats
    --spec` read it the same way.

    \b
    Example:
      varscale spec model.safetensors > model.yaml
      varscale spec model.weights.h5 --layout keras
    """
    from ..formats import open_weights
    from ..frameworks import dump_spec, spec_from_tensors

    with exit_codes():
        with open_weights(path, max_tensors=max_tensors) as wf:
            # Readers give logical dtypes: bfloat16 is named bfloat16, never void16.
            triples = [(i.name, tuple(i.shape), i.dtype.name) for i in wf.tensors()]
        try:
            doc, skipped = spec_from_tensors(triples, layout=layout, seed=seed)
        except ValueError as e:
            raise VarscaleError(f"'{path}': {e}") from None
        # A comment ends at a newline: names from the file are escaped (ESC, newlines...).
        header = f"# varscale spec for {printable(path)} ({len(doc['tensors'])} tensors, layout {layout})\n"
        for name, dtype in skipped.items():
            header += f"# left out: {printable(name)} ({dtype}; varscale produces floats only)\n"
        click.echo(header + dump_spec(doc), nl=False)


#: Under the presets table: the names that mean different laws in Keras and PyTorch.
SAME_NAME_NOTE = (
    "The bare names are Keras': kaiming_normal (he_normal), xavier_normal (glorot_normal) and "
    "lecun_normal draw a normal truncated at 2 std (variance-corrected). PyTorch's "
    "kaiming_normal_ and xavier_normal_ are untruncated: use torch.kaiming_normal and "
    "torch.xavier_normal."
)


def _meaning(cls: type) -> str:
    """A class docstring's first paragraph as plain text (no reST ``literals`` or *emphasis*)."""
    import inspect
    import re

    first = (inspect.getdoc(cls) or "").split("\n\n")[0]
    return re.sub(r"``([^`]*)``|\*([^*]+)\*", lambda m: m.group(1) or m.group(2), " ".join(first.split()))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (docs/json.md).")
def presets(as_json: bool) -> None:
    """List every preset with its scale, mode, distribution and paper.

    Then the initializers with parameters, each with its law. Bare kaiming_normal /
    xavier_normal are Keras' truncated normals; torch.kaiming_normal / torch.xavier_normal
    are PyTorch's untruncated ones.

    \b
    Example:
      varscale presets
      varscale presets --json
    """
    from rich.text import Text

    from ..core.initializers import ALIASES, CLASSES, PRESETS
    from ..stats.layout import Column, fit_table
    from .plan_table import LAW_NAMES

    if as_json:
        from .documents import presets_document

        click.echo(json.dumps(presets_document(_meaning), sort_keys=True))
        return
    console = stdout_console()
    rows = []
    for p in PRESETS.values():
        aliases = [a for a, target in ALIASES.items() if target == p.name]
        name = p.name + (f" ({', '.join(aliases)})" if aliases else "")
        law = LAW_NAMES[p.build().distribution(1.0, 1.0).kind]
        rows.append((Text(name), Text(f"{p.scale:g}"), Text(p.mode), Text(law), Text(p.paper)))
    columns = (Column("name"), Column("scale"), Column("mode"), Column("law"), Column("reference", squeeze=True))
    console.print(fit_table(columns, rows, console.width, title=Text("presets"), caption=SAME_NAME_NOTE))
    console.print()
    params: list[tuple[Text, ...]] = []
    for name, cls in CLASSES.items():
        init = cls()
        cfg = {k: v for k, v in init.get_config().items() if k not in ("seed", "dtype")}
        law = LAW_NAMES[init.distribution(1.0, 1.0).kind]
        params.append((Text(name), Text(law), Text(json.dumps(cfg)), Text(_meaning(cls))))
    param_columns = (
        Column("name"), Column("law"), Column("parameters (defaults)", squeeze=True),
        Column("meaning", squeeze=True),
    )
    console.print(fit_table(param_columns, params, console.width, title=Text("initializers with parameters")))


@click.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors: yaml-language-server $schema), with the
    initializer names, their parameters and choices, layouts and dtypes as enums.

    \b
    Example:
      varscale schema > varscale.schema.json
    """
    from ..spec.editor_schema import editor_schema

    click.echo(json.dumps(editor_schema(), indent=2, sort_keys=True))
