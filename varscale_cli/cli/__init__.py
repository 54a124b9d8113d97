"""The ``varscale`` command line: a thin click layer over the library.

Only this package imports click. The group, ``generate`` and ``stats`` live here; ``verify``
and the describing commands (``spec``, ``presets``, ``schema``) have a module each, and
_console.py holds what they share (consoles, exit codes, the progress bar).
"""

from __future__ import annotations

import gc
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .. import __version__
from ..core.fans import LAYOUTS
from ..engine.sizes import DECIMAL, human_bytes
from ..errors import CheckFailed, SpecError
from ..formats import FORMATS
from ..terminal import printable
from ._console import cores as _cores
from ._console import exit_codes as _errors
from ._console import file_progress as _file_progress
from ._console import max_tensors_option
from ._console import progress as _phase
from ._console import progress_bar as _progress
from ._console import stderr_console as _stderr
from ._console import stdout_console as _stdout
from ._outputs import check_generate_outputs, check_plot_output, write_report
from .explain import explain_cmd
from .info import presets, schema, spec_cmd
from .verify import verify_cmd

if TYPE_CHECKING:  # numpy and the formats load when a command runs, not for --help
    from collections.abc import Callable

    from ..engine.postcheck import ChunkRecorder
    from ..engine.resolve import ResolvedTensor
    from ..engine.shards import ShardPlan
    from ..stats import FileReport


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="varscale")
def cli() -> None:
    """Reproducible variance-scaling (He, Glorot, LeCun) initial weights.

    \b
    Example:
      varscale generate configs/mlp.yaml -o mlp.safetensors --seed 0
      varscale stats mlp.safetensors

    Shell completion (bash): eval "$(_VARSCALE_COMPLETE=bash_source varscale)"
    """


# --- generate ----------------------------------------------------------------------------------


