"""The exception tree. Core modules raise these; only cli.py turns them into exit codes.

Exit codes (see cli.py): SpecError and UsageError -> 2, every other VarscaleError -> 1,
a failed statistical or byte check -> 3.
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
    """A statistical check or a byte comparison failed (the file is readable but wrong)."""

    exit_code = 3
