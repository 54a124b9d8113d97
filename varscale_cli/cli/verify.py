"""``varscale verify``: regenerate every tensor (from the file's provenance or a spec), compare bytes."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import CheckFailed, SpecError
from ..terminal import printable
from ._console import exit_codes, file_progress, max_tensors_option, stderr_console


@click.command(name="verify")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.argument("spec_path", metavar="[SPEC]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="With SPEC: overrides the spec's seed.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Regeneration threads (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@max_tensors_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def verify_cmd(
    path: Path, spec_path: Path | None, seed: int | None, workers: int | None, as_json: bool,
    max_tensors: int, quiet: bool,
) -> None:
    """Recompute every tensor of FILE and compare bytes.

    Expected values come from FILE's own provenance, or from SPEC when given. Exit 0 when
    identical, 3 naming the first differing tensor and element, 1 or 2 on errors.

    \b
    Example:
      varscale verify mlp.safetensors
      varscale verify mlp.safetensors configs/mlp.yaml --seed 0
    """
    from ..engine.chunks import worker_count
    from ..engine.resolve import resolve, resolve_seed
    from ..engine.verify import expected_from_provenance, expected_from_resolved, verify
    from ..formats import open_weights

    with exit_codes():
        with open_weights(path, max_tensors=max_tensors) as wf:
            if spec_path is not None:
                from ..spec import load_spec

                spec = load_spec(spec_path)
                expected = expected_from_resolved(resolve(spec, resolve_seed(spec, seed, spec_path)))
            else:
                if seed is not None:
                    raise SpecError("--seed needs SPEC: without it the file's own seed is used")
                expected = expected_from_provenance(wf.metadata, str(path))
            with file_progress(quiet, "verifying", wf) as advance:
                report = verify(wf, expected, worker_count(workers), on_chunk=advance)
        if as_json:
            click.echo(json.dumps(report.to_json(), sort_keys=True))
        else:
            stderr_console().print(printable(report.summary()))
        if not report.ok:
            raise CheckFailed(report.summary(), reported=True)
