"""Readers: round trips against files written by the real libraries, and a hostile corpus.

Every hostile file is built here, in ``tmp_path``; each must raise one `ReadError` whose
message names the problem (a fragment is asserted) on a single line. For safetensors the
reference implementation is the oracle: every file our reader refuses, ``safe_open`` refuses
too, and every file it accepts, we accept.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
import zipfile
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest
import safetensors
import safetensors.numpy

from varscale_cli import formats
from varscale_cli.errors import ReadError
from varscale_cli.formats import REGISTRY, open_weights
from varscale_cli.formats.base import TensorInfo
from varscale_cli.formats.hdf5 import HDF5File
from varscale_cli.formats.hf import ShardedSafetensors
from varscale_cli.formats.items import WriteItem
from varscale_cli.formats.npz import MAX_NPY_HEADER, NpzFile
from varscale_cli.formats.safetensors import MAX_HEADER_SIZE, SafetensorsFile

BF16 = np.dtype(ml_dtypes.bfloat16)


def read_all(wf, name: str, chunk_elems: int = 1 << 20) -> np.ndarray:
    chunks = list(wf.iter_chunks(name, chunk_elems))
    assert all(c.ndim == 1 and c.size <= chunk_elems for c in chunks)
    info = {i.name: i for i in wf.tensors()}[name]
    return np.concatenate(chunks).reshape(info.shape) if chunks else np.empty(info.shape, info.dtype)


def bits(a: np.ndarray) -> np.ndarray:
    """Bit patterns, so NaNs and -0.0 compare exactly."""
    return np.ascontiguousarray(a).view(f"u{a.dtype.itemsize}")


def rand(shape, dtype, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.05, shape).astype(dtype)


def assert_read_error(exc: pytest.ExceptionInfo, fragment: str) -> None:
    msg = str(exc.value)
    assert fragment in msg, msg
    assert "\n" not in msg


# --- safetensors: valid files ----------------------------------------------------------------


def test_safetensors_round_trip_with_reference_writer(tmp_path: Path) -> None:
    arrays = {
        "dense/kernel": rand((33, 17), np.float32),
        "dense/bias": np.zeros(17, np.float32),
        "half": rand((5, 7), np.float16, 1),
        "bf16": rand((9, 11), BF16, 2),
        "double": rand((3,), np.float64, 3),
        "ids": np.arange(12, dtype=np.int64).reshape(3, 4),
        "mask": np.array([True, False, True]),
        "scalar": np.array(1.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
    }
    path = tmp_path / "m.safetensors"
    safetensors.numpy.save_file(arrays, path, metadata={"format": "pt", "varscale": "{}"})
    with open_weights(path) as wf:
        assert isinstance(wf, SafetensorsFile)
        assert wf.metadata == {"format": "pt", "varscale": "{}"}
        infos = {i.name: i for i in wf.tensors()}
        assert set(infos) == set(arrays)
        for name, a in arrays.items():
            assert infos[name].shape == a.shape
            assert infos[name].dtype == a.dtype
            assert infos[name].nbytes == a.nbytes
            for chunk in (1, 7, 1 << 20):
                got = read_all(wf, name, chunk)
                assert got.dtype == a.dtype
                np.testing.assert_array_equal(bits(got), bits(a))


def _st_file(path: Path, entries: dict, payload: bytes, *, metadata=None, raw_header=None) -> Path:
    """A safetensors file written by hand: header JSON padded to 8 bytes, then the payload."""
    header = dict(entries)
    if metadata is not None:
        header = {"__metadata__": metadata, **header}
    hb = raw_header if raw_header is not None else json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + payload)
    return path


def test_safetensors_float8_and_unsorted_header(tmp_path: Path) -> None:
    # safetensors' numpy reader cannot return F8 at all (safetensors#682); ours can.
    e4 = rand((4, 8), ml_dtypes.float8_e4m3fn)
    e5 = rand((16,), ml_dtypes.float8_e5m2, 1)
    f = rand((2, 2), np.float32, 2)
    payload = f.tobytes() + e4.tobytes() + e5.tobytes()
    entries = {  # deliberately not in offset order: the reader sorts by offsets, like Rust
        "e5": {"dtype": "F8_E5M2", "shape": [16], "data_offsets": [48, 64]},
        "e4": {"dtype": "F8_E4M3", "shape": [4, 8], "data_offsets": [16, 48]},
        "f": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]},
    }
    path = _st_file(tmp_path / "f8.safetensors", entries, payload)
    with safetensors.safe_open(path, "np") as ref:  # the reference accepts the header
        assert set(ref.keys()) == {"e4", "e5", "f"}
    with open_weights(path) as wf:
        assert [i.name for i in wf.tensors()] == ["f", "e4", "e5"]  # file (offset) order
        assert wf.dtype_code("e4") == "F8_E4M3"
        np.testing.assert_array_equal(bits(read_all(wf, "e4", 5)), bits(e4))
        np.testing.assert_array_equal(bits(read_all(wf, "e5", 3)), bits(e5))
        np.testing.assert_array_equal(read_all(wf, "f"), f)
        with pytest.raises(ReadError, match="no tensor named 'nope'"):
            list(wf.iter_chunks("nope"))


def test_safetensors_leading_whitespace_accepted_like_reference(tmp_path: Path) -> None:
    f = np.ones(2, np.float32)
    hb = b'  {"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    path = _st_file(tmp_path / "ws.safetensors", {}, f.tobytes(), raw_header=hb)
    with safetensors.safe_open(path, "np") as ref:
        np.testing.assert_array_equal(ref.get_tensor("a"), f)
    with open_weights(path) as wf:
        np.testing.assert_array_equal(read_all(wf, "a"), f)


# --- safetensors: the hostile corpus ---------------------------------------------------------

F32x4 = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}


def _hostile_cases() -> list[tuple[str, object, str]]:
    """(id, builder(tmp_path) -> path, expected message fragment)."""

    def raw(data: bytes):
        def build(d: Path) -> Path:
            (d / "x.safetensors").write_bytes(data)
            return d / "x.safetensors"

        return build

    def st(entries, payload=b"\0" * 16, **kw):
        return lambda d: _st_file(d / "x.safetensors", entries, payload, **kw)

    valid = struct.pack("<Q", 8) + b'{}      '
    good = {"a": F32x4}
    return [
        ("empty_file", raw(b""), "HeaderTooSmall"),
        ("seven_bytes", raw(b"\x08\0\0\0\0\0\0"), "HeaderTooSmall"),
        ("header_length_bomb", raw(struct.pack("<Q", MAX_HEADER_SIZE + 1) + b"{}"), "HeaderTooLarge"),
        ("header_length_2_64", raw(b"\xff" * 8 + b"{}"), "HeaderTooLarge"),
        ("header_past_eof", raw(struct.pack("<Q", 4096) + b'{"a":1}'), "InvalidHeaderLength"),
        ("not_utf8", st({}, b"", raw_header=b'{"\xff\xfe":1}'), "InvalidHeader: the header is not UTF-8"),
        ("bad_json", st({}, b"", raw_header=b'{"a":'), "InvalidHeaderDeserialization"),
        ("nul_padding", st({}, b"", raw_header=b"{}\0\0\0\0\0\0"), "InvalidHeaderDeserialization"),
        ("not_an_object", st({}, b"", raw_header=b"[1, 2]"), "not a JSON object"),
        (
            "duplicate_key",
            st({}, b"\0" * 16, raw_header=b'{"a":' + json.dumps(F32x4).encode() + b',"a":'
               + json.dumps(F32x4).encode() + b"}"),
            "duplicate key 'a'",
        ),
        ("nan_literal", st({}, b"", raw_header=b'{"a":{"dtype":"F32","shape":[NaN],"data_offsets":[0,0]}}'), "NaN"),
        ("unknown_dtype", st({"a": {**F32x4, "dtype": "F128"}}), "unknown dtype 'F128'"),
        ("dtype_not_string", st({"a": {**F32x4, "dtype": 7}}), "unknown dtype 7"),
        ("metadata_not_string", st(good, metadata={"format": 1}), "__metadata__ value of 'format' is not a string"),
        ("metadata_not_object", st(good, metadata=["pt"]), "__metadata__ is not an object"),
        ("entry_not_object", st({"a": [1]}), "tensor 'a' is not an object"),
        ("missing_offsets", st({"a": {"dtype": "F32", "shape": [4]}}), "has no data_offsets"),
        ("negative_dim", st({"a": {**F32x4, "shape": [-4]}}), "invalid shape"),
        ("bool_dim", st({"a": {**F32x4, "shape": [True]}}), "invalid shape"),
        ("float_dim", st({"a": {**F32x4, "shape": [4.0]}}), "invalid shape"),
        ("one_offset", st({"a": {**F32x4, "data_offsets": [0]}}), "invalid data_offsets"),
        ("offset_past_usize", st({"a": {**F32x4, "data_offsets": [0, 2**64]}}), "invalid data_offsets"),
        (
            "offset_gap",
            st({"a": {**F32x4, "shape": [1], "data_offsets": [0, 4]},
                "b": {**F32x4, "shape": [1], "data_offsets": [8, 12]}}, b"\0" * 12),
            "InvalidOffset: invalid offset for tensor 'b'",
        ),
        (
            "offset_overlap",
            st({"a": {**F32x4, "shape": [2], "data_offsets": [0, 8]},
                "b": {**F32x4, "shape": [2], "data_offsets": [4, 12]}}, b"\0" * 12),
            "InvalidOffset: invalid offset for tensor 'b'",
        ),
        ("first_not_zero", st({"a": {**F32x4, "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8), "InvalidOffset"),
        (
            "end_before_begin",
            st({"a": {**F32x4, "shape": [1], "data_offsets": [0, 4]},
                "b": {**F32x4, "shape": [0], "data_offsets": [4, 0]}}, b"\0" * 4),
            "InvalidOffset: invalid offset for tensor 'b'",
        ),
        # safetensors' test_json_attack: many tensors claiming the same bytes.
        ("json_attack", st({f"t{i}": F32x4 for i in range(10)}), "InvalidOffset"),
        (
            "shape_overflow",
            st({"a": {"dtype": "F32", "shape": [2**32, 2**32, 2**10], "data_offsets": [0, 16]}}),
            "ValidationOverflow",
        ),
        ("size_mismatch", st({"a": {**F32x4, "shape": [2, 2], "data_offsets": [0, 12]}}, b"\0" * 12), "TensorInvalidInfo"),
        ("shape_claims_more", st({"a": {**F32x4, "shape": [10**9]}}), "TensorInvalidInfo"),
        (
            "offsets_far_out_of_range",  # consistent claims of 4 TiB in a tiny file: no allocation
            st({"a": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 2**42]}}),
            "MetadataIncompleteBuffer: the file is truncated",
        ),
        ("trailing_bytes", st(good, b"\0" * 20), "MetadataIncompleteBuffer: trailing bytes"),
        ("truncated_data", st(good, b"\0" * 10), "MetadataIncompleteBuffer: the file is truncated"),
        ("polyglot_trailer", raw(valid + b"<html>"), "MetadataIncompleteBuffer"),
    ]


HOSTILE = _hostile_cases()

#: The README forbids duplicate keys but the Rust reader keeps the last one (serde HashMap):
#: here the rule is enforced, since two tensors of one name make "which one?" unanswerable.
STRICTER_THAN_REFERENCE = {"duplicate key 'a'"}


@pytest.mark.parametrize(("build", "fragment"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_safetensors_hostile_corpus(tmp_path: Path, build, fragment: str) -> None:
    path = build(tmp_path)
    with pytest.raises(ReadError) as exc:
        open_weights(path)
    assert_read_error(exc, fragment)
    assert str(exc.value).startswith(f"'{path}': invalid safetensors")
    if fragment in STRICTER_THAN_REFERENCE:
        return
    # The reference refuses the same file: we validate like it, not more leniently.
    with pytest.raises(Exception):  # noqa: B017 - any error of the reference is a refusal
        with safetensors.safe_open(path, "np") as ref:
            for key in ref.keys():
                ref.get_slice(key)


def test_safetensors_sub_byte_dtype_is_refused_clearly(tmp_path: Path) -> None:
    odd = _st_file(tmp_path / "odd.safetensors", {"a": {"dtype": "F4", "shape": [3], "data_offsets": [0, 1]}}, b"\0")
    with pytest.raises(ReadError) as exc:
        open_weights(odd)
    assert_read_error(exc, "MisalignedSlice")
    even = _st_file(tmp_path / "even.safetensors", {"a": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}, b"\0\0")
    with pytest.raises(ReadError) as exc:
        open_weights(even)
    assert_read_error(exc, "packed sub-byte dtype F4")


def test_safetensors_file_truncated_after_open(tmp_path: Path) -> None:
    a = rand((64,), np.float32)
    path = tmp_path / "t.safetensors"
    safetensors.numpy.save_file({"a": a}, path)
    with open_weights(path) as wf:
        with open(path, "r+b") as f:
            f.truncate(path.stat().st_size - 8)
        with pytest.raises(ReadError) as exc:
            read_all(wf, "a")
    assert_read_error(exc, "is truncated")


# --- Hugging Face sharded checkpoints --------------------------------------------------------


def _sharded(d: Path, *, weight_map=None, extra_shard_tensor=False) -> tuple[Path, dict]:
    a, b, c = rand((8, 4), np.float32), rand((4,), np.float32, 1), rand((3, 3), BF16, 2)
    prov1 = {"seed": 1, "tensors": {"a": {"x": 1}, "b": {"x": 2}}}
    prov2 = {"seed": 1, "tensors": {"c": {"x": 3}}}
    s1 = {"a": a, "b": b}
    s2 = {"c": c, **({"stray": b} if extra_shard_tensor else {})}
    safetensors.numpy.save_file(s1, d / "model-00001-of-00002.safetensors",
                                metadata={"format": "pt", "varscale": json.dumps(prov1)})
    safetensors.numpy.save_file(s2, d / "model-00002-of-00002.safetensors",
                                metadata={"format": "pt", "varscale": json.dumps(prov2)})
    wm = weight_map or {
        "a": "model-00001-of-00002.safetensors",
        "b": "model-00001-of-00002.safetensors",
        "c": "model-00002-of-00002.safetensors",
    }
    index = d / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": 176}, "weight_map": wm}, indent=2))
    return index, {"a": a, "b": b, "c": c}


@pytest.mark.parametrize("via", ["index", "directory"])
def test_sharded_checkpoint(tmp_path: Path, via: str) -> None:
    index, arrays = _sharded(tmp_path)
    with open_weights(index if via == "index" else tmp_path) as wf:
        assert isinstance(wf, ShardedSafetensors)
        assert [i.name for i in wf.tensors()] == ["a", "b", "c"]
        for name, a in arrays.items():
            np.testing.assert_array_equal(bits(read_all(wf, name, 5)), bits(a))
        assert wf.shard_of("c").name == "model-00002-of-00002.safetensors"
        assert wf.metadata["total_size"] == "176"
        assert wf.metadata["format"] == "pt"
        prov = json.loads(wf.metadata["varscale"])
        assert set(prov["tensors"]) == {"a", "b", "c"}  # merged across shards


def test_directory_prefers_single_file(tmp_path: Path) -> None:
    _sharded(tmp_path)
    safetensors.numpy.save_file({"only": np.ones(2, np.float32)}, tmp_path / "model.safetensors")
    with open_weights(tmp_path) as wf:
        assert [i.name for i in wf.tensors()] == ["only"]


@pytest.mark.parametrize(
    ("case", "fragment"),
    [
        ("missing_shard", "shard 'model-00003-of-00003.safetensors' listed in the index does not exist"),
        ("wrong_shard", "tensor 'b' is in shard 'model-00001-of-00002.safetensors' but the index puts it in"),
        ("phantom_tensor", "the index puts tensor 'ghost'"),
        ("unlisted_tensor", "tensor 'stray' in shard 'model-00002-of-00002.safetensors' is not in the weight_map"),
        ("path_traversal", "is not a file name inside the index's folder"),
        ("absolute_path", "is not a file name inside the index's folder"),
        ("pickle_shard", "is not a .safetensors file"),
        ("not_json", "not valid JSON"),
        ("no_weight_map", 'no "weight_map" object'),
        ("empty_weight_map", 'the "weight_map" is empty'),
        ("not_utf8", "not UTF-8 (byte 0)"),
        ("index_is_a_fifo", "cannot read the index: it is a FIFO (named pipe), not a regular file"),
        ("shard_is_dev_zero", "cannot read the weight file: it is a character device"),
    ],
)
def test_sharded_checkpoint_hostile(tmp_path: Path, case: str, fragment: str) -> None:
    s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    wm = {"a": s1, "b": s1, "c": s2}
    extra = False
    if case == "missing_shard":
        wm["c"] = "model-00003-of-00003.safetensors"
    elif case == "wrong_shard":
        wm["b"] = s2
    elif case == "phantom_tensor":
        wm["ghost"] = s2
    elif case == "unlisted_tensor":
        extra = True
    elif case == "path_traversal":
        wm["c"] = "../model-00002-of-00002.safetensors"
    elif case == "absolute_path":
        wm["c"] = str(tmp_path / s2)
    elif case == "pickle_shard":
        wm["c"] = "pytorch_model.bin"
    index, _ = _sharded(tmp_path, weight_map=wm, extra_shard_tensor=extra)
    if case == "not_json":
        index.write_text('{"weight_map": ')
    elif case == "no_weight_map":
        index.write_text('{"metadata": {}}')
    elif case == "empty_weight_map":  # the shards beside it hold tensors: never "OK: 0 tensors"
        index.write_text('{"metadata": {}, "weight_map": {}}')
    elif case == "not_utf8":
        index.write_bytes(b"\xff\xfe{}")
    elif case == "index_is_a_fifo":
        index.unlink()
        os.mkfifo(index)
    elif case == "shard_is_dev_zero":
        (tmp_path / s2).unlink()
        (tmp_path / s2).symlink_to("/dev/zero")
    with pytest.raises(ReadError) as exc:
        open_weights(index)
    assert_read_error(exc, fragment)


# --- npz -------------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trip_with_numpy_writer(tmp_path: Path, compressed: bool) -> None:
    arrays = {
        "layers/dense/kernel": rand((31, 17), np.float32),
        "bias": np.zeros(17, np.float16),
        "ids": np.arange(10, dtype=np.int32),
        "big_endian": rand((6, 5), ">f4", 3),
        "scalar": np.array(2.0),
        "empty": np.zeros((0, 4), np.float32),
    }
    path = tmp_path / "w.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    with open_weights(path) as wf:
        assert isinstance(wf, NpzFile)
        assert wf.metadata == {}
        infos = {i.name: i for i in wf.tensors()}
        assert list(infos) == list(arrays)  # zip order = write order
        for name, a in arrays.items():
            assert infos[name].dtype == a.dtype.newbyteorder("=")
            assert infos[name].shape == a.shape
            for chunk in (1, 13, 1 << 20):
                got = read_all(wf, name, chunk)
                assert got.dtype.isnative
                np.testing.assert_array_equal(got, a)


def _write_member(zf: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with zf.open(name, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asanyarray(array), allow_pickle=False)


def _write_raw_member(zf: zipfile.ZipFile, name: str, header: dict | None, payload: bytes, *,
                      version=(1, 0), hlen: int | None = None, prefix: bytes | None = None) -> None:
    """A member with a hand-written .npy header (possibly lying about its length)."""
    if prefix is None:
        text = repr(header).encode("latin1")
        text += b" " * (-(len(text) + 11) % 64) + b"\n"
        size = struct.pack("<H" if version == (1, 0) else "<I", len(text) if hlen is None else hlen)
        prefix = b"\x93NUMPY" + bytes(version) + size + text
    zf.writestr(name, prefix + payload)


def test_npz_varscale_manifest_bf16_and_fp8(tmp_path: Path) -> None:
    w = rand((12, 5), BF16)
    e5 = rand((7,), ml_dtypes.float8_e5m2, 1)
    manifest = {
        "dtypes": {"w": "bfloat16", "fp8/e5": "float8_e5m2"},
        "metadata": {"format": "pt", "varscale": '{"tensors": {}}'},
    }
    path = tmp_path / "v.npz"
    with zipfile.ZipFile(path, "w") as zf:
        _write_member(zf, "w.npy", w.view("<u2"))
        _write_member(zf, "fp8/e5.npy", e5.view("u1"))
        _write_member(zf, "__varscale__.npy", np.array(json.dumps(manifest)))
    with open_weights(path) as wf:
        assert wf.metadata == manifest["metadata"]
        assert [(i.name, i.dtype) for i in wf.tensors()] == [
            ("w", BF16), ("fp8/e5", np.dtype(ml_dtypes.float8_e5m2))
        ]
        np.testing.assert_array_equal(bits(read_all(wf, "w", 7)), bits(w))
        np.testing.assert_array_equal(bits(read_all(wf, "fp8/e5")), bits(e5))


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_fortran_order_read_in_c_order(tmp_path: Path, compressed: bool) -> None:
    a = np.asfortranarray(rand((40, 30), np.float32))
    path = tmp_path / "f.npz"
    (np.savez_compressed if compressed else np.savez)(path, f=a)
    with open_weights(path) as wf:
        np.testing.assert_array_equal(read_all(wf, "f"), a)  # fits one chunk: read whole
        if compressed:
            with pytest.raises(ReadError) as exc:
                read_all(wf, "f", 100)
            assert_read_error(exc, "is Fortran-ordered and compressed")
        else:  # stored: memory-mapped, copied out in C-order slabs
            np.testing.assert_array_equal(read_all(wf, "f", 100), a)


def _npz_hostile_cases() -> list[tuple[str, object, str]]:
    def zipped(*members, compression=zipfile.ZIP_STORED):
        def build(d: Path) -> Path:
            path = d / "x.npz"
            with zipfile.ZipFile(path, "w", compression=compression) as zf:
                for m in members:
                    m(zf)
            return path

        return build

    def member(name, array):
        return lambda zf: _write_member(zf, name, array)

    def raw_member(name, header, payload, **kw):
        return lambda zf: _write_raw_member(zf, name, header, payload, **kw)

    f4 = {"descr": "<f4", "fortran_order": False, "shape": (4,)}

    def duplicate(name):
        def write(zf):
            with warnings.catch_warnings():  # zipfile warns, and writes it all the same
                warnings.simplefilter("ignore", UserWarning)
                _write_member(zf, name, np.ones(2))

        return write

    def pickled(d: Path) -> Path:
        path = d / "x.npz"
        np.savez(path, obj=np.array([{"a": 1}, None], dtype=object))
        return path

    def bf16_plain(d: Path) -> Path:
        path = d / "x.npz"
        np.savez(path, w=rand((4,), BF16))  # numpy saves it as opaque |V2
        return path

    def e5m2_plain(d: Path) -> Path:
        path = d / "x.npz"
        np.savez(path, w=rand((4,), ml_dtypes.float8_e5m2))  # saved as '<f1', unloadable
        return path

    def truncated(d: Path) -> Path:
        path = d / "x.npz"
        np.savez(path, w=rand((1000,), np.float32))
        path.write_bytes(path.read_bytes()[:2000])
        return path

    def not_zip(d: Path) -> Path:
        (d / "x.npz").write_bytes(b"this is not a zip archive at all")
        return d / "x.npz"

    return [
        ("needs_pickle", pickled, "object dtype, which needs pickle: refused"),
        ("shape_bomb", zipped(raw_member("w.npy", {**f4, "shape": (10**12,)}, b"\0" * 16)),
         "claims shape [1000000000000] of <f4 = 4000000000000 bytes but holds 16"),
        ("shape_bomb_deflated", zipped(raw_member("w.npy", {**f4, "shape": (10**6, 10**6)}, b"\0" * 16),
                                       compression=zipfile.ZIP_DEFLATED), "shape bomb"),
        ("short_member", zipped(raw_member("w.npy", {**f4, "shape": (8,)}, b"\0" * 16)), "holds 16"),
        ("header_length_bomb", zipped(raw_member("w.npy", f4, b"\0" * 16, version=(2, 0), hlen=1 << 31)),
         f"more than {MAX_NPY_HEADER}"),
        ("header_past_member", zipped(raw_member("w.npy", f4, b"", hlen=5000)), "header is truncated"),
        ("bad_magic", zipped(lambda zf: zf.writestr("w.npy", b"PK not npy data")), "bad magic bytes"),
        ("bad_version", zipped(raw_member("w.npy", f4, b"\0" * 16, version=(9, 0))), "version 9.0"),
        ("header_not_dict", zipped(raw_member("w.npy", None, b"", prefix=b"\x93NUMPY\x01\x00\x08\x00[1, 2]\n")),
         "invalid .npy header"),
        ("header_garbage", zipped(raw_member("w.npy", None, b"", prefix=b"\x93NUMPY\x01\x00\x08\x00((((((\n")),
         "invalid .npy header"),
        ("string_array", zipped(member("names.npy", np.array(["a", "bc"]))), "is not numeric (dtype <U2)"),
        ("structured", zipped(member("rec.npy", np.zeros(3, dtype=[("x", "<f4"), ("y", "<i4")]))),
         "structured dtype"),
        ("datetime", zipped(member("t.npy", np.array(["2024-01-01"], dtype="M8[D]"))), "is not numeric"),
        ("opaque_without_manifest", bf16_plain, "opaque dtype |V2 and no manifest entry"),
        ("e5m2_saved_by_numpy", e5m2_plain, "descr is not a valid dtype descriptor"),
        ("not_npy_member", zipped(lambda zf: zf.writestr("readme.txt", b"hi")), "is not a .npy array"),
        ("duplicate_member", zipped(member("w.npy", np.ones(2)), duplicate("w.npy")), "appears twice"),
        ("manifest_not_json", zipped(member("w.npy", np.ones(2)), member("__varscale__.npy", np.array("{oops"))),
         "is not valid JSON"),
        ("manifest_bad_dtype", zipped(member("w.npy", np.ones(2, "<u2")),
                                      member("__varscale__.npy", np.array('{"dtypes": {"w": "float128"}}'))),
         "invalid 'dtypes'"),
        ("manifest_wrong_storage", zipped(member("w.npy", np.ones(2, "<f4")),
                                          member("__varscale__.npy", np.array('{"dtypes": {"w": "bfloat16"}}'))),
         "cannot hold bfloat16 bit patterns"),
        ("manifest_unknown_tensor", zipped(member("w.npy", np.ones(2)),
                                           member("__varscale__.npy", np.array('{"dtypes": {"v": "bfloat16"}}'))),
         "lists dtypes for tensors the archive lacks: 'v'"),
        ("truncated_archive", truncated, "not a readable npz file"),
        ("not_a_zip", not_zip, "not a readable npz file"),
        # zip-slip: members unzip would write outside its folder
        ("member_dotdot", zipped(member("../../escaped.npy", np.ones(2))),
         "member '../../escaped.npy' is not a relative path inside the archive"),
        ("member_inner_dotdot", zipped(member("a/../../b.npy", np.ones(2))), "is not a relative path"),
        ("member_absolute", zipped(member("/x.npy", np.ones(2))), "member '/x.npy' is not a relative path"),
        ("member_backslash", zipped(member("a\\..\\b.npy", np.ones(2))), "is not a relative path"),
    ]


NPZ_HOSTILE = _npz_hostile_cases()


def test_npz_corrupted_member_data(tmp_path: Path) -> None:
    path = tmp_path / "c.npz"
    np.savez(path, w=rand((1000,), np.float32))
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF  # inside the stored member's payload: the CRC no longer matches
    path.write_bytes(bytes(data))
    with open_weights(path) as wf:
        with pytest.raises(ReadError) as exc:
            read_all(wf, "w")
    assert_read_error(exc, "cannot be read: BadZipFile")


def test_npz_lying_deflate_ratio(tmp_path: Path) -> None:
    """A central directory claiming more than deflate can produce is refused before reading."""
    path = tmp_path / "lie.npz"
    np.savez_compressed(path, w=np.zeros(1000, np.float32))
    with zipfile.ZipFile(path) as zf:
        zinfo = zf.getinfo("w.npy")
    zinfo.file_size = 2000 * zinfo.compress_size + 4096  # what a forged directory would say
    with zipfile.ZipFile(path) as zf, pytest.raises(ReadError) as exc:
        npz = NpzFile.__new__(NpzFile)
        npz.path, npz._zf = path, zf
        npz._check_zinfo(zinfo)
    assert_read_error(exc, "beyond deflate's 1032:1 maximum (a zip bomb)")


# --- HDF5 ------------------------------------------------------------------------------------


def test_hdf5_round_trip_keras_layout(tmp_path: Path) -> None:
    kernel = rand((3, 3, 16, 24), np.float32)
    bias = np.zeros(24, np.float32)
    bf = rand((20, 7), BF16, 1)
    path = tmp_path / "model.weights.h5"
    with h5py.File(path, "w") as f:
        f.attrs["varscale"] = '{"tensors": {}}'
        f.attrs["keras_version"] = np.bytes_(b"3.15.1")
        f.attrs["not_text"] = np.arange(3)
        f.create_dataset("layers/conv2d/vars/0", data=kernel, chunks=(3, 3, 4, 8), compression="gzip", shuffle=True)
        f.create_dataset("layers/conv2d/vars/1", data=bias)
        ds = f.create_dataset("layers/dense/vars/0", data=bf)  # opaque |V2, Keras style
        ds.attrs["dtype"] = "bfloat16"
        ds = f.create_dataset("layers/dense/vars/1", data=bf.view("<u2"))  # bit patterns
        ds.attrs["dtype"] = b"bfloat16"
        f.create_dataset("scalar", data=np.float64(0.5))
        f.create_dataset("be", data=rand((5,), ">f8", 2))
    with open_weights(path) as wf:
        assert isinstance(wf, HDF5File)
        assert wf.metadata == {"varscale": '{"tensors": {}}', "keras_version": "3.15.1"}
        infos = {i.name: i for i in wf.tensors()}
        assert infos["layers/dense/vars/0"].dtype == BF16
        assert infos["layers/dense/vars/1"].dtype == BF16
        assert infos["scalar"].shape == ()
        for chunk in (1, 10, 50, 1 << 20):
            np.testing.assert_array_equal(read_all(wf, "layers/conv2d/vars/0", chunk), kernel)
            np.testing.assert_array_equal(bits(read_all(wf, "layers/dense/vars/0", chunk)), bits(bf))
            np.testing.assert_array_equal(bits(read_all(wf, "layers/dense/vars/1", chunk)), bits(bf))
        np.testing.assert_array_equal(read_all(wf, "layers/conv2d/vars/1"), bias)
        assert read_all(wf, "scalar") == 0.5
        assert read_all(wf, "be").dtype.isnative


def test_hdf5_provenance_dataset(tmp_path: Path) -> None:
    path = tmp_path / "p.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("__varscale__", data='{"tensors": {}}', dtype=h5py.string_dtype())
        f.create_dataset("w", data=np.ones(3, np.float32))
    with open_weights(path) as wf:
        assert wf.metadata == {"varscale": '{"tensors": {}}'}
        assert [i.name for i in wf.tensors()] == ["w"]


def _h5_hostile_cases() -> list[tuple[str, object, str]]:
    def h5(fill):
        def build(d: Path) -> Path:
            path = d / "x.h5"
            with h5py.File(path, "w") as f:
                f.create_dataset("ok", data=np.ones(4, np.float32))
                fill(f, d)
            return path

        return build

    def truncated(d: Path) -> Path:
        path = d / "x.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("w", data=rand((5000,), np.float32))
        path.write_bytes(path.read_bytes()[:1500])
        return path

    def garbage(d: Path) -> Path:
        (d / "x.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
        return d / "x.h5"

    def refs(f, d):
        f.create_dataset("refs", data=[f["ok"].ref], dtype=h5py.ref_dtype)

    def external(f, d):
        (d / "ext.bin").write_bytes(b"\0" * 16)
        f.create_dataset("ext", shape=(4,), dtype="<f4", external=[(str(d / "ext.bin"), 0, 16)])

    def external_provenance(f, d, name=b"varscale"):
        # The issue's recipe: a root-level scalar string whose storage is another file.
        (d / "secret.txt").write_bytes(SECRET.ljust(64, b"."))
        p = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        p.set_layout(h5py.h5d.CONTIGUOUS)
        p.set_external(str(d / "secret.txt").encode(), 0, 64)
        t = h5py.h5t.C_S1.copy()
        t.set_size(64)
        h5py.h5d.create(f.id, name, t, h5py.h5s.create(h5py.h5s.SCALAR), dcpl=p)

    def virtual(f, d):
        with h5py.File(d / "source.h5", "w") as src:
            src.create_dataset("data", data=np.ones(4, np.float32))
        layout = h5py.VirtualLayout(shape=(4,), dtype="<f4")
        layout[:] = h5py.VirtualSource(str(d / "source.h5"), "data", shape=(4,))
        f.create_virtual_dataset("vds", layout)

    def giant_string(f, d):
        t = h5py.h5t.C_S1.copy()
        t.set_size(2**31 - 1)  # no data written: reading it would allocate 2 GiB of fill
        h5py.h5d.create(f.id, b"varscale", t, h5py.h5s.create(h5py.h5s.SCALAR))

    return [
        ("strings", h5(lambda f, d: f.create_dataset("g/names", data=["a", "b"])), "dataset '/g/names' holds strings"),
        ("fixed_bytes", h5(lambda f, d: f.create_dataset("raw", data=np.array([b"ab", b"cd"]))), "holds strings"),
        ("compound", h5(lambda f, d: f.create_dataset("rec", data=np.zeros(2, dtype=[("x", "<f4"), ("y", "<i8")]))),
         "dataset '/rec' has the compound type"),
        ("vlen", h5(lambda f, d: f.create_dataset("v", shape=(2,), dtype=h5py.vlen_dtype(np.float32))),
         "dataset '/v' holds variable-length data"),
        ("object_refs", h5(refs), "dataset '/refs' holds object references"),
        ("opaque_no_attr", h5(lambda f, d: f.create_dataset("bf", data=rand((4,), BF16))),
         "dataset '/bf' is opaque (2-byte) with no dtype attribute"),
        ("empty_dataspace", h5(lambda f, d: f.create_dataset("e", data=h5py.Empty("f4"))), "has no dataspace"),
        ("unwritten_giant", h5(lambda f, d: f.create_dataset("big", shape=(10**9,), dtype="<f4")),
         "dataset '/big' claims 4000000000 bytes but the file stores only 0"),
        ("external_storage", h5(external), "uses external or virtual storage"),
        ("external_provenance", h5(external_provenance),
         "dataset '/varscale' uses external or virtual storage"),
        ("external_provenance_alias", h5(lambda f, d: external_provenance(f, d, b"__varscale__")),
         "dataset '/__varscale__' uses external or virtual storage"),
        ("virtual_dataset", h5(virtual), "dataset '/vds' uses external or virtual storage"),
        ("giant_unstored_provenance", h5(giant_string),
         "dataset '/varscale' is a 2,147,483,647-byte string of which the file stores 0 bytes"),
        ("truncated", truncated, "not a readable HDF5 file"),
        ("garbage", garbage, "not a readable HDF5 file"),
    ]


#: What the external HDF5 storage points at: it must never reach a message.
SECRET = b"root:x:0:0:SECRET-MARKER"

H5_HOSTILE = _h5_hostile_cases()


#: npz and HDF5 files may fail when opened or only when a tensor is read: both count.
CONTAINER_HOSTILE = [(f"npz-{c[0]}", *c[1:]) for c in NPZ_HOSTILE] + [
    (f"hdf5-{c[0]}", *c[1:]) for c in H5_HOSTILE
]


@pytest.mark.parametrize(
    ("build", "fragment"), [c[1:] for c in CONTAINER_HOSTILE], ids=[c[0] for c in CONTAINER_HOSTILE]
)
def test_npz_and_hdf5_hostile_corpus(tmp_path: Path, build, fragment: str) -> None:
    path = build(tmp_path)
    with pytest.raises(ReadError) as exc:
        with open_weights(path) as wf:
            for info in wf.tensors():
                read_all(wf, info.name)
    assert_read_error(exc, fragment)
    assert b"SECRET-MARKER".decode() not in str(exc.value)


def test_hdf5_external_provenance_is_never_opened(tmp_path: Path) -> None:
    """The external file is a FIFO with no writer: opening it would block the reader for
    ever, so returning at all (in a child with a deadline) proves it was never opened."""
    import multiprocessing

    os.mkfifo(tmp_path / "secret.txt")
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("ok", data=np.ones(4, np.float32))
        p = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        p.set_layout(h5py.h5d.CONTIGUOUS)
        p.set_external(str(tmp_path / "secret.txt").encode(), 0, 64)
        t = h5py.h5t.C_S1.copy()
        t.set_size(64)
        h5py.h5d.create(f.id, b"varscale", t, h5py.h5s.create(h5py.h5s.SCALAR), dcpl=p)
    child = multiprocessing.get_context("fork").Process(target=_open_expecting_refusal, args=(path,))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("the reader blocked: it opened the external FIFO")
    assert child.exitcode == 0


def _open_expecting_refusal(path: Path) -> None:
    try:
        open_weights(path)
    except ReadError as exc:
        os._exit(0 if "uses external or virtual storage" in str(exc) else 2)
    os._exit(3)


# --- special files and the tensor limit ------------------------------------------------------


@pytest.mark.parametrize("name", ["w.safetensors", "w.npz", "w.h5", "w", "model.safetensors.index.json"])
@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "dev_urandom_link", "directory"])
def test_special_files_are_refused_unopened(tmp_path: Path, name: str, kind: str) -> None:
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)  # no writer: an open without O_NONBLOCK would block for ever
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero" if kind == "dev_zero_link" else "/dev/urandom")
    if kind == "directory" and not name.endswith(".index.json"):
        return  # a folder is read as an HF checkpoint folder: test_open_weights_errors
    what = "index" if name.endswith(".index.json") else "weight file"
    expected = {"fifo": "a FIFO (named pipe)", "directory": "a directory"}.get(kind, "a character device")
    with pytest.raises(ReadError) as exc:
        # an index that is a folder: found by opening the checkpoint folder holding it
        open_weights(tmp_path if kind == "directory" else path)
    assert_read_error(exc, f"cannot read the {what}: it is {expected}, not a regular file")


def _zero_size_header(path: Path, n: int, metadata: dict | None = None) -> Path:
    header: dict = {f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(n)}
    if metadata is not None:
        header = {"__metadata__": metadata, **header}
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    return path


def test_tensor_limit_is_checked_before_parsing(tmp_path: Path) -> None:
    path = _zero_size_header(tmp_path / "many.safetensors", 3000)
    with pytest.raises(ReadError) as exc:
        SafetensorsFile(path, max_tensors=2999)
    assert_read_error(exc, "lists 3,000 entries in its header, more than the 2,999 accepted (use --max-tensors")
    with SafetensorsFile(path, max_tensors=3000) as wf:
        assert len(wf.tensors()) == 3000
    # Braces inside string values (provenance JSON) are not objects: exact count, accepted.
    braces = _zero_size_header(tmp_path / "b.safetensors", 10, {"varscale": "{" * 5000})
    with open_weights(braces, max_tensors=10) as wf:
        assert len(wf.tensors()) == 10
    with pytest.raises(ReadError, match="lists 10 entries"):
        open_weights(braces, max_tensors=9)


def test_tensor_limit_in_every_format(tmp_path: Path) -> None:
    arrays = {f"t{i}": np.ones(1, np.float32) for i in range(5)}
    np.savez(tmp_path / "x.npz", **arrays)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        for k, v in arrays.items():
            f.create_dataset(k, data=v)
    index, _ = _sharded(tmp_path)
    for path, n in ((tmp_path / "x.npz", 5), (tmp_path / "x.h5", 5), (index, 3)):
        with open_weights(path, max_tensors=n) as wf:
            assert len(wf.tensors()) == n
        with pytest.raises(ReadError, match="more than the 2 accepted"):
            open_weights(path, max_tensors=2)


# --- dispatch --------------------------------------------------------------------------------


def test_open_weights_sniffs_magic_without_suffix(tmp_path: Path) -> None:
    a = rand((3, 4), np.float32)
    safetensors.numpy.save_file({"a": a}, tmp_path / "s")
    np.savez(tmp_path / "n.npz", a=a)
    (tmp_path / "n.npz").rename(tmp_path / "n")
    with h5py.File(tmp_path / "h", "w") as f:
        f.create_dataset("a", data=a)
    for name, cls in (("s", SafetensorsFile), ("n", NpzFile), ("h", HDF5File)):
        with open_weights(tmp_path / name) as wf:
            assert isinstance(wf, cls)
            np.testing.assert_array_equal(read_all(wf, "a"), a)
            assert wf.tensors() == [TensorInfo("a", (3, 4), np.dtype(np.float32), 48)]


@pytest.mark.parametrize(
    ("setup", "fragment"),
    [
        (lambda d: d / "missing.safetensors", "no such file"),
        (lambda d: (d / "w.bin").write_bytes(b"\0" * 40) and d / "w.bin", "unknown weight file format"),
        (lambda d: (d / "sub").mkdir() or d / "sub", "holds neither model.safetensors"),
    ],
    ids=["missing", "unknown", "empty_dir"],
)
def test_open_weights_errors(tmp_path: Path, setup, fragment: str) -> None:
    with pytest.raises(ReadError) as exc:
        open_weights(setup(tmp_path))
    assert_read_error(exc, fragment)


def test_chunks_are_bounded_and_fresh(tmp_path: Path) -> None:
    """No chunk exceeds chunk_elems, and each is a new, writable array."""
    a = rand((50, 41), np.float32)
    safetensors.numpy.save_file({"a": a}, tmp_path / "a.safetensors")
    np.savez_compressed(tmp_path / "a.npz", a=a)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("a", data=a)
    for name in ("a.safetensors", "a.npz", "a.h5"):
        with open_weights(tmp_path / name) as wf:
            chunks = list(wf.iter_chunks("a", 64))
            assert max(c.size for c in chunks) <= 64
            assert sum(c.size for c in chunks) == a.size
            assert all(c.flags.writeable for c in chunks)
            assert len({id(c) for c in chunks}) == len(chunks)


def test_npy_header_parser_reads_bounded_bytes() -> None:
    """A header claiming 2 GiB is refused after reading 12 bytes, not 2 GiB."""
    from varscale_cli.formats.npz import parse_npy_header

    stream = io.BytesIO(b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 31) + b"{" * 64)
    with pytest.raises(ValueError, match="more than 10000"):
        parse_npy_header(stream)
    assert stream.tell() == 12


@pytest.mark.parametrize("fmt", [f.name for f in REGISTRY])
def test_open_weights_finds_every_registered_format_by_suffix_and_by_magic(
    tmp_path: Path, fmt: str
) -> None:
    spec = formats.get(fmt)
    a = rand((3, 4), np.float32)
    items = [WriteItem("a", a.shape, a.dtype, lambda: iter([a.reshape(-1)]))]
    names = [f"w{suffix}" for suffix in spec.suffixes] + ["w"]
    for name in names:
        formats.write(fmt, tmp_path / name, items, {"format": "pt"})
        with open_weights(tmp_path / name) as wf:
            assert type(wf) is spec.reader, name
            np.testing.assert_array_equal(read_all(wf, "a"), a)


def test_reused_chunks_hold_the_same_values_as_fresh_ones(tmp_path: Path) -> None:
    """iter_chunks(reuse=True) (verify's reads) may read every chunk into one buffer: each
    chunk, read before the next is asked for, holds what a fresh read gives, across tensors
    of different sizes and dtypes, ragged last chunks included."""
    rng = np.random.default_rng(0)
    tensors = {
        "a": rng.standard_normal(1000).astype(np.float32),
        "b": rng.standard_normal((7, 33)).astype(np.float64),
        "c": rng.integers(0, 2**16, 5000, dtype=np.uint16).view(ml_dtypes.bfloat16),
    }
    path = tmp_path / "w.safetensors"
    safetensors.numpy.save_file(tensors, str(path))
    with open_weights(path) as wf:
        for name, want in tensors.items():
            fresh = list(wf.iter_chunks(name, 64))
            reused = [c.copy() for c in wf.iter_chunks(name, 64, reuse=True)]
            assert len(reused) == len(fresh) > 1
            for f, r in zip(fresh, reused, strict=True):
                assert f.dtype == r.dtype == want.dtype
                assert f.tobytes() == r.tobytes()
            assert b"".join(f.tobytes() for f in fresh) == want.tobytes()
