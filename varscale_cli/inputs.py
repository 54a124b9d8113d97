"""The one guarded open for every file varscale reads: weight files, shards, index files, specs.

A path a user (or an index file) names may be anything: a FIFO with no writer (``open`` blocks
forever), ``/dev/zero`` or ``/dev/urandom`` (``st_size`` is 0, so a size check passes, and a
read never ends), a directory, or a symlink to any of those. `open_input` refuses all of them
*before* a byte is read:

1. ``stat`` (following symlinks, so a link to a regular file is fine): anything that is not a
   regular file is refused without being opened;
2. ``open`` with ``O_NONBLOCK``, so that a FIFO swapped in after step 1 cannot block the open;
3. ``fstat`` on the opened descriptor: what was opened is what is checked (closes the race
   between 1 and 2), then ``O_NONBLOCK`` is cleared (regular files ignore it anyway);
4. the size is checked against the caller's limit before anything is read, and `read_input`
   asks for at most one byte more than the limit (a file growing meanwhile is refused, not
   read on).

Every refusal is one line naming the file, as the caller's error type (`ReadError` for weight
files, `SpecError` for a spec: exit 1 and 2).
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

from .errors import ReadError, VarscaleError

__all__ = ["open_input", "read_input"]

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refuse(path: Path, what: str, error: type[VarscaleError], why: str) -> VarscaleError:
    return error(f"'{path}': cannot read the {what}: {why}")


def open_input(
    path: str | Path, what: str = "weight file", *, max_bytes: int | None = None,
    error: type[VarscaleError] = ReadError,
) -> io.BufferedReader:
    """Open ``path`` for reading if it is a regular file (of at most ``max_bytes``).

    Args:
        path: The file; a symlink is followed, but only to a regular file.
        what: What the file is, for messages ("weight file", "spec", "index").
        max_bytes: The largest size accepted, or None.
        error: The exception type to raise.

    Returns:
        A buffered binary file object on the checked descriptor; the caller closes it.

    Raises:
        error: missing, unreadable, not a regular file, or larger than ``max_bytes``.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _refuse(p, what, error, _reason(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(p, what, error, f"it is {_kind(st.st_mode)}, not a regular file")
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refuse(p, what, error, _reason(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _refuse(p, what, error, f"it is {_kind(st.st_mode)}, not a regular file")
        if max_bytes is not None and st.st_size > max_bytes:
            raise _refuse(
                p, what, error, f"it has {st.st_size:,} bytes, more than the {max_bytes:,} accepted"
            )
        os.set_blocking(fd, True)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise


def read_input(
    path: str | Path, what: str, max_bytes: int, *, error: type[VarscaleError] = ReadError
) -> bytes:
    """The whole content of the regular file ``path``, refused unread if over ``max_bytes``.

    Reads at most ``max_bytes + 1`` bytes whatever happens to the file meanwhile, so a file
    that grows past the limit after the size check is refused too.
    """
    with open_input(path, what, max_bytes=max_bytes, error=error) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise _refuse(Path(path), what, error, f"it grew past the {max_bytes:,} bytes accepted")
    return data


def _reason(exc: OSError) -> str:
    return " ".join(str(exc.strerror or exc).split())
