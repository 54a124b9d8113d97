"""A fuzz target for the three readers (safetensors, npz, HDF5), driven by hypothesis.

Seed files: one small, valid file per format written by varscale itself. Each example mutates
one of them (bit flips, byte overwrites, ``st.binary`` splices, truncation and extension, plus
format-aware damage: the safetensors header-length field and header JSON, zip local and
central headers, ``.npy`` headers inside a rebuilt zip with correct CRCs, HDF5 metadata bytes)
and then runs the target: ``open_weights(path)`` and every chunk of every tensor.

The target must either succeed with consistent output (each tensor yields exactly its declared
number of elements, in its declared dtype) or raise a `VarscaleError` (normally `ReadError`):
never any other exception, never a hang, never an absurd allocation.

Isolation: each example runs in a forked child with a wall-clock limit (a hang in C code, e.g.
in libhdf5, cannot be interrupted from Python, so the parent kills the child) and an
``RLIMIT_AS`` cap of the parent's address space plus `MEMORY_HEADROOM`: a reader that
believed a forged size and allocated for it dies with MemoryError, which is reported as a
failure like any other unexpected exception. A segfault is reported too.

Hypothesis runs derandomized (the same examples on every run), without an example database.
"""

from __future__ import annotations

import io
import json
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from varscale_cli.cli import cli
from varscale_cli.errors import VarscaleError
from varscale_cli.formats import REGISTRY, open_weights

SEED_SPEC = """\
version: 1
seed: 5
tensors:
  dense/kernel: {shape: [8, 4]}
  dense/bias: {shape: [4], dtype: bfloat16, initializer: zeros}
  conv.w: {shape: [2, 3, 2], dtype: float16, initializer: he_normal}
  scalar: {shape: [], dtype: float64}
  empty: {shape: [0, 3], dtype: bfloat16}
  big: {shape: [80, 80], dtype: float32, initializer: lecun_uniform}
"""

#: Every format's first suffix: the seed files are written in each.
SUFFIXES = {fmt.name: fmt.suffixes[0] for fmt in REGISTRY}

#: Per-example limits for the forked child.
TIMEOUT = 10.0
MEMORY_HEADROOM = 256 << 20

#: Small chunks so that multi-chunk paths run even on these small tensors.
CHUNK_ELEMS = 64

FUZZ_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- seed files --------------------------------------------------------------------------------


def _build_seeds() -> dict[str, bytes]:
    import tempfile

    seeds = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "seed.yaml"
        spec.write_text(SEED_SPEC)
        for fmt, suffix in SUFFIXES.items():
            out = Path(tmp) / f"seed{suffix}"
            result = CliRunner().invoke(cli, ["generate", str(spec), "-o", str(out), "-q"])
            assert result.exit_code == 0, result.stderr
            seeds[fmt] = out.read_bytes()
    return seeds


SEEDS = _build_seeds()


def _structure_end(fmt: str, data: bytes) -> int:
    """Where the bytes that describe the file (not tensor values) mostly are."""
    if fmt == "safetensors":
        return 8 + struct.unpack("<Q", data[:8])[0]
    return min(len(data), 4096) if fmt == "hdf5" else len(data)


# --- the fuzz target ---------------------------------------------------------------------------


def read_everything(path: Path) -> int:
    """The fuzz target: open, list and read every tensor; check what a success promises."""
    elements = 0
    with open_weights(path) as wf:
        assert isinstance(wf.metadata, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in wf.metadata.items())
        for info in wf.tensors():
            seen = 0
            for chunk in wf.iter_chunks(info.name, CHUNK_ELEMS):
                assert isinstance(chunk, np.ndarray) and chunk.ndim == 1, chunk
                assert chunk.dtype == info.dtype, (info, chunk.dtype)
                assert 0 < chunk.size <= CHUNK_ELEMS, chunk.size
                seen += chunk.size
            assert seen == info.count, (info, seen)
            elements += seen
    return elements


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize")  # pragma: no cover


