"""The ``varscale`` command line: a thin layer over the library.

Only this module imports click. Every `VarscaleError` becomes one ``Error: ...`` line on stderr
and its exit code: 2 for spec and usage errors, 1 for runtime errors, 3 for a failed check.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from . import __version__
from .errors import CheckFailed, SpecError, VarscaleError
from .formats import FORMATS

EXAMPLE_SPEC = "configs/mlp.yaml"


def _stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def _stdout() -> Console:
    """Tables on stdout: a terminal's width, or 160 columns when piped (rich's default of 80
    would fold every row)."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console


def describe_initializer(init: Any) -> str:
    """``he_normal`` for a preset, else ``name(k=v, ...)`` without seed and dtype."""
    preset = getattr(init, "preset", None)
    if preset:
        return str(preset)
    spec = init.to_spec()
    name = spec.pop("name")
    args = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in spec.items())
    return f"{name}({args})" if args else name


class _Exit(click.ClickException):
    """A VarscaleError carried through click with its own exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


@contextmanager
def _errors() -> Iterator[None]:
    """Translate library errors into exit codes; Ctrl-C into exit 130 with one line."""
    try:
        yield
    except VarscaleError as e:
        raise _Exit(str(e), e.exit_code) from None
    except KeyboardInterrupt:
        click.echo("Error: interrupted; no output was written", err=True)
        sys.exit(130)


def _cores() -> int:
    from .generate import default_workers

    return default_workers()


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000.0
    return f"{n} B"  # pragma: no cover


def _parse_size(text: str) -> int:
    """``5GB`` -> 5_000_000_000: decimal units as huggingface_hub's ``parse_size_to_int``."""
    units = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}
    t = text.strip().upper()
    for unit, mult in units.items():
        if t.endswith(unit):
            num = t[: -len(unit)].strip()
            try:
                value = float(num)
            except ValueError:
                break
            if value > 0 and math.isfinite(value):
                return int(value * mult)
            break
    raise SpecError(
        f"--max-shard-size {text!r} is not a size; use a positive number with TB, GB, MB, KB or B "
        "(decimal units: 5GB = 5,000,000,000 bytes)"
    )


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
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), help="Save the check's JSON report here.")
@click.option("--max-shard-size", "max_shard_size", help="Shard into OUTPUT (a folder) with at most this many tensor bytes each, e.g. 5GB (decimal units).")
@click.option("--num-shards", type=click.IntRange(1, 99999), help="Shard into this many balanced files in OUTPUT (a folder).")
@click.option("--shard-index", type=click.IntRange(0, 99998), help="Write only this shard (0-based) of the plan, plus the index.")
@click.option("--dask", "dask_address", metavar="SCHEDULER", help="Run the shards as tasks on this Dask scheduler (shared storage).")
@click.option("--no-fsync", is_flag=True, help="Skip the final fsync: still atomic for other processes, not durable across a power loss.")
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
    no_fsync: bool,
) -> None:
    """Sample every tensor of SPEC and write a weight file (or a sharded folder).

    \b
    Example:
      varscale generate configs/mlp.yaml -o mlp.safetensors --seed 1234
      varscale generate configs/convnet.yaml -o convnet.h5 --dry-run
      varscale generate big.yaml -o ckpt/ --max-shard-size 5GB
      varscale generate big.yaml -o ckpt/ --num-shards 8 --shard-index $SLURM_ARRAY_TASK_ID
    """
    from . import generate as gen
    from .spec import load_spec

    with _errors():
        spec = load_spec(spec_path)
        seed = seed if seed is not None else spec.seed
        if seed is None:
            raise SpecError(f"{spec_path}: no seed; set `seed:` in the spec or pass --seed")
        tensors = gen.resolve(spec, seed)
        if dry_run:
            _print_plan(tensors, seed)
            return
        if output is None:
            raise SpecError("missing -o/--output (or use --dry-run)")
        n_workers = workers or gen.default_workers()
        if max_shard_size is not None or num_shards is not None:
            _generate_sharded(
                spec, spec_path, tensors, seed, output, fmt, force, quiet, n_workers,
                max_shard_size, num_shards, shard_index, dask_address, no_check, report_path,
                not no_fsync,
            )
            return
        if shard_index is not None or dask_address is not None:
            raise SpecError("--shard-index and --dask need --max-shard-size or --num-shards")
        from . import formats as writers

        fmt = writers.format_for(output, fmt)
        metadata = gen.file_metadata(gen.provenance(spec, seed, tensors))
        total = sum(t.nbytes for t in tensors)
        started = time.perf_counter()
        with _progress(quiet, len(tensors), total) as advance:
            gen.write_file(
                tensors, metadata, output, fmt, force=force, workers=n_workers, on_chunk=advance,
                fsync=not no_fsync,
            )
        seconds = time.perf_counter() - started
        if not quiet:
            params = sum(t.count for t in tensors)
            _stderr().print(
                f"wrote {len(tensors)} tensors, {params:,} parameters, {_human(total)} to "
                f"{output} in {seconds:.2f} s ({_human(total / max(seconds, 1e-9))}/s)"
            )
        if not no_check:
            _check_written(output, quiet, report_path)


