"""All-or-nothing output files: write a sibling temp file, then rename it into place.

A reader (or a later pipeline step) sees either the old file or the complete new one, never a
truncated one, whatever happens meanwhile: an exception, Ctrl-C, SIGTERM, a full disk. SIGKILL
and power loss cannot be caught; they leave a temp file named
``.{name}.varscale-tmp-{pid}-{random}`` next to the output, which the next run for the same
output removes once that pid is gone (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import signal
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from ..errors import OutputError, SpecError
from .sizes import human_bytes

_TEMP_TAG = ".varscale-tmp-"

#: File names are at most 255 bytes on every common filesystem. The temp name adds a leading
#: '.', the tag, a pid (10 digits at most), '-' and 8 hex digits to the output's name.
_NAME_MAX = 255
_NAME_BUDGET = _NAME_MAX - (1 + len(_TEMP_TAG) + 10 + 1 + 8)

# h5py reports OS errors inside an HDF5 message: "... errno = 28, error message = 'No space
# left on device', ...".
_HDF5_REASON = re.compile(r"error message = '([^']*)'")


@contextmanager
def atomic_output(
    path: Path, *, force: bool, planned_bytes: int = 0, fsync: bool = True
) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success move the finished file onto ``path``.

    Args:
        path: The final output path.
        force: Replace ``path`` if it exists; otherwise an existing ``path`` is an error (also
            when it appears while the file is being written: the final step will not clobber).
        planned_bytes: The expected file size, checked against the free space up front.
        fsync: Flush the file and the folder to disk before returning (durability across a
            power loss); off makes the rename atomic for other processes only.

    Yields:
        The temp path (already created, empty) to write the complete file to.

    Raises:
        OutputError: ``path`` exists (without ``force``) or is a folder; its folder is missing,
            not a folder or not writable; too little free space; or writing failed (ENOSPC,
            EFBIG, any OSError), with one line naming ``path`` and the reason.
    """
    path = Path(path)
    parent = path.parent
    check_output(path, force=force)
    remove_stale_temps(parent, path.name)
    _check_space(parent, planned_bytes)
    tmp = _create_temp(parent, path.name)
    restore = _catch_signals()
    try:
        try:
            yield tmp
            if fsync:
                _fsync_path(tmp)
            _move_into_place(tmp, path, force)
        except OSError as exc:
            raise OutputError(f"cannot write '{path}': {_reason(exc)}") from exc
        if fsync:
            _fsync_folder(parent)
    except BaseException:
        # Anything at all, KeyboardInterrupt and SystemExit included: no partial file stays.
        _unlink_quietly(tmp)
        raise
    finally:
        restore()


def remove_stale_temps(folder: Path, name: str) -> list[Path]:
    """Delete the temp files an earlier, killed run left for output ``name`` in ``folder``.

    Only files named ``.{name}.varscale-tmp-{pid}-...`` whose pid no longer runs are removed:
    a live pid may be another run writing the same output right now. (A pid reused by an
    unrelated process keeps its stale temp alive until that process ends; harmless.)

    Args:
        folder: The output's folder.
        name: The output's file name.

    Returns:
        The removed paths.
    """
    prefix = _temp_prefix(name)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid_text, sep, _ = entry.name[len(prefix) :].partition("-")
        if not sep or not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            os.unlink(entry.path)
        except OSError:  # gone already (a concurrent run) or not ours to delete
            continue
        removed.append(Path(entry.path))
    return removed


def _temp_prefix(name: str) -> str:
    # Shorten very long names so the temp name still fits in 255 bytes.
    while len(name.encode("utf-8", "surrogateescape")) > _NAME_BUDGET:
        name = name[:-1]
    return f".{name}{_TEMP_TAG}"


# --- the output-path policy -----------------------------------------------------------------

#: What a non-regular file is called in messages, by its ``stat.S_IFMT`` type.
_KINDS = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFSOCK: "a socket",
}