def run_isolated(target: Callable[[Path], Any], path: Path) -> tuple[str, str]:
    """Run ``target(path)`` in a forked child: ('ok' | 'error' | 'crash' | 'hang', detail)."""
    limit = _vm_size() + MEMORY_HEADROOM
    r, w = os.pipe()
    with warnings.catch_warnings():  # Python >= 3.12 warns about fork() beside threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 0
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
            try:
                report = {"status": "ok", "detail": repr(target(path))}
            except VarscaleError as exc:
                report = {"status": "error", "detail": f"{type(exc).__name__}: {exc}"}
            except BaseException:
                report = {"status": "crash", "detail": traceback.format_exc()}
            data = json.dumps(report).encode()
            while data:
                data = data[os.write(w, data):]
        except BaseException:
            code = 70
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + TIMEOUT
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return "hang", f"no answer within {TIMEOUT} s"
            ready, _, _ = select.select([r], [], [], left)
            if ready:
                piece = os.read(r, 1 << 16)
                if not piece:
                    break
                chunks.append(piece)
    finally:
        os.close(r)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "crash", f"killed by signal {os.WTERMSIG(status)}"
    try:
        report = json.loads(b"".join(chunks))
    except ValueError:
        return "crash", f"child exit status {status}, no report"
    return report["status"], report["detail"]


def check_target(data: bytes, name: str, tmp: Path) -> str:
    path = tmp / name
    path.write_bytes(data)
    try:
        status, detail = run_isolated(read_everything, path)
    finally:
        path.unlink()
    assert status in ("ok", "error"), f"{status} on a {len(data)}-byte {name}:\n{detail}"
    if status == "error":
        assert "\n" not in detail, detail  # one line, as the CLI prints it
    return status


# --- mutations ---------------------------------------------------------------------------------


def _offset(draw: st.DrawFn, fmt: str, data: bytearray) -> int:
    """Mostly in the structural bytes, sometimes anywhere."""
    if not data:
        return 0
    end = max(1, min(len(data), _structure_end(fmt, bytes(data)) if len(data) >= 8 else len(data)))
    hi = draw(st.sampled_from([end, len(data)]))
    return draw(st.integers(0, max(0, hi - 1)))


@st.composite
def generic_op(draw: st.DrawFn, fmt: str, data: bytearray) -> bytearray:
    kind = draw(st.sampled_from(["flip", "overwrite", "insert", "delete", "truncate", "extend"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, max(0, len(data) - 1)))]
    if kind == "extend":
        return data + draw(st.binary(min_size=1, max_size=64))
    at = _offset(draw, fmt, data)
    if kind == "flip":
        if data:
            data[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "overwrite":
        blob = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"\xff" * 8, b"\0" * 8]))
        data[at : at + len(blob)] = blob
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    else:
        del data[at : at + draw(st.integers(1, 64))]
    return data


_U64 = st.one_of(
    st.integers(0, 2**64 - 1),
    st.integers(0, 200),
    st.sampled_from([2**63, 2**64 - 1, 100_000_000, 100_000_001, 2**32, 2**48]),
)


@st.composite
def safetensors_op(draw: st.DrawFn, data: bytearray) -> bytearray:
    if len(data) < 8:
        return data
    n = struct.unpack("<Q", data[:8])[0]
    kind = draw(st.sampled_from(["length", "length_near", "json"]))
    if kind == "length":
        data[:8] = struct.pack("<Q", draw(_U64))
        return data
    if kind == "length_near":
        data[:8] = struct.pack("<Q", min(2**64 - 1, max(0, n + draw(st.integers(-16, 16)))))
        return data
    # Rewrite the header JSON with one field of one entry replaced, and a correct length field.
    try:
        header = json.loads(bytes(data[8 : 8 + n]))
        assert isinstance(header, dict)
    except (ValueError, AssertionError):
        return data
    names = sorted(header)
    if not names:
        return data
    name = draw(st.sampled_from(names))
    entry = header[name]
    if name == "__metadata__" or not isinstance(entry, dict):
        header[name] = draw(_json_values)
    else:
        field = draw(st.sampled_from(["dtype", "shape", "data_offsets", "extra", "drop"]))
        if field == "dtype":
            entry["dtype"] = draw(
                st.sampled_from(["F32", "F16", "BF16", "F64", "I8", "F4", "C64", "BOOL", "F8_E4M3"])
                | _json_values
            )
        elif field == "shape":
            entry["shape"] = draw(
                st.lists(st.integers(0, 9) | _U64 | st.integers(-3, -1), max_size=4) | _json_values
            )
        elif field == "data_offsets":
            entry["data_offsets"] = draw(
                st.lists(st.integers(0, 300) | _U64 | st.integers(-3, -1), min_size=0, max_size=3)
                | _json_values
            )
        elif field == "extra":
            entry[draw(st.text(max_size=5))] = draw(_json_values)
        else:
            entry.pop(draw(st.sampled_from(sorted(entry))), None)
    text = json.dumps(header).encode()
    pad = b" " * draw(st.integers(0, 8))
    return bytearray(struct.pack("<Q", len(text) + len(pad)) + text + pad) + data[8 + n :]


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=6)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=4), kids, max_size=3),
    max_leaves=5,
)

