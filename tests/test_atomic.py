"""atomic_output: all-or-nothing files, clear refusals, and cleanup after crashes and signals."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from varscale_cli.engine.atomic import atomic_output, check_output, remove_stale_temps
from varscale_cli.engine.sizes import human_bytes
from varscale_cli.errors import OutputError, SpecError

ROOT = Path(__file__).resolve().parents[1]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".varscale-tmp-" in p.name)


def run_child(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )


def test_success_creates_the_file_and_leaves_no_temp(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    with atomic_output(out, force=False, planned_bytes=10) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".w.safetensors.varscale-tmp-")
        assert tmp.exists() and not out.exists()
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # like any new file, not mkstemp's 0600


def test_force_replaces_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    out.write_bytes(b"old")
    with atomic_output(out, force=True, fsync=False) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


def test_an_existing_file_without_force_is_refused_and_untouched(tmp_path: Path) -> None:
    out = tmp_path / "w.h5"
    out.write_bytes(b"old")
    with pytest.raises(OutputError) as err:
        with atomic_output(out, force=False):
            pytest.fail("the block must not run")
    assert str(err.value) == f"'{out}' already exists; use --force to replace it"
    assert out.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_file_appearing_during_the_write_is_not_clobbered(tmp_path: Path) -> None:
    out = tmp_path / "w.h5"
    with pytest.raises(OutputError, match="already exists"):
        with atomic_output(out, force=False) as tmp:
            tmp.write_bytes(b"ours")
            out.write_bytes(b"theirs")  # another process got there first
    assert out.read_bytes() == b"theirs"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(3)])
def test_any_exception_removes_the_temp_and_keeps_the_old_file(
    tmp_path: Path, exc: BaseException
) -> None:
    out = tmp_path / "w.safetensors"
    out.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_output(out, force=True) as tmp:
            tmp.write_bytes(b"partial")
            raise exc
    assert out.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_a_failed_first_write_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    with pytest.raises(ValueError):
        with atomic_output(out, force=False) as tmp:
            tmp.write_bytes(b"partial")
            raise ValueError
    assert list(tmp_path.iterdir()) == []


def test_os_errors_become_one_line_output_errors(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    with pytest.raises(OutputError) as err:
        with atomic_output(out, force=False):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert str(err.value) == f"cannot write '{out}': No space left on device"
    assert isinstance(err.value.__cause__, OSError)
    assert list(tmp_path.iterdir()) == []


def test_real_file_size_limit_in_every_writer(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes write() fail with EFBIG for real, in each writer's own I/O path
    # (h5py reports it as a RuntimeError from inside HDF5 when the file is closed).
    child = run_child(
        """
        import resource, signal, sys
        from pathlib import Path
        import numpy as np
        from varscale_cli import formats as writers
        from varscale_cli.engine.atomic import atomic_output
        from varscale_cli.errors import OutputError

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, resource.RLIM_INFINITY))
        a = np.ones(100_000, np.float32)
        items = [writers.WriteItem("w", a.shape, a.dtype, lambda: iter([a[:30_000], a[30_000:]]))]
        for fmt in writers.FORMATS:
            try:
                with atomic_output(Path(sys.argv[1]) / f"w.{fmt}", force=False) as tmp:
                    writers.write(fmt, tmp, items, {"format": "pt"})
            except OutputError as e:
                print(e)
        """,
        str(tmp_path),
    )
    stdout, stderr = child.communicate(timeout=30)
    assert child.returncode == 0, stderr
    assert stdout.splitlines() == [
        f"cannot write '{tmp_path / ('w.' + fmt)}': File too large"
        for fmt in ("safetensors", "npz", "hdf5")
    ]
    assert list(tmp_path.iterdir()) == []


def test_a_folder_as_output_is_refused(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        with atomic_output(tmp_path, force=True):
            pass


def test_a_missing_parent_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(OutputError) as err:
        with atomic_output(missing / "w.npz", force=False):
            pass
    assert str(err.value) == f"the output folder '{missing}' does not exist"


def test_a_parent_that_is_a_file_is_named(tmp_path: Path) -> None:
    parent = tmp_path / "file"
    parent.write_bytes(b"")
    with pytest.raises(OutputError) as err:
        with atomic_output(parent / "w.npz", force=False):
            pass
    assert str(err.value) == f"the output folder '{parent}' is not a folder"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="is not writable"):
            with atomic_output(folder / "w.npz", force=False):
                pass
    finally:
        folder.chmod(0o700)


@pytest.mark.skipif(
    not os.access("/sys", os.W_OK), reason="needs a folder os.access wrongly calls writable"
)
def test_a_folder_that_refuses_the_temp_file_is_named() -> None:
    # Root passes os.access on sysfs, yet cannot create files there: the real creation decides.
    with pytest.raises(OutputError) as err:
        with atomic_output(Path("/sys/w.npz"), force=False):
            pytest.fail("the block must not run")
    assert str(err.value) == "cannot create a file in '/sys': Permission denied"


def test_too_little_free_space_is_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as err:
        with atomic_output(tmp_path / "w.h5", force=False, planned_bytes=2**62):
            pytest.fail("the block must not run")
    assert str(err.value).startswith(
        f"not enough free space in '{tmp_path}': the output needs 4.0 EiB but only "
    )
    assert str(err.value).endswith(" is free")
    assert list(tmp_path.iterdir()) == []


def test_a_very_long_name_still_gets_a_temp(tmp_path: Path) -> None:
    out = tmp_path / ("n" * 250 + ".npz")
    with atomic_output(out, force=False) as tmp:
        assert len(tmp.name.encode()) <= 255
        tmp.write_bytes(b"x")
    assert out.read_bytes() == b"x"


def test_sigterm_is_restored_after_the_block(tmp_path: Path) -> None:
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("the test runner handles SIGTERM itself")
    with atomic_output(tmp_path / "w.npz", force=False):
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


_WRITE_AND_WAIT = """
    import sys, time
    from pathlib import Path
    from varscale_cli.engine.atomic import atomic_output

    with atomic_output(Path(sys.argv[1]), force=False) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"x" * 4096)
            f.flush()
            print(tmp.name, flush=True)
            time.sleep(60)