def check_output(
    path: Path,
    *,
    force: bool,
    planned_bytes: int = 0,
    new_folder: bool = False,
    avoid: Mapping[str, Path | None] | None = None,
) -> None:
    """The one output-path policy for every file varscale writes (weights, ``--report``,
    ``--plot``), checked before any work starts and again by `atomic_output`.

    Refused whatever ``force`` says: a path the same file as one of ``avoid`` (the spec, the
    weights just written: exit 2, the command line contradicts itself); a name longer than
    the file system allows; a symbolic link (replacing it would surprise whoever made it, and
    writing through it would put the file somewhere the command line does not name); a
    folder; anything else that is not a regular file (a device node, FIFO or socket: ``-o
    /dev/null --force`` as root would otherwise replace the real device). Refused without
    ``force``: an existing regular file. Also refused: a missing, non-folder or read-only
    parent folder.

    Every refusal `atomic_output` can give before it creates a file, without creating one
    (``--dry-run`` runs it, so a dry run refuses what the real run would).

    Args:
        path: The output path.
        force: Whether an existing regular file may be replaced.
        planned_bytes: The expected file size, checked against the free space.
        new_folder: The folder may not exist yet (a sharded run creates it): it is judged by
            its nearest existing ancestor, which must be a writable folder with the space.
        avoid: Paths ``path`` must not be (by what they are, e.g. ``{"the spec": spec}``);
            None values are skipped.

    Raises:
        SpecError: ``path`` is one of ``avoid``.
        OutputError: Any other refusal, one line naming ``path`` and the reason.
    """
    path = Path(path)
    for what, other in (avoid or {}).items():
        if other is not None and _same_file(path, Path(other)):
            raise SpecError(f"'{path}' is {what}; give the output another path")
    _check_name_length(path)
    parent = path.parent
    try:
        if parent.exists() or not new_folder:
            _check_target(path, force)
            _check_folder(parent)
        else:
            while not parent.exists() and parent != parent.parent:
                parent = parent.parent
            if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(
                    f"cannot create '{path.parent}': '{parent}' is not a writable folder"
                )
    except OSError as exc:  # ELOOP, EACCES on a parent, ENAMETOOLONG for the whole path
        raise OutputError(f"cannot write '{path}': {_reason(exc)}") from None
    _check_space(parent, planned_bytes)