_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07")


@st.composite
def zip_header_op(draw: st.DrawFn, data: bytearray) -> bytearray:
    """Overwrite one field of a zip local, central or end record with a random value."""
    found = [i for sig in _ZIP_SIGNATURES for i in _find_all(bytes(data), sig)]
    if not found:
        return data
    start = draw(st.sampled_from(sorted(found)))
    at = start + draw(st.integers(4, 55))
    width = draw(st.sampled_from([1, 2, 4, 8]))
    value = draw(st.integers(0, 2 ** (8 * width) - 1) | st.sampled_from([0, 2 ** (8 * width) - 1]))
    data[at : at + width] = value.to_bytes(width, "little")
    return data


def _find_all(data: bytes, needle: bytes) -> list[int]:
    out, i = [], data.find(needle)
    while i != -1:
        out.append(i)
        i = data.find(needle, i + 1)
    return out


_NPY_SHAPES = st.one_of(
    st.lists(st.integers(0, 10), max_size=3).map(tuple),
    st.lists(st.integers(0, 2**62), min_size=1, max_size=3).map(tuple),
    st.sampled_from([(2**31,), (10**12, 10**6), (-1,), (2**64,)]),
)
_NPY_DESCRS = st.sampled_from(
    ["<f4", "<f2", ">f8", "<u2", "|V2", "|b1", "<i8", "|O", "<U5", "|S3", "<c16", "<M8[s]", "<f4x"]
)


@st.composite
def npz_rebuild_op(draw: st.DrawFn, data: bytearray) -> bytearray:
    """Rebuild the zip (valid CRCs and sizes) with one member's .npy bytes damaged."""
    try:
        with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
            members = [(zi.filename, zf.read(zi)) for zi in zf.infolist()]
    except Exception:  # already broken by an earlier op: nothing to rebuild
        return data
    if not members:
        return data
    index = draw(st.integers(0, len(members) - 1))
    name, raw = members[index]
    kind = draw(st.sampled_from(["header", "bytes", "rename", "drop", "duplicate"]))
    if kind == "header":
        fields = {
            "descr": draw(_NPY_DESCRS),
            "fortran_order": draw(st.booleans()),
            "shape": draw(_NPY_SHAPES),
        }
        body = raw[_npy_data_start(raw) :] if raw.startswith(b"\x93NUMPY") else raw
        body = body[: draw(st.sampled_from([len(body), 0, 4, 64]))]
        header = repr(fields).encode() + b" " * draw(st.integers(0, 70)) + b"\n"
        version = draw(st.sampled_from([1, 2, 3, 9]))
        length = struct.pack("<H" if version == 1 else "<I", len(header) % (2**16 if version == 1 else 2**32))
        raw = b"\x93NUMPY" + bytes([version, 0]) + length + header + body
    elif kind == "bytes":
        raw = bytes(draw(generic_op("npz", bytearray(raw))))
    elif kind == "rename":
        name = draw(st.sampled_from(["x", "a/../b.npy", "/abs.npy", "__varscale__.npy", "e.npz", ""]))
        name = name or "noext"
    if kind == "drop":
        del members[index]
    elif kind == "duplicate":
        members.append((name, raw))
    else:
        members[index] = (name, raw)
    method = draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression=method) as zf:
        warnings.simplefilter("ignore")  # "Duplicate name": the point of the duplicate case
        for member_name, member_raw in members:
            # Duplicate names are what hostile archives do; zipfile only warns about them.
            zf.writestr(zipfile.ZipInfo(member_name), member_raw, compress_type=method)
    return bytearray(buf.getvalue())