"""


def test_sigterm_mid_write_removes_the_temp(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    child = run_child(_WRITE_AND_WAIT, str(out))
    assert child.stdout is not None
    assert child.stdout.readline().strip() in leftovers(tmp_path)
    child.send_signal(signal.SIGTERM)
    child.communicate(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []


def test_sigkill_leaves_only_a_stale_temp_which_the_next_run_removes(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    out_other = tmp_path / "other.npz"
    child = run_child(_WRITE_AND_WAIT, str(out))
    assert child.stdout is not None
    temp_name = child.stdout.readline().strip()
    child.kill()
    child.communicate(timeout=30)  # reaps it: a zombie's pid would still look alive
    assert leftovers(tmp_path) == [temp_name] and not out.exists()

    # A temp of a live process (ours) and other outputs' temps are left alone.
    live = tmp_path / f".w.safetensors.varscale-tmp-{os.getpid()}-00000000"
    live.write_bytes(b"")
    other = tmp_path / f".other.npz.varscale-tmp-{child.pid}-00000000"
    other.write_bytes(b"")
    with atomic_output(out, force=False) as tmp:
        assert not (tmp_path / temp_name).exists()
        tmp.write_bytes(b"complete")
    assert out.read_bytes() == b"complete"
    assert leftovers(tmp_path) == sorted([live.name, other.name])
    assert remove_stale_temps(tmp_path, out_other.name) == [other]
    assert remove_stale_temps(tmp_path, out.name) == []


def test_human_bytes() -> None:
    assert human_bytes(0) == "0 B"
    assert human_bytes(1023) == "1023 B"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(5 * 2**30) == "5.0 GiB"
    assert human_bytes(2**62) == "4.0 EiB"


# --- the output-path policy (check_output): what is refused even with --force ----------------


def _special(kind: str, path: Path) -> Path:
    """A FIFO, socket, character device (root only: a copy of /dev/null's numbers, made
    inside the test folder, never the real one), dangling symlink (to ``target`` beside it)
    or folder at ``path``."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        import socket

        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    elif kind == "chardev":
        try:
            os.mknod(path, 0o600 | __import__("stat").S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")
    elif kind == "symlink":
        path.symlink_to(path.with_name("target"))
    elif kind == "folder":
        path.mkdir()
    return path


@pytest.mark.parametrize(
    ("kind", "needle"),
    [
        ("fifo", "is a named pipe (FIFO), not a regular file"),
        ("socket", "is a socket, not a regular file"),
        ("chardev", "is a character device, not a regular file"),
        ("symlink", "is a symbolic link"),
    ],
)
@pytest.mark.parametrize("force", [False, True])
def test_a_special_file_or_link_is_refused_even_with_force(
    tmp_path: Path, kind: str, needle: str, force: bool
) -> None:
    out = _special(kind, tmp_path / "w.safetensors")
    before = os.lstat(out)
    with pytest.raises(OutputError) as err:
        with atomic_output(out, force=force, fsync=False) as tmp:
            tmp.write_bytes(b"new")
    assert str(err.value).startswith(f"'{out}' ") and needle in str(err.value)
    after = os.lstat(out)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "target").exists()  # nothing written through the link


def test_a_fifo_appearing_during_a_force_write_is_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    with pytest.raises(OutputError, match="named pipe"):
        with atomic_output(out, force=True, fsync=False) as tmp:
            tmp.write_bytes(b"new")
            os.mkfifo(out)
    assert (os.lstat(out).st_mode & 0o170000) == 0o010000
    assert leftovers(tmp_path) == []


def test_a_name_longer_than_the_file_system_allows_is_one_line(tmp_path: Path) -> None:
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    out = tmp_path / ("n" * (limit - len(".npz") + 1) + ".npz")
    with pytest.raises(OutputError) as err:
        check_output(out, force=True)
    assert f"is {limit + 1} bytes, longer than the {limit} bytes the file system allows" in str(err.value)
    check_output(tmp_path / ("n" * (limit - 4) + ".npz"), force=False)  # exactly the limit: fine


def test_an_output_that_is_an_input_is_a_usage_error(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("x")
    for same in (spec, tmp_path / "." / "s.yaml"):
        with pytest.raises(SpecError, match="is the spec; give the output another path"):
            check_output(same, force=True, avoid={"the spec": spec})
    os.link(spec, tmp_path / "hard.yaml")  # another name for the same file
    with pytest.raises(SpecError, match="is the spec"):
        check_output(tmp_path / "hard.yaml", force=True, avoid={"the spec": spec})
    check_output(tmp_path / "other.json", force=False, avoid={"the spec": spec, "none": None})
    assert spec.read_text() == "x"