def _same_file(a: Path, b: Path) -> bool:
    """Same path once resolved, or (both existing) the same inode: a hard link counts too."""
    try:
        if os.path.realpath(a) == os.path.realpath(b):
            return True
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or its nearest existing
    ancestor) takes: ``pathconf(NAME_MAX)``, 255 on every common file system."""
    for candidate in (folder, *folder.parents):
        try:
            return int(os.pathconf(candidate, "PC_NAME_MAX"))
        except (OSError, ValueError, AttributeError):
            continue
    return _NAME_MAX


def _check_name_length(path: Path) -> None:
    limit = _name_max(path.parent)
    for part in path.parts:
        size = len(os.fsencode(part))
        if size > limit:
            raise OutputError(
                f"cannot write '{path}': the file name '{part[:40]}...' is {size} bytes, longer "
                f"than the {limit} bytes the file system allows"
            )


def _check_target(path: Path, force: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        return  # a parent is a file: _check_folder names it
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        raise OutputError(
            f"'{path}' is a symbolic link; varscale neither writes through nor replaces one, "
            "even with --force: give the real path or remove the link"
        )
    if stat.S_ISDIR(mode):
        raise OutputError(f"'{path}' is a folder; give a file name for the output")
    if not stat.S_ISREG(mode):
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise OutputError(
            f"'{path}' is {kind}, not a regular file; varscale never replaces one, even with --force"
        )
    if not force:
        raise OutputError(f"'{path}' already exists; use --force to replace it")


def _check_folder(parent: Path) -> None:
    if not parent.exists():
        raise OutputError(f"the output folder '{parent}' does not exist")
    if not parent.is_dir():
        raise OutputError(f"the output folder '{parent}' is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"the output folder '{parent}' is not writable")


def _check_space(parent: Path, planned_bytes: int) -> None:
    if planned_bytes <= 0:
        return
    try:
        free = shutil.disk_usage(parent).free
    except OSError as exc:
        raise OutputError(f"cannot tell the free space in '{parent}': {_reason(exc)}") from exc
    if free < planned_bytes:
        raise OutputError(
            f"not enough free space in '{parent}': the output needs "
            f"{human_bytes(planned_bytes)} but only {human_bytes(free)} is free"
        )


def _create_temp(parent: Path, name: str) -> Path:
    # Creating the file is the real writability test: os.access says yes to root on a
    # read-only mount point's folder, and knows nothing of quotas or ACLs.
    prefix = _temp_prefix(name)
    while True:
        tmp = parent / f"{prefix}{os.getpid()}-{secrets.token_hex(4)}"
        try:
            # 0o666 & ~umask: the final file gets the permissions any new file would.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        except FileExistsError:  # pragma: no cover - 32 random bits collided
            continue
        except OSError as exc:
            raise OutputError(f"cannot create a file in '{parent}': {_reason(exc)}") from exc
        os.close(fd)
        return tmp


def _move_into_place(tmp: Path, path: Path, force: bool) -> None:
    if force:
        # Checked again at the last moment: a FIFO or link that appeared meanwhile survives.
        _check_target(path, force=True)
        os.replace(tmp, path)
        return
    # Without --force, a file that appeared at path while we wrote must survive: a hard link
    # fails if the target exists, where a rename would silently replace it.
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise OutputError(f"'{path}' already exists; use --force to replace it") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        # The filesystem has no hard links (FAT, some network shares): check, then rename.
        if path.exists() or path.is_symlink():
            raise OutputError(f"'{path}' already exists; use --force to replace it") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_folder(folder: Path) -> None:
    # Makes the rename itself durable. Best effort: some filesystems refuse to fsync a folder
    # (EINVAL), and by now the file is complete and in place, so failing the run would be wrong.
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # os.kill(0, ...) would signal our own process group; not a real temp
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OverflowError, OSError):
        return False
    return True


#: Signals received inside a `shielded` section, raised at the next safe point.
_PENDING: list[int] = []
_SHIELD_DEPTH = 0


def _raise_for(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)  # 128 + n is the shell's convention


def _on_signal(signum: int, frame: FrameType | None) -> None:
    if _SHIELD_DEPTH:
        _PENDING.append(signum)
    else:
        _raise_for(signum)  # unwinds through atomic_output's cleanup


def check_interrupt() -> None:
    """Raise a Ctrl-C or SIGTERM that arrived inside a `shielded` section (writers call this
    between chunks): KeyboardInterrupt or SystemExit(128 + n)."""
    if _PENDING:
        signum = _PENDING[0]
        _PENDING.clear()
        _raise_for(signum)


@contextmanager
def shielded() -> Iterator[None]:
    """Defer SIGINT/SIGTERM to the next `check_interrupt` (and the end of the section).

    For library code that cannot take an exception at any bytecode: a signal that lands inside
    h5py's write surfaces in h5py's weakref cleanup callback, where CPython ignores exceptions,
    so the run would go on to publish the file and exit 0.
    """
    global _SHIELD_DEPTH
    _SHIELD_DEPTH += 1
    try:
        yield
    finally:
        _SHIELD_DEPTH -= 1
    if not _SHIELD_DEPTH:
        check_interrupt()


def _catch_signals() -> Callable[[], None]:
    """Route SIGINT and SIGTERM through `_on_signal` while a file is written; return the undo.

    Only where they would otherwise stop the process (Python's KeyboardInterrupt handler for
    SIGINT, the default action for SIGTERM): an ignored signal stays ignored and a handler
    someone installed stays in charge. Signal handlers can only be set from the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return _noop
    _PENDING.clear()
    ours = []
    for signum, default in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is default:
            signal.signal(signum, _on_signal)
            ours.append((signum, default))

    def restore() -> None:
        # Put back the previous handler only if nobody replaced ours meanwhile.
        for signum, default in ours:
            if signal.getsignal(signum) is _on_signal:
                signal.signal(signum, default)

    return restore


def _noop() -> None:
    pass


def _reason(exc: OSError) -> str:
    """One line saying why: 'No space left on device', not a page of HDF5 error stack."""
    text = str(exc)
    match = _HDF5_REASON.search(text)
    if match:
        return match.group(1)
    if exc.errno and exc.strerror:
        return exc.strerror
    return text.splitlines()[0] if text else type(exc).__name__
