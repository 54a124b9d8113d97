"""What every command shares: the two consoles, error-to-exit-code translation, the progress bar.

Every `VarscaleError` becomes one ``Error: ...`` line on stderr and its exit code (2 for spec
and usage errors, 1 for runtime errors, 3 for a failed check); a `CheckFailed` whose outcome was
already shown exits 3 without that line.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

import click

from ..errors import CheckFailed, InternalError, VarscaleError
from ..formats.base import MAX_TENSORS
from ..terminal import printable

if TYPE_CHECKING:  # the engine imports numpy: load it when a command runs, not for --help
    from rich.console import Console

    from ..engine.generate import OnChunk
    from ..engine.resolve import ResolvedTensor
    from ..formats.base import WeightFile

# rich (~0.1 s of start-up) is imported by the functions that print with it, so a --quiet
# run never loads it.


#: ``--max-tensors`` of the commands that read a weight file (stats, verify, spec).
max_tensors_option = click.option(
    "--max-tensors", type=click.IntRange(min=1), default=MAX_TENSORS, show_default=True,
    help="Refuse a file that lists more tensors (bounds memory; raise it for a bigger checkpoint).",
)


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def stdout_console() -> Console:
    """Tables on stdout: a terminal's width (or $COLUMNS, which rich reads), else 160 columns
    when piped (tables fit any width, but a log file need not be folded at 80)."""
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
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
            click.echo(f"Error: {printable(e)}", err=True)  # names from files: escaped
        raise click.exceptions.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        click.echo("Error: interrupted; no output was written", err=True)
        sys.exit(130)


#: A phase shorter than this shows no bar: a bar that flashes for a moment only hides output.
PROGRESS_DELAY_S = 1.0

#: Characters of the current item's name the bar shows (its end: names differ at the end).
ITEM_CHARS = 32

#: ``advance(item, nbytes)``: ``nbytes`` more of ``item`` (a tensor's name) are done.
Advance = Callable[[str, int], None]


def _tail(name: str) -> str:
    return name if len(name) <= ITEM_CHARS else "..." + name[-(ITEM_CHARS - 3):]


@contextmanager
def progress(
    quiet: bool,
    phase: str,
    total_bytes: int,
    n_items: int,
    prefix: Callable[[str], str] | None = None,
) -> Iterator[Advance | None]:
    """The one progress display: a bar on stderr for a phase (``writing``, ``checking``,
    ``verifying``, ``plotting``) over ``total_bytes``, naming the current item and how many of
    ``n_items`` were reached, with throughput and time left.

    Yields None (nothing to report to) when ``quiet`` or stderr is not a terminal. The bar
    appears only once the phase has run `PROGRESS_DELAY_S`, and leaves no trace when done.
    ``prefix`` gives what to show before an item's name (its shard). Callers may advance it
    from several threads.
    """
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
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}", markup=False),  # a tensor name is not markup
        BarColumn(),
        DownloadColumn(binary_units=False),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task(phase, total=max(total_bytes, 1))
    lock = threading.Lock()
    seen: dict[str, None] = {}
    started = time.monotonic()
    shown = False

    def advance(item: str, nbytes: int) -> None:
        nonlocal shown
        with lock:
            new = item not in seen
            seen.setdefault(item)
            if not shown and time.monotonic() - started >= PROGRESS_DELAY_S:
                bar.start()
                shown = True
            if not new:
                bar.advance(task, nbytes)
                return
            where = f" {len(seen)}/{n_items}" if n_items > 1 else ""
            label = f"{phase}{where} {prefix(item) if prefix else ''}{_tail(item)}"
            # Redraw when the item changes, not only on rich's 10 Hz timer: the name shown is
            # the one being worked on (a chunk's own progress waits for the timer).
            bar.update(task, advance=nbytes, description=label, refresh=shown)

    try:
        yield advance
    finally:
        if shown:
            bar.stop()


def file_progress(quiet: bool, phase: str, wf: WeightFile) -> AbstractContextManager[Advance | None]:
    """`progress` over every tensor of an open file (the stats check, verify, the plot)."""
    infos = wf.tensors()
    return progress(quiet, phase, sum(i.nbytes for i in infos), len(infos))


@contextmanager
def progress_bar(
    quiet: bool, n_tensors: int, total: int, shard_of: Callable[[str], str] | None = None
) -> Iterator[OnChunk | None]:
    """`progress` for the writing phase of ``generate`` (the engine's callback takes the
    resolved tensor); ``shard_of`` names the shard a tensor goes to."""
    shard = (lambda name: f"{shard_of(name)}: ") if shard_of else None
    with progress(quiet, "writing", total, n_tensors, shard) as advance:
        if advance is None:
            yield None
            return
        report = advance

        def on_chunk(t: ResolvedTensor, nbytes: int) -> None:
            report(t.name, nbytes)

        yield on_chunk
