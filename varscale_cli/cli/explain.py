"""``varscale explain``: a shape and an initializer under Keras/TF, PyTorch and JAX conventions."""

from __future__ import annotations

import json

import click

from ..core.fans import LAYOUTS
from ..errors import SpecError
from ._console import exit_codes, stdout_console


def _axes(text: str | None, what: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(a) for a in text.replace(" ", "").split(",") if a)
    except ValueError:
        raise SpecError(f"{what} {text!r} is not integers like 1 or 0,1") from None


@click.command(name="explain")
@click.argument("shape_arg", metavar="[SHAPE]", required=False)
@click.argument("init_arg", metavar="[INITIALIZER]", required=False)
@click.option("--shape", "shape_opt", help="The tensor shape: 3x3x64x128, 256,784 or [256, 784].")
@click.option("--init", "init_opt", help="A name (he_normal) or a YAML/JSON mapping ('{name: torch.kaiming_uniform, a: 2.236}').")
@click.option("--layout", type=click.Choice(LAYOUTS), default="keras", show_default=True, help="The layout varscale writes with (a spec's `layout:`).")
@click.option("--in-axis", help="Explicit input axes, JAX-style (e.g. 1 or 0,1).")
@click.option("--out-axis", help="Explicit output axes, JAX-style.")
@click.option("--batch-axis", help="Axes that count for neither fan (stacked heads, experts).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout (docs/json.md).")
def explain_cmd(
    shape_arg: str | None,
    init_arg: str | None,
    shape_opt: str | None,
    init_opt: str | None,
    layout: str,
    in_axis: str | None,
    out_axis: str | None,
    batch_axis: str | None,
    as_json: bool,
) -> None:
    """Show why frameworks disagree: fans per layout, n, std, bounds and the law drawn.

    For SHAPE and INITIALIZER: the fans under Keras/TF (..., in, out), PyTorch (out, in, *k)
    and JAX axes, the n, std and bounds each gives, what varscale writes, and the variance that
    TF r1.2's uncorrected truncated normal and torch's trunc_normal_ (absolute bounds) obtain.

    \b
    Example:
      varscale explain 3x3x64x128 he_normal
      varscale explain --shape 256,784 --init '{name: torch.kaiming_uniform, a: 2.236}' --layout torch
      varscale explain 8x256x784 glorot_uniform --in-axis 2 --out-axis 1 --batch-axis 0 --json
    """
    import yaml

    from ..core.initializers import deserialize
    from ..explain import explain, parse_shape

    with exit_codes():
        if shape_arg is not None and shape_opt is not None:
            raise SpecError("give the shape once: as SHAPE or as --shape")
        if init_arg is not None and init_opt is not None:
            raise SpecError("give the initializer once: as INITIALIZER or as --init")
        shape_text = shape_arg if shape_arg is not None else shape_opt
        init_text = init_arg if init_arg is not None else init_opt
        if shape_text is None or init_text is None:
            raise SpecError("explain needs a shape and an initializer, e.g. varscale explain 3x3x64x128 he_normal")
        try:
            shape = parse_shape(shape_text)
        except ValueError as e:
            raise SpecError(str(e)) from None
        try:
            obj = yaml.safe_load(init_text) if init_text.lstrip().startswith("{") else init_text
            init = deserialize(obj)
        except (yaml.YAMLError, ValueError, TypeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise SpecError(f"initializer {init_text!r}: {first}") from None
        try:
            result = explain(
                shape, init, layout, _axes(in_axis, "--in-axis"), _axes(out_axis, "--out-axis"),
                _axes(batch_axis, "--batch-axis"),
            )
        except ValueError as e:
            raise SpecError(f"shape {list(shape)}: {e}") from None
        if as_json:
            click.echo(json.dumps(result.to_json(), sort_keys=True))
            return
        console = stdout_console()
        for line in result.lines():
            console.print(line, markup=False, highlight=False)