def _generate_sharded(
    spec: Any, spec_path: Path, tensors: list, seed: int, output: Path, fmt: str | None,
    force: bool, quiet: bool, workers: int, max_shard_size: str | None, num_shards: int | None,
    shard_index: int | None, dask_address: str | None, no_check: bool, report_path: Path | None,
    fsync: bool,
) -> None:
    from . import generate as gen
    from . import shards

    if fmt not in (None, "safetensors"):
        raise SpecError(f"sharded output is safetensors only, not {fmt}")
    if output.exists() and not output.is_dir():
        raise SpecError(f"'{output}' is a file; sharded output goes into a folder")
    max_bytes = _parse_size(max_shard_size) if max_shard_size is not None else None
    plan = shards.make_plan([t.nbytes for t in tensors], max_bytes, num_shards)
    output.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    if dask_address is not None:
        if shard_index is not None:
            raise SpecError("--dask runs every shard; drop --shard-index")
        written = shards.dask_run(
            dask_address, spec_path.read_text(encoding="utf-8-sig"), str(spec_path), seed,
            max_bytes, num_shards, output.resolve(), force=force, workers=workers,
        )
    else:
        indices = range(plan.count) if shard_index is None else [shard_index]
        prov = gen.provenance(spec, seed, tensors)
        chosen = [t for i in indices if 0 <= i < plan.count for t in (tensors[j] for j in plan.groups[i])]
        total = sum(t.nbytes for t in chosen)
        written = []
        with _progress(quiet, len(chosen), total) as advance:
            for i in indices:
                written.append(str(shards.write_shard(
                    tensors, prov, plan, i, output, force=force, workers=workers, on_chunk=advance,
                    fsync=fsync,
                )))
        shards.write_index(plan, tensors, output)
    seconds = time.perf_counter() - started
    if not quiet:
        _stderr().print(
            f"wrote {len(written)} of {plan.count} shard(s) to {output} in {seconds:.2f} s"
        )
    if not no_check and shard_index is None:
        _check_written(output, quiet, report_path)


def _print_plan(tensors: list, seed: int) -> None:
    table = Table(title=f"plan (seed {seed})")
    for col, justify in (
        ("name", "left"), ("shape", "left"), ("dtype", "left"), ("initializer", "left"),
        ("fan_in", "right"), ("fan_out", "right"), ("target std", "right"),
        ("sampler std", "right"), ("bytes", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for t in tensors:
        table.add_row(
            t.name, "x".join(map(str, t.plan.shape)) or "scalar", t.plan.dtype,
            describe_initializer(t.plan.initializer), str(t.fan_in), str(t.fan_out),
            f"{t.target_std:.6g}", f"{t.distribution.std:.6g}", f"{t.nbytes:,}",
        )
    total = sum(t.nbytes for t in tensors)
    params = sum(t.count for t in tensors)
    console = _stdout()
    console.print(table)
    console.print(f"{len(tensors)} tensors, {params:,} parameters, {_human(total)}")


@contextmanager
def _progress(quiet: bool, n_tensors: int, total: int) -> Iterator[Any]:
    """A progress bar on stderr when it is a terminal; a no-op callback otherwise."""
    console = _stderr()
    if quiet or not console.is_terminal:
        yield None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    seen: set[str] = set()
    with progress:
        task = progress.add_task(f"tensors 0/{n_tensors}", total=total)

        def advance(t: Any, nbytes: int) -> None:
            seen.add(t.name)
            progress.update(task, advance=nbytes, description=f"tensors {len(seen)}/{n_tensors}")

        yield advance


def _check_written(path: Path, quiet: bool, report_path: Path | None) -> None:
    from . import stats
    from .formats import open_weights

    with open_weights(path) as wf:
        targets = stats.targets_from_provenance(wf.metadata) or {}
        report = stats.check_file(wf, targets, workers=_cores())
    if report_path is not None:
        report_path.write_text(json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n")
    if not report.ok:
        _show_report(report, as_json=False)
        raise CheckFailed(
            f"'{path}' was written but failed its statistical check (see above; --no-check skips it)"
        )
    if not quiet:
        from .report import summary_line

        _stderr().print(summary_line(report), markup=False)


# --- stats -------------------------------------------------------------------------------------


@cli.command(name="stats")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), help="Targets from this spec (matched by tensor name).")
@click.option("--init", "init_name", help="Target initializer for every tensor (a preset name).")
@click.option("--layout", type=click.Choice(["keras", "torch"]), default="keras", show_default=True, help="Fan convention for --init.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), help="Write per-tensor histograms to this PNG.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=1e-3, show_default=True, help="Family-wise false-alarm rate for the whole file.")
def stats_cmd(
    path: Path,
    spec_path: Path | None,
    init_name: str | None,
    layout: str,
    as_json: bool,
    plot_path: Path | None,
    alpha: float,
) -> None:
    """Check every tensor of FILE against its target distribution.

    Exit 0 when every check passes, 3 when one fails, 1 or 2 on errors.

    \b
    Example:
      varscale stats mlp.safetensors
      varscale stats weights.npz --init he_normal --layout torch --json
    """
    from . import stats
    from .formats import open_weights

    with _errors():
        with open_weights(path) as wf:
            targets = _targets(wf, spec_path, init_name, layout)
            report = stats.check_file(wf, targets, alpha=alpha, workers=_cores())
            if plot_path is not None:
                from .report import plot_report

                plot_report(report, wf, plot_path)
        _show_report(report, as_json)
        if not report.ok:
            sys.exit(3)


def _targets(wf: Any, spec_path: Path | None, init_name: str | None, layout: str) -> dict:
    from . import stats
    from .initializers import get

    tensors = wf.tensors()
    if spec_path is not None:
        from .generate import resolve
        from .spec import load_spec

        spec = load_spec(spec_path)
        by_name = {t.name: t for t in resolve(spec, spec.seed or 0)}
        return {
            info.name: (
                stats.Target(
                    distribution=by_name[info.name].distribution,
                    target_std=by_name[info.name].target_std,
                    fan_in=by_name[info.name].fan_in,
                    fan_out=by_name[info.name].fan_out,
                    dtype=info.dtype,
                )
                if info.name in by_name
                else None
            )
            for info in tensors
        }
    if init_name is not None:
        try:
            init = get(init_name)
        except ValueError as e:
            raise SpecError(f"--init: {e}") from None
        return {
            info.name: stats.target_for(init, info.shape, info.dtype, layout=layout)
            for info in tensors
        }
    return stats.targets_from_provenance(wf.metadata) or {}


def _show_report(report: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), sort_keys=True))
        return
    from .report import stats_table, summary_line

    console = _stdout()
    console.print(stats_table(report))
    console.print(summary_line(report), markup=False)


