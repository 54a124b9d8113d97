"""Faults and hostile conditions, through the real command line in a subprocess.

Kill -9 and Ctrl-C in the middle of a multi-GB generate, a full disk (RLIMIT_FSIZE and a small
tmpfs), the free-space pre-check, and destinations that cannot be written (a read-only mount, a
parent that is a file, a parent that does not exist). Every case checks the same promises:
exit code, exactly one ``Error:`` line on stderr, no file at the output (or the old one
untouched), and no temp file left behind.

The tmpfs cases need ``mount`` (root in a sandbox that allows it); they skip otherwise.
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

GB = 10**9
MB = 10**6

#: 6 x 16384 x 8192 float32 = 3.2 GB: takes several seconds to write on any machine, so a
#: signal sent once the temp file has grown is sure to land mid-write.
BIG_SPEC = "version: 1\nseed: 0\ntensors:\n" + "".join(
    f"  layer_{i}/kernel: {{shape: [16384, 8192]}}\n" for i in range(6)
)
BIG_BYTES = 6 * 16384 * 8192 * 4

SMALL_SPEC = """\
version: 1
seed: 0
tensors:
  dense/kernel: {shape: [64, 32]}
  dense/bias: {shape: [32], initializer: zeros}
"""

#: 1024 x 1024 float32 = 4 MiB of data: more than the 1 MB file-size limit below.
MEDIUM_SPEC = """\
version: 1
seed: 0
tensors:
  w: {shape: [1024, 1024], dtype: float32}
  b: {shape: [1024], dtype: bfloat16}
"""

#: 2**47 float64 elements = 1.1 PB: valid (under the 2**48 element limit), never fits on disk.
HUGE_SPEC = """\
version: 1
seed: 0
tensors:
  w: {shape: [8388608, 16777216], dtype: float64}
"""

#: How far the temp file must have grown before the signal is sent, and how long to wait.
GROWN_BYTES = 50 * MB
GROW_TIMEOUT = 10.0


def _cli(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "varscale_cli", *map(str, args)]


def _run(*args: str | Path, preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cli(*args), capture_output=True, text=True, timeout=120, preexec_fn=preexec_fn
    )


def _temps(folder: Path, name: str = "out.safetensors") -> list[Path]:
    return sorted(folder.glob(f".{name}.varscale-tmp-*"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_one_error_line(result: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    """Exit ``code``, stderr exactly one line ``Error: ...`` containing every needle."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _need_free(path: Path, nbytes: int) -> None:
    free = shutil.disk_usage(path).free
    if free < nbytes:
        pytest.skip(f"needs {nbytes / GB:.0f} GB free next to {path}, only {free / GB:.1f} GB")


def _wait_for_growth(
    proc: subprocess.Popen, folder: Path, threshold: int, name: str = "out.safetensors"
) -> Path:
    """The temp file once it holds ``threshold`` bytes (the run is then surely mid-write)."""
    deadline = time.monotonic() + GROW_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the generate ended (exit {proc.returncode}) before it was signalled")
        for tmp in _temps(folder, name):
            try:
                if tmp.stat().st_size >= threshold:
                    return tmp
            except FileNotFoundError:
                pass
        time.sleep(0.02)
    # A slow machine: settle for any temp file with data in it.
    found = [t for t in _temps(folder, name) if t.exists() and t.stat().st_size > 0]
    if not found:
        proc.kill()
        proc.wait()
        pytest.fail(f"no temp file grew within {GROW_TIMEOUT} s")
    return found[0]