def _npy_data_start(raw: bytes) -> int:
    if raw[6:7] == b"\x01":
        return 10 + struct.unpack("<H", raw[8:10])[0]
    return 12 + struct.unpack("<I", raw[8:12])[0]


@st.composite
def mutated_files(draw: st.DrawFn, fmt: str) -> bytes:
    data = bytearray(SEEDS[fmt])
    for _ in range(draw(st.integers(1, 3))):
        choices = ["generic"] + {
            "safetensors": ["safetensors", "safetensors"],
            "npz": ["zip_header", "npz_rebuild", "npz_rebuild"],
            "hdf5": ["generic"],
        }[fmt]
        kind = draw(st.sampled_from(choices))
        if kind == "safetensors":
            data = draw(safetensors_op(data))
        elif kind == "zip_header":
            data = draw(zip_header_op(data))
        elif kind == "npz_rebuild":
            data = draw(npz_rebuild_op(data))
        else:
            data = draw(generic_op(fmt, data))
    return bytes(data)


# --- the tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("fmt", list(SUFFIXES))
def test_seed_files_read_back_whole(fmt: str, fuzz_dir: Path) -> None:
    assert check_target(SEEDS[fmt], f"seed{SUFFIXES[fmt]}", fuzz_dir) == "ok"


def _fuzz(fmt: str) -> Callable[..., None]:
    @FUZZ_SETTINGS
    @given(data=mutated_files(fmt), sniff=st.booleans())
    def run(fuzz_dir: Path, data: bytes, sniff: bool) -> None:
        # Without the suffix, open_weights picks the reader from the magic bytes.
        event(check_target(data, "weights.bin" if sniff else f"fuzz{SUFFIXES[fmt]}", fuzz_dir))

    return run


test_fuzz_safetensors_reader = _fuzz("safetensors")
test_fuzz_npz_reader = _fuzz("npz")
test_fuzz_hdf5_reader = _fuzz("hdf5")


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fmt=st.sampled_from(list(SUFFIXES)), data=st.data())
def test_stats_cli_on_mutated_files_never_tracebacks(
    fuzz_dir: Path, fmt: str, data: st.DataObject
) -> None:
    blob = data.draw(mutated_files(fmt))
    path = fuzz_dir / f"stats{SUFFIXES[fmt]}"
    path.write_bytes(blob)
    try:
        result = CliRunner().invoke(cli, ["stats", str(path), "--json"])
    finally:
        path.unlink()
    assert "Traceback" not in result.stdout + result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"uncaught {result.exception!r}") from result.exception
    assert result.exit_code in (0, 1, 2, 3), (result.exit_code, result.stderr)
    if result.exit_code in (1, 2):
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


@pytest.mark.parametrize("fmt", list(SUFFIXES))
def test_stats_cli_subprocess_on_damaged_files(tmp_path: Path, fmt: str) -> None:
    """The real entry point on a truncated file and on one with its middle overwritten."""
    seed = SEEDS[fmt]
    cases = {
        "truncated": seed[: len(seed) // 2],
        "overwritten": seed[:64] + b"\xff" * 256 + seed[64 + 256 :],
    }
    for label, blob in cases.items():
        path = tmp_path / f"{label}{SUFFIXES[fmt]}"
        path.write_bytes(blob)
        result = subprocess.run(
            [sys.executable, "-m", "varscale_cli", "stats", str(path)],
            capture_output=True, text=True, timeout=120,
        )
        assert "Traceback" not in result.stdout + result.stderr, (label, result.stderr)
        assert result.returncode in (0, 1, 2, 3), (label, result.returncode, result.stderr)
        if result.returncode in (1, 2):
            lines = result.stderr.splitlines()
            assert len(lines) == 1 and lines[0].startswith("Error: "), (label, result.stderr)