# --- verify ------------------------------------------------------------------------------------


@cli.command(name="verify")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.argument("spec_path", metavar="[SPEC]", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), help="With SPEC: overrides the spec's seed.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Regeneration threads (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def verify_cmd(path: Path, spec_path: Path | None, seed: int | None, workers: int | None, as_json: bool) -> None:
    """Recompute every tensor of FILE and compare bytes.

    Expected values come from FILE's own provenance, or from SPEC when given. Exit 0 when
    identical, 3 naming the first differing tensor and element, 1 or 2 on errors.

    \b
    Example:
      varscale verify mlp.safetensors
      varscale verify mlp.safetensors configs/mlp.yaml --seed 0
    """
    from . import generate as gen
    from . import verify as vf
    from .formats import open_weights

    with _errors():
        with open_weights(path) as wf:
            if spec_path is not None:
                from .spec import load_spec

                spec = load_spec(spec_path)
                seed = seed if seed is not None else spec.seed
                if seed is None:
                    raise SpecError(f"{spec_path}: no seed; set `seed:` in the spec or pass --seed")
                expected = vf.expected_from_resolved(gen.resolve(spec, seed))
            else:
                if seed is not None:
                    raise SpecError("--seed needs SPEC: without it the file's own seed is used")
                expected = vf.expected_from_provenance(wf.metadata, str(path))
            report = vf.verify(wf, expected, workers or gen.default_workers())
        if as_json:
            click.echo(json.dumps(report.to_json(), sort_keys=True))
        else:
            _stderr().print(report.summary())
        if not report.ok:
            sys.exit(3)


# --- spec ----------------------------------------------------------------------------------------


@cli.command(name="spec")
@click.argument("path", metavar="FILE", type=click.Path(path_type=Path))
@click.option("--layout", type=click.Choice(["torch", "keras"]), default="torch", show_default=True, help="Fan convention and default initializers: PyTorch's or Keras'.")
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
    from .formats import open_weights
    from .frameworks import dump_spec, spec_from_tensors

    with _errors():
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


# --- small commands ----------------------------------------------------------------------------


@cli.command()
def presets() -> None:
    """List every preset with its scale, mode, distribution and paper.

    \b
    Example:
      varscale presets
    """
    from .initializers import ALIASES, CLASSES, PRESETS

    table = Table(title="presets")
    for col in ("name", "scale", "mode", "distribution", "reference"):
        table.add_column(col)
    for p in PRESETS.values():
        aliases = [a for a, target in ALIASES.items() if target == p.name]
        name = p.name + (f" ({', '.join(aliases)})" if aliases else "")
        table.add_row(name, f"{p.scale:g}", p.mode, p.distribution, p.paper)
    _stdout().print(table)
    other = Table(title="initializers with parameters")
    other.add_column("name")
    other.add_column("parameters (defaults)")
    other.add_column("meaning")
    for name, cls in CLASSES.items():
        cfg = {k: v for k, v in cls().get_config().items() if k not in ("seed", "dtype")}
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        other.add_row(name, json.dumps(cfg), doc)
    _stdout().print(other)


@cli.command()
def schema() -> None:
    """Print the spec's JSON Schema (for editors: yaml-language-server $schema).

    \b
    Example:
      varscale schema > varscale.schema.json
    """
    from .spec import schema as load_schema

    click.echo(json.dumps(load_schema(), indent=2, sort_keys=True))


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="varscale")


if __name__ == "__main__":  # pragma: no cover
    main()
