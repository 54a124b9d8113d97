"""What every command shares: the two consoles, error-to-exit-code translation, the progress bar.

Every `VarscaleError` becomes one ``Error: ...`` line on stderr and its exit code (2 for spec
and usage errors, 1 for runtime errors, 3 for a failed check); a `CheckFailed` whose outcome was
already shown exits 3 without that line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from ..errors import CheckFailed, InternalError, VarscaleError

if TYPE_CHECKING:  # the engine imports numpy: load it when a command runs, not for --help
    from rich.console import Console

    from ..engine.generate import OnChunk
    from ..engine.resolve import ResolvedTensor

# rich (~0.1 s of start-up) is imported by the functions that print with it, so a --quiet
# run never loads it.


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def stdout_console() -> Console:
    """Tables on stdout: a terminal's width, or 160 columns when piped (rich's default of 80
    would fold every row)."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=160)
    return console


def cores() -> int:
    """Worker threads when the command line does not say: all cores this process may use."""
    from ..engine.chunks import worker_count

    return worker_count(None)


@contextmanager
def exit_codes() -> Iterator[None]:
    """Translate library errors into one ``Error:`` line and their exit code; Ctrl-C into
    exit 130 with one line. (click.exceptions.Exit ends the command with that code, as
    click's own ClickException does after printing.)"""
    try:
        yield
    except (VarscaleError, InternalError) as e:
        if not (isinstance(e, CheckFailed) and e.reported):
            click.echo(f"Error: {e}", err=True)
        raise click.exceptions.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        click.echo("Error: interrupted; no output was written", err=True)
        sys.exit(130)


@contextmanager
def progress_bar(quiet: bool, n_tensors: int, total: int) -> Iterator[OnChunk | None]:
    """A progress bar on stderr when it is a terminal; no callback otherwise."""
    if quiet:
        yield None
        return
    console = stderr_console()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

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

        def advance(t: ResolvedTensor, nbytes: int) -> None:
            seen.add(t.name)
            progress.update(task, advance=nbytes, description=f"tensors {len(seen)}/{n_tensors}")

        yield advance
