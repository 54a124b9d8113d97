"""The exception tree. Library modules raise these; only the CLI turns them into exit codes.

Exit codes (see varscale_cli/cli/): SpecError (a malformed spec or command-line value) -> 2,
every other VarscaleError -> 1, a failed statistical or byte check (CheckFailed) -> 3.
InternalError is a broken invariant inside varscale, not something the user can fix -> 1.
"""

from __future__ import annotations


class VarscaleError(Exception):
    """Something went wrong that the user can fix; the message is one complete sentence."""

    exit_code = 1


class SpecError(VarscaleError):
    """The spec (or a command-line value standing in for it) is malformed or inconsistent."""

    exit_code = 2


class UnsupportedDtype(SpecError):
    """A tensor's dtype cannot be produced by its initializer or stored by the chosen format."""


class OutputError(VarscaleError):
    """The output cannot be written: it exists, the folder is read-only, or the disk is full."""


class ReadError(VarscaleError):
    """An input weight file is missing, truncated, malformed or hostile."""


class CheckFailed(VarscaleError):
    """A statistical check or a byte comparison failed (the file is readable but wrong).

    ``reported``: the outcome was already shown in full (a report on stdout or stderr), so the
    CLI exits 3 without an ``Error:`` line of its own.
    """

    exit_code = 3

    def __init__(self, message: str = "", *, reported: bool = False) -> None:
        super().__init__(message)
        self.reported = reported


class InternalError(Exception):
    """A broken invariant inside varscale (a bug to report, nothing the user can fix).

    Not a VarscaleError, so no handler mistakes it for a user error; the CLI still reports it
    as one ``Error:`` line and exit code 1.
    """

    exit_code = 1