@cli.command()
@click.argument("spec_path", metavar="SPEC", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file (or folder for sharded output).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Output format (default: from the suffix).")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="Overrides the spec's seed.")
@click.option("--force", is_flag=True, help="Replace an existing output.")
@click.option("--dry-run", is_flag=True, help="Print the plan (fans, std, bytes) and write nothing.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Sampling threads (default: all cores).")
@click.option("--no-check", is_flag=True, help="Skip the statistical check of what was written.")
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Save the check's JSON report here.")
@click.option("--max-shard-size", "max_shard_size", help="Shard into OUTPUT (a folder) with at most this many tensor bytes each: 5GB (decimal), 5GiB (binary) or bytes.")
@click.option("--num-shards", type=click.IntRange(1, 99999), help="Shard into this many balanced files in OUTPUT (a folder).")
@click.option("--shard-index", type=click.IntRange(0, 99998), help="Write only this shard (0-based) of the plan, plus the index.")
@click.option("--dask", "dask_address", metavar="SCHEDULER", help="Run the shards as tasks on this Dask scheduler (shared storage).")
@click.option("--dask-timeout", type=click.FloatRange(0, min_open=True), metavar="SECONDS", help="How long to wait for the Dask scheduler to answer (default: dask's distributed.comm.timeouts.connect, 30 s).")
@click.option("--no-fsync", is_flag=True, help="Skip the final fsync: still atomic for other processes, not durable across a power loss.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout: the plan or what was written, and the check (docs/json.md).")
def generate(
    spec_path: Path,
    output: Path | None,
    fmt: str | None,
    seed: int | None,
    force: bool,
    dry_run: bool,
    quiet: bool,
    workers: int | None,
    no_check: bool,
    report_path: Path | None,
    max_shard_size: str | None,
    num_shards: int | None,
    shard_index: int | None,
    dask_address: str | None,
    dask_timeout: float | None,
    no_fsync: bool,
    as_json: bool,
) -> None:
    """Sample every tensor of SPEC and write a weight file (or a sharded folder).

    \b
    Example:
      varscale generate configs/mlp.yaml -o mlp.safetensors --seed 1234
      varscale generate configs/convnet.yaml -o convnet.h5 --dry-run
      varscale generate big.yaml -o ckpt/ --max-shard-size 5GB --dry-run
      varscale generate big.yaml -o ckpt/ --num-shards 8 --shard-index $SLURM_ARRAY_TASK_ID
    """
    from .. import formats
    from ..engine import generate as gen
    from ..engine.chunks import worker_count
    from ..engine.resolve import resolve, resolve_seed
    from ..spec import load_spec
    from .plan import generate_document, shard_plan_lines

    with _errors():
        spec = load_spec(spec_path)
        seed = resolve_seed(spec, seed, spec_path)
        tensors = resolve(spec, seed)
        from ..engine.precision import float8_warnings

        for line in float8_warnings(tensors):
            _stderr().print(line, markup=False)
        sharded = max_shard_size is not None or num_shards is not None
        if not sharded and (
            shard_index is not None or dask_address is not None or dask_timeout is not None
        ):
            raise SpecError(
                "--shard-index, --dask and --dask-timeout need --max-shard-size or --num-shards"
            )
        if output is None and not dry_run:
            raise SpecError("missing -o/--output (or use --dry-run)")
        if spec.hf_config is not None and output is not None and not dry_run:
            # A Hugging Face folder: config.json beside the weights. Imported only for such a
            # run (start-up time); the write_config calls below run under the same condition.
            from ..frameworks import hf

            weights = hf.weights_path(output, force=force)
            output = output if sharded else weights
        if output is not None:
            if not sharded:  # a suffix that contradicts --format is the clearer message
                formats.format_for(output, fmt)
            check_generate_outputs(spec_path, output, report_path, force=force, sharded=sharded)
        # Everything a run checks before its first byte, for the dry run too.
        job = None
        if sharded:  # imported only for a sharded run; `job` below is set only here
            from ..engine import shards

            run = shards.ShardedRun(
                spec=spec, spec_path=spec_path, tensors=tensors, seed=seed, output=output,
                fmt=fmt, max_shard_size=max_shard_size, num_shards=num_shards,
                shard_index=shard_index, dask_address=dask_address, force=force,
                workers=worker_count(workers), fsync=not no_fsync, dask_timeout=dask_timeout,
            )
            job = shards.prepare_sharded(run)
        elif output is not None:
            fmt = formats.format_for(output, fmt)
            metadata = gen.provenance(spec, seed, tensors).file_metadata()
            gen.check_write(tensors, metadata, output, fmt, force=force)
        elif fmt is not None:
            fmt = formats.get(fmt).name
            formats.check_items(fmt, gen.write_items(tensors, None))

        def document(written: list[str], report: FileReport | None) -> None:
            doc = generate_document(
                tensors=tensors, seed=seed, dry_run=dry_run, output=output, fmt=fmt, job=job,
                written=written, report=report,
            )
            click.echo(json.dumps(doc, sort_keys=True))

        if dry_run:
            if as_json:
                document([], None)
                return
            _print_plan(tensors, seed)
            if job is not None:
                for line in shard_plan_lines(job, tensors):
                    _stdout().print(line, markup=False)
            return
        assert output is not None  # refused above unless --dry-run
        if job is not None:
            started = time.perf_counter()
            result = shards.generate_sharded(
                job.run,
                lambda n, total: _progress(quiet, n, total, _shard_names(tensors, job.plan)),
            )
            if spec.hf_config is not None:
                hf.write_config(spec.hf_config, output)
            if not quiet:
                _stderr().print(
                    f"wrote {len(result.written)} of {result.count} shard(s) to {output} in "
                    f"{time.perf_counter() - started:.2f} s"
                )
            report = None
            if not no_check and shard_index is None:
                report = _check_written(output, quiet, report_path, as_json, force=force)
            if as_json:
                document(result.written, report)
            if report is not None and not report.ok:
                raise _check_failed(output)
            return
        assert fmt is not None
        metadata = gen.provenance(spec, seed, tensors).file_metadata()
        total = sum(t.nbytes for t in tensors)
        started = time.perf_counter()
        with _progress(quiet, len(tensors), total) as advance:
            recorded = gen.write_file(
                tensors, metadata, output, fmt, force=force, workers=worker_count(workers),
                on_chunk=advance, fsync=not no_fsync, record=not no_check,
            )
        if spec.hf_config is not None:
            hf.write_config(spec.hf_config, output.parent)
        seconds = time.perf_counter() - started
        if not quiet:
            params = sum(t.count for t in tensors)
            _stderr().print(
                f"wrote {len(tensors)} tensors, {params:,} parameters, {human_bytes(total, DECIMAL)} "
                f"to {output} in {seconds:.2f} s ({human_bytes(total / max(seconds, 1e-9), DECIMAL)}/s)"
            )
        report = None if no_check else _check_written(
            output, quiet, report_path, as_json, recorded, force=force
        )
        if as_json:
            document([str(output)], report)
        if report is not None and not report.ok:
            raise _check_failed(output)


def _shard_names(tensors: list[ResolvedTensor], plan: ShardPlan) -> Callable[[str], str]:
    """Tensor name -> ``shard 2/8``, for the progress bar (the plan generate_sharded follows)."""
    where = {tensors[j].name: i for i, group in enumerate(plan.groups) for j in group}
    return lambda name: f"shard {where[name] + 1}/{plan.count}"


def _print_plan(tensors: list[ResolvedTensor], seed: int) -> None:
    from .plan_table import plan_table

    console = _stdout()
    table = plan_table(tensors, seed, console.width)
    total = sum(t.nbytes for t in tensors)
    params = sum(t.count for t in tensors)
    console.print(table)
    console.print(f"{len(tensors)} tensors, {params:,} parameters, {human_bytes(total, DECIMAL)}")


def _check_written(
    path: Path, quiet: bool, report_path: Path | None, as_json: bool,
    recorded: ChunkRecorder | None = None, *, force: bool = False,
) -> FileReport:
    """The statistical check of what was just written; a failure's table is shown (on stderr
    with ``--json``, whose stdout is the one document). Of the values as they were written
    when the parallel writer recorded them (after proving the file holds them,
    engine/postcheck.py), else of the file read back."""
    from .. import stats
    from ..formats import open_weights

    if recorded is not None:
        spans = recorded.layout.tensors
        with _phase(quiet, "checking", sum(t.nbytes for t in spans), len(spans)) as advance:
            recorded.prove_written(path, advance)
        # The reader's own checks of the header against the file (no --max-tensors limit on
        # reading back the file just written: it holds the spec's tensors).
        with open_weights(path, max_tensors=2**63 - 1):
            pass
        report = recorded.report(path)
    else:
        with open_weights(path, max_tensors=2**63 - 1) as wf:
            targets = stats.targets_from_provenance(wf.metadata, str(path)) or {}
            with _file_progress(quiet, "checking", wf) as advance:
                report = stats.check_file(wf, targets, workers=_cores(), on_chunk=advance)
    if report_path is not None:
        write_report(report_path, report, force=force)
    if not report.ok:
        if as_json:
            from ..stats.render import summary_line

            _stderr().print(printable(summary_line(report)), markup=False)
        else:
            _show_report(report, as_json=False)
    elif not quiet:
        from ..stats.render import summary_line  # rich: only when printing

        _stderr().print(printable(summary_line(report)), markup=False)
    return report


def _check_failed(path: Path) -> CheckFailed:
    return CheckFailed(
        f"'{path}' was written but failed its statistical check (see above; --no-check skips it)"
    )


# --- stats -------------------------------------------------------------------------------------


@cli.command(name="stats")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), help="Targets from this spec (matched by tensor name).")
@click.option("--init", "init_name", help="Target initializer for every tensor (a preset name).")
@click.option("--layout", type=click.Choice(LAYOUTS), default=None, help="Fan convention for --init (default: the initializer's own, as in a spec: torch for torch.*, else keras).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Write per-tensor histograms to this PNG.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=1e-3, show_default=True, help="Family-wise false-alarm rate for the whole file.")
@max_tensors_option
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--force", is_flag=True, help="Replace an existing --plot file.")
def stats_cmd(
    path: Path,
    spec_path: Path | None,
    init_name: str | None,
    layout: str | None,
    as_json: bool,
    plot_path: Path | None,
    alpha: float,
    max_tensors: int,
    quiet: bool,
    force: bool,
) -> None:
    """Check every tensor of FILE against its target distribution.

    Targets come from FILE's provenance, a spec (--spec) or one initializer (--init). The
    fans of --init follow the initializer's framework, as they do in a spec: torch layout
    (out, in, *k) for torch.* initializers, keras (..., in, out) for the presets; --layout
    overrides it. (`varscale spec` defaults to torch because it writes PyTorch's
    initializers, and its output names the layout.)

    Exit 0 when every check passes, 3 when one fails, 1 or 2 on errors.

    \b
    Example:
      varscale stats mlp.safetensors
      varscale stats weights.npz --init he_normal --layout torch --json
    """
    from .. import stats
    from ..formats import open_weights

    with _errors():
        if plot_path is not None:
            check_plot_output(plot_path, path, force=force)
        with open_weights(path, max_tensors=max_tensors) as wf:
            targets = stats.targets_for_file(wf, spec_path, init_name, layout)
            with _file_progress(quiet, "checking", wf) as advance:
                report = stats.check_file(wf, targets, alpha=alpha, workers=_cores(), on_chunk=advance)
            if plot_path is not None:
                from ..stats.plot import plot_report

                with _file_progress(quiet, "plotting", wf) as advance:
                    plot_report(report, wf, plot_path, on_chunk=advance, force=force)
        _show_report(report, as_json)
        if not report.ok:
            raise CheckFailed("statistical check failed", reported=True)


def _show_report(report: FileReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
        return
    from ..stats.render import stats_table, summary_line

    console = _stdout()
    console.print(stats_table(report, console.width))
    console.print(printable(summary_line(report)), markup=False)


for _command in (verify_cmd, spec_cmd, presets, schema, explain_cmd):
    cli.add_command(_command)


def main() -> None:
    """Console-script entry point."""
    try:
        cli(prog_name="varscale")
    finally:
        # The interpreter's shutdown runs full garbage collections over every object the
        # imports made (numpy's, click's, ours): ~70 ms of an otherwise finished run, on one
        # core. Frozen objects are not traversed (gc.freeze). Cyclic garbage left at exit is
        # then not finalised: every file is closed, renamed or removed before this point
        # (engine/atomic.py), so that skips only freeing memory the process gives back.
        gc.freeze()


if __name__ == "__main__":  # pragma: no cover
    main()