@pytest.fixture
def big_run(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a 3.2 GB generate into tmp_path; kills it and frees the disk at the end."""
    _need_free(tmp_path, 6 * GB)
    spec = _write(tmp_path / "big.yaml", BIG_SPEC)
    procs: list[subprocess.Popen] = []

    def start(*extra: str, name: str = "out.safetensors") -> subprocess.Popen:
        proc = subprocess.Popen(
            _cli("generate", spec, "-o", tmp_path / name, "--no-check", *extra),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    for leftover in tmp_path.iterdir():
        if leftover.is_file():
            leftover.unlink()


# --- kill -9 -----------------------------------------------------------------------------------


def test_sigkill_mid_write_leaves_no_output_and_the_next_run_removes_the_temp(
    tmp_path: Path, big_run: Callable[..., subprocess.Popen]
) -> None:
    out = tmp_path / "out.safetensors"
    proc = big_run("-q")
    tmp = _wait_for_growth(proc, tmp_path, GROWN_BYTES)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    assert _temps(tmp_path) == [tmp]  # SIGKILL cannot be caught: the temp stays, for now

    small = _write(tmp_path / "small.yaml", SMALL_SPEC)
    result = _run("generate", small, "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    assert _temps(tmp_path) == []


def test_sigkill_mid_force_replace_leaves_the_old_output_untouched(
    tmp_path: Path, big_run: Callable[..., subprocess.Popen]
) -> None:
    out = tmp_path / "out.safetensors"
    small = _write(tmp_path / "small.yaml", SMALL_SPEC)
    assert _run("generate", small, "-o", out, "-q", "--seed", "7").returncode == 0
    before, mtime = _digest(out), out.stat().st_mtime_ns

    proc = big_run("-q", "--force")
    _wait_for_growth(proc, tmp_path, GROWN_BYTES)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _digest(out) == before
    assert out.stat().st_mtime_ns == mtime
    assert len(_temps(tmp_path)) == 1

    result = _run("generate", small, "-o", out, "-q", "--force")
    assert result.returncode == 0, result.stderr
    assert _temps(tmp_path) == []
    assert _digest(out) != before  # seed 0 now, not 7


# --- Ctrl-C and SIGTERM --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.safetensors", "out.npz", "out.h5"])
def test_ctrl_c_mid_write_exits_130_with_one_line_and_leaves_nothing(
    tmp_path: Path, big_run: Callable[..., subprocess.Popen], name: str
) -> None:
    proc = big_run(name=name)
    _wait_for_growth(proc, tmp_path, GROWN_BYTES, name)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    _assert_one_error_line(result, 130, "interrupted")
    assert not (tmp_path / name).exists()
    assert _temps(tmp_path, name) == []


def test_sigterm_mid_force_replace_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, big_run: Callable[..., subprocess.Popen]
) -> None:
    out = tmp_path / "out.safetensors"
    small = _write(tmp_path / "small.yaml", SMALL_SPEC)
    assert _run("generate", small, "-o", out, "-q").returncode == 0
    before = _digest(out)
    proc = big_run("--force")
    _wait_for_growth(proc, tmp_path, GROWN_BYTES)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert _digest(out) == before
    assert _temps(tmp_path) == []


#: The real CLI with one change: chunks of 2**26 elements instead of 2**20, so a 256 MiB tensor
#: is a single chunk and the writer spends a long, predictable time in one write call. A
#: signal sent once the temp file has grown past a few MB then surely lands inside it.
ONE_CHUNK_CLI = (
    "import sys; from varscale_cli.engine import chunks as g; "
    "g.ChunkEngine.__init__.__defaults__ = (1 << 26,); "
    "from varscale_cli.cli import cli; cli(sys.argv[1:], prog_name='varscale')"
)
ONE_CHUNK_SPEC = "version: 1\nseed: 0\ntensors:\n  w: {shape: [8192, 8192], initializer: zeros}\n"

# Regression: a signal that landed inside h5py's H5Dwrite surfaced in h5py's weakref cleanup
# callback, where CPython ignores exceptions, so the run published the file and exited 0.
# atomic_output now defers SIGINT/SIGTERM to a check between chunks.


@pytest.mark.parametrize(
    ("name", "sig", "code"),
    [
        ("out.safetensors", signal.SIGINT, 130),
        ("out.h5", signal.SIGINT, 130),
        ("out.h5", signal.SIGTERM, 128 + signal.SIGTERM),
    ],
    ids=["safetensors-SIGINT", "hdf5-SIGINT", "hdf5-SIGTERM"],
)
def test_signal_inside_one_long_write_call_stops_the_run(
    tmp_path: Path, name: str, sig: signal.Signals, code: int
) -> None:
    _need_free(tmp_path, 2 * GB)
    spec = _write(tmp_path / "one.yaml", ONE_CHUNK_SPEC)
    out = tmp_path / name
    proc = subprocess.Popen(
        [sys.executable, "-c", ONE_CHUNK_CLI, "generate", str(spec), "-o", str(out), "--no-check"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        _wait_for_growth(proc, tmp_path, 8 * MB, name)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        leftover = [p for p in tmp_path.iterdir() if p.name != "one.yaml"]
        for path in leftover:
            path.unlink()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    if sig == signal.SIGINT:
        assert stderr.splitlines() == ["Error: interrupted; no output was written"]
    assert leftover == [], leftover


# --- full disk ---------------------------------------------------------------------------------


def _file_size_limit(limit: int) -> Callable[[], None]:
    def preexec() -> None:
        # Without this, exceeding RLIMIT_FSIZE kills the process with SIGXFSZ; ignored, the
        # write fails with EFBIG instead, which is what a full disk looks like to the writer.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@pytest.mark.parametrize("name", ["out.safetensors", "out.npz", "out.h5"])
def test_file_size_limit_is_one_error_line_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    spec = _write(tmp_path / "spec.yaml", MEDIUM_SPEC)
    out = tmp_path / name
    result = _run("generate", spec, "-o", out, preexec_fn=_file_size_limit(1 * MB))
    _assert_one_error_line(result, 1, str(out), "File too large")
    assert not out.exists()
    assert _temps(tmp_path, name) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]


@pytest.fixture
def mount_tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount a tmpfs under tmp_path with the given options; unmounted at the end."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        if shutil.which("mount") is None or os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root and the mount command")
        where = tmp_path / name
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
            capture_output=True, text=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.parametrize("name", ["out.safetensors", "out.npz", "out.h5"])
def test_no_space_left_mid_write_is_one_error_line_and_leaves_nothing(
    tmp_path: Path, mount_tmpfs: Callable[[str, str], Path], name: str
) -> None:
    """A real ENOSPC: the disk fills up after the free-space pre-check passed.

    The run is stopped (SIGSTOP) once it has started writing, another file takes the rest of
    the space, and the run continues into a full disk: deterministic, no race.
    """
    disk = mount_tmpfs("disk", "size=128m")
    # 100 MB of float32: fits the 128 MiB disk, and takes a good fraction of a second to write.
    spec = _write(tmp_path / "spec.yaml", "version: 1\nseed: 0\ntensors:\n  w: {shape: [5000, 5000]}\n")
    out = disk / name
    proc = subprocess.Popen(
        _cli("generate", spec, "-o", out, "--workers", "1"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _temps(disk, name):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no temp file appeared"
            time.sleep(0.001)
        proc.send_signal(signal.SIGSTOP)
        filler = disk / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            block = b"\0" * (1 << 16)
            while os.write(fd, block):
                pass
        except OSError:  # ENOSPC: the disk is full now
            pass
        finally:
            os.close(fd)
        proc.send_signal(signal.SIGCONT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    result = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    _assert_one_error_line(result, 1, str(out), "No space left on device")
    assert not out.exists()
    assert _temps(disk, name) == []
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


def test_too_little_free_space_fails_before_sampling(tmp_path: Path) -> None:
    """1.1 PB never fits: refused by the pre-check, or sampling would run for days."""
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    out = tmp_path / "out.safetensors"
    result = _run("generate", spec, "-o", out)
    _assert_one_error_line(result, 1, "not enough free space", str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.yaml"]


# --- destinations that cannot be written -------------------------------------------------------


def test_read_only_folder_fails_before_sampling(
    tmp_path: Path, mount_tmpfs: Callable[[str, str], Path]
) -> None:
    folder = mount_tmpfs("ro", "ro,size=1m")
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    # 1.1 PB: had sampling started first, the run would not end within the timeout.
    result = _run("generate", spec, "-o", folder / "out.safetensors")
    _assert_one_error_line(result, 1, str(folder), "not writable")
    assert list(folder.iterdir()) == []


def test_read_only_bind_mount_fails_before_sampling(
    tmp_path: Path, mount_tmpfs: Callable[[str, str], Path]
) -> None:
    """A read-only bind mount of a writable folder: os.access knows, root or not."""
    source = mount_tmpfs("rw", "size=1m")
    view = tmp_path / "view"
    view.mkdir()
    for cmd in (
        ["mount", "--bind", str(source), str(view)],
        ["mount", "-o", "remount,ro,bind", str(view)],
    ):
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)
            pytest.skip(f"cannot make a read-only bind mount: {done.stderr.strip()}")
    try:
        spec = _write(tmp_path / "small.yaml", SMALL_SPEC)
        result = _run("generate", spec, "-o", view / "out.safetensors")
        _assert_one_error_line(result, 1, str(view), "not writable")
        assert list(source.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(view)], capture_output=True)


def test_parent_that_is_a_file_is_one_error_line(tmp_path: Path) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    parent = _write(tmp_path / "not_a_folder", "x")
    result = _run("generate", spec, "-o", parent / "out.safetensors")
    _assert_one_error_line(result, 1, str(parent), "not a folder")
    assert parent.read_text() == "x"


def test_missing_parent_folder_is_one_error_line(tmp_path: Path) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    parent = tmp_path / "missing" / "deeper"
    result = _run("generate", spec, "-o", parent / "out.npz")
    _assert_one_error_line(result, 1, str(parent), "does not exist")
    assert not (tmp_path / "missing").exists()


def test_existing_output_without_force_is_refused_before_sampling(tmp_path: Path) -> None:
    out = _write(tmp_path / "out.safetensors", "not weights")
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    result = _run("generate", spec, "-o", out)
    _assert_one_error_line(result, 1, str(out), "--force")
    assert out.read_text() == "not weights"
    assert _temps(tmp_path) == []


def test_output_that_is_a_folder_is_one_error_line(tmp_path: Path) -> None:
    spec = _write(tmp_path / "huge.yaml", HUGE_SPEC)
    folder = tmp_path / "out.h5"
    folder.mkdir()
    result = _run("generate", spec, "-o", folder)
    _assert_one_error_line(result, 1, str(folder), "is a folder")
    assert list(folder.iterdir()) == []
