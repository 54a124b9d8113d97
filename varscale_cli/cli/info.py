"""The commands that describe rather than produce: ``spec`` (a spec from a file), ``presets``
and ``schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..core.fans import LAYOUTS
from ..errors import VarscaleError
from ..frameworks.choices import CONVENTIONS
from ..terminal import printable
from ._console import exit_codes, max_tensors_option, stderr_console, stdout_console

if TYPE_CHECKING:
    from rich.console import Console

#: `varscale spec`'s layout when none is given, listed first: the checkpoints one reads a
#: spec from are mostly PyTorch's, and the spec it prints names its layout, so nothing
#: downstream depends on this default (``stats --init`` takes the initializer's own layout).
SPEC_LAYOUT = "torch"


@click.command(name="spec")
@click.argument("path", metavar="PATH", type=click.Path(path_type=Path))
@click.option("--convention", type=click.Choice(CONVENTIONS), default=CONVENTIONS[0], show_default=True, help="Whose fresh init to reproduce: a Hugging Face folder's (hf), a PyTorch state_dict's (torch), a Keras .weights.h5's (keras); auto picks by PATH.")
@click.option("--layout", type=click.Choice([SPEC_LAYOUT, *(x for x in LAYOUTS if x != SPEC_LAYOUT)]), hidden=True, help="The older spelling of --convention torch or keras.")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True, help="The seed written into the spec.")
@max_tensors_option
def spec_cmd(path: Path, convention: str, layout: str | None, seed: int, max_tensors: int) -> None:
    """Print a spec for the tensors of PATH (names, shapes, dtypes; data is not read).

    The spec reproduces the framework's own fresh initialization: Hugging Face's
    _init_weights for a folder with config.json, torch.nn's reset_parameters for a
    state_dict file, Keras' layer defaults for a .weights.h5. Its rules are printed, ready
    to edit; guesses the names cannot settle are reported on stderr. The default layout is
    torch (most checkpoints are PyTorch's) and the printed spec states it, so `generate` and
    `stats --spec` read it the same way.

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
        with open_weights(path, max_tensors=max_tensors) as wf:
            # Readers give logical dtypes: bfloat16 is named bfloat16, never void16.
            triples = [(i.name, tuple(i.shape), i.dtype.name) for i in wf.tensors()]
        try:
            derived = spec_from_path(path, triples, convention, seed=seed)
        except ValueError as e:
            raise VarscaleError(f"'{path}': {e}") from None
        doc = derived.doc
        # A comment ends at a newline: names from the file are escaped (ESC, newlines...).
        header = (
            f"# varscale spec for {printable(path)} ({len(doc['tensors'])} tensors, "
            f"convention {derived.convention})\n"
        )
        header += "".join(f"# {line}\n" for line in derived.notes)
        for name, why in derived.skipped.items():
            header += f"# left out: {printable(name)} ({why})\n"
        for warning in derived.warnings:
            stderr_console().print(f"warning: {printable(warning)}")
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
        # Bound to some fans (torch.default_bias takes another tensor's) and with a shape
        # (orthogonal's law needs one); the others ignore both.
        law = LAW_NAMES[init.bind_fans(1, 1).law(1.0, 1.0, shape=(1, 1)).kind]
        params.append((Text(name), Text(law), Text(json.dumps(cfg)), Text(_meaning(cls))))
    param_columns = (
        Column("name"), Column("law"), Column("parameters (defaults)", squeeze=True),
        Column("meaning", squeeze=True),
    )
    console.print(fit_table(param_columns, params, console.width, title=Text("initializers with parameters")))
    console.print()
    _complex_table(console)


def _complex_table(console: Console) -> None:
    """variance_scaling's complex laws, each resolved for scale / n = 1 (E|z|^2, bound)."""
    from rich.text import Text

    from ..core.initializers.variance_scaling import COMPLEX_VARIANTS, VarianceScaling
    from ..stats.layout import Column, fit_table
    from .plan_table import LAW_NAMES

    rows = []
    for dist, corrected, reference in COMPLEX_VARIANTS:
        law = VarianceScaling(1.0, "fan_in", dist, corrected=corrected).law(1, 1, "complex64")
        bound = "none" if law.bound is None else f"{law.bound:.6g}"
        rows.append((
            Text(dist), Text(str(corrected).lower()), Text(LAW_NAMES[law.kind]),
            Text(f"{law.variance:.6g}"), Text(bound), Text(reference),
        ))
    columns = (
        Column("distribution"), Column("corrected"), Column("law"), Column("E|z|^2", "right"),
        Column("max |z|", "right"), Column("reference", squeeze=True),
    )
    title = Text("complex64 / complex128 (variance_scaling), per unit scale / n")
    console.print(fit_table(columns, rows, console.width, title=title))


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
