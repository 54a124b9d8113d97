"""The writers against the real libraries as oracles: safetensors, numpy's npz loader, h5py."""

from __future__ import annotations

import hashlib
import itertools
import json
import struct
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import h5py
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from varscale_cli import formats as writers
from varscale_cli.core.dtypes import DTYPES, numpy_dtype
from varscale_cli.errors import InternalError, SpecError, UnsupportedDtype
from varscale_cli.formats import REGISTRY, check_items, format_for, planned_size
from varscale_cli.formats import safetensors as st_format
from varscale_cli.formats.description import Format
from varscale_cli.formats.hdf5 import flat_boxes
from varscale_cli.formats.items import WriteItem

BF16 = np.dtype(ml_dtypes.bfloat16)
META = {"format": "pt"}


def item(
    name: str,
    arr: np.ndarray,
    sizes: Sequence[int] | None = None,
    attrs: dict[str, str] | None = None,
) -> WriteItem:
    """A WriteItem over ``arr`` whose chunks cycle through ``sizes`` elements each.

    Chunks are slices of one reused buffer that is overwritten for the next chunk, as the real
    chunk engine does, so a writer that keeps a chunk past its turn writes wrong bytes.
    """
    flat = np.ascontiguousarray(arr).reshape(-1)

    def chunks() -> Iterator[np.ndarray]:
        steps = itertools.cycle(sizes or [max(flat.size, 1)])
        buf = np.empty(max(sizes or [flat.size]) if flat.size else 0, flat.dtype)
        pos = 0
        while pos < flat.size:
            n = min(next(steps), flat.size - pos)
            buf[:n] = flat[pos : pos + n]
            yield buf[:n]
            buf[:] = flat[:1] if flat.size else buf[:]  # poison the buffer before reuse
            pos += n

    return WriteItem(name, arr.shape, arr.dtype, chunks, attrs or {})


def sample(shape: tuple[int, ...], dtype: np.dtype | type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        real = rng.standard_normal((*shape, 2))
        return (real[..., 0] + 1j * real[..., 1]).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return (
        a.shape == b.shape
        and a.dtype.itemsize == b.dtype.itemsize
        and (a.reshape(-1).view(np.uint8).tobytes() == b.reshape(-1).view(np.uint8).tobytes())
    )


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: A mix every format stores: all float widths, bfloat16, complex, 0-d, empty, odd shapes.
def common_arrays() -> dict[str, np.ndarray]:
    return {
        "model.embed.weight": sample((7, 5), np.float32, 1),
        "layers/0/kernel": sample((3, 4, 5), BF16, 2),
        "layers/0/bias": sample((5,), np.float16, 3),
        "z.f64": sample((2, 3), np.float64, 4),
        "c64": sample((4,), np.complex64, 5),
        "scalar": np.array(1.5, np.float32),
        "empty": np.zeros((0, 3), np.float32),
        "tensor é": sample((1, 1, 1), np.float32, 6),
    }


# --------------------------------------------------------------------------- format_for


@pytest.mark.parametrize(
    ("name", "fmt", "expected"),
    [
        ("w.safetensors", None, "safetensors"),
        ("w.NPZ", None, "npz"),
        ("model.weights.h5", None, "hdf5"),
        ("w.hdf5", None, "hdf5"),
        ("w.bin", "npz", "npz"),
        ("w.npz", "npz", "npz"),  # explicit and suffix agree
    ],
)
def test_format_for(name: str, fmt: str | None, expected: str) -> None:
    assert format_for(Path(name), fmt) == expected


@pytest.mark.parametrize("chosen", REGISTRY, ids=lambda f: f.name)
def test_format_for_refuses_a_suffix_that_names_another_format(chosen: Format) -> None:
    """Every suffix of every other format contradicts --format: the file would be published
    under a name every reader takes for the other format."""
    for other in REGISTRY:
        if other is chosen:
            continue
        for suffix in other.suffixes:
            with pytest.raises(SpecError) as err:
                format_for(Path(f"o{suffix.upper()}"), chosen.name)
            message = str(err.value)
            assert f"--format {chosen.name}" in message and f"names {other.name}" in message
            assert f"o{suffix.upper()}" in message


def test_format_for_refuses_unknown_suffix_and_format() -> None:
    with pytest.raises(SpecError) as err:
        format_for(Path("out.bin"), None)
    assert str(err.value) == (
        "cannot tell the format of 'out.bin' from its suffix; use --format "
        "safetensors|npz|hdf5 or a .safetensors, .npz, .h5 or .hdf5 suffix"
    )
    with pytest.raises(SpecError, match="unknown format 'pt'"):
        format_for(Path("out.safetensors"), "pt")


# --------------------------------------------------------------------------- check_items


def _items(*specs: tuple[str, object]) -> list[WriteItem]:
    return [WriteItem(name, (2,), dt, lambda: iter(())) for name, dt in specs]


@pytest.mark.parametrize(
    ("fmt", "items", "error", "message"),
    [
        (
            "safetensors",
            _items(("w", np.complex128)),
            UnsupportedDtype,
            "tensor 'w' has dtype complex128, which safetensors cannot store; safetensors "
            "stores float16, bfloat16, float32, float64, complex64, float8_e4m3fn and float8_e5m2; "
            "write it as npz (.npz) or hdf5 (.h5)",
        ),
        (
            "npz",
            _items(("w", np.int32)),
            UnsupportedDtype,
            "tensor 'w' has dtype int32, which npz cannot store; npz stores float16, "
            "bfloat16, float32, float64, complex64, complex128, float8_e4m3fn and float8_e5m2",
        ),
        (
            "hdf5",
            _items(("w", ml_dtypes.float8_e4m3fnuz)),
            UnsupportedDtype,
            "tensor 'w' has dtype float8_e4m3fnuz, which hdf5 cannot store; hdf5 stores "
            "float16, bfloat16, float32, float64, complex64, complex128, float8_e4m3fn and "
            "float8_e5m2",
        ),
        (
            "npz",
            _items(("w", np.float32), ("w", np.float16)),
            SpecError,
            "tensor name 'w' appears more than once",
        ),
        (
            "safetensors",
            _items(("", np.float32)),
            SpecError,
            "a tensor has an empty name; every tensor needs a non-empty name",
        ),
        (
            "hdf5",
            _items(("a\x00b", np.float32)),
            SpecError,
            "tensor name 'a\\x00b' contains a NUL character",
        ),
        (
            "npz",
            _items(("\udc80", np.float32)),
            SpecError,
            "tensor name '\\udc80' is not valid Unicode (lone surrogate)",
        ),
        (
            "hdf5",
            _items(("a", np.float32), ("a/b", np.float32)),
            SpecError,
            "tensors 'a' and 'a/b' collide in HDF5: 'a' would have to be both a dataset and "
            "a group; rename one of them",
        ),
        (
            "hdf5",
            _items(("a/b/c", np.float32), ("a/b", np.float32)),
            SpecError,
            "tensors 'a/b' and 'a/b/c' collide in HDF5",
        ),
        *[
            (
                "hdf5",
                _items((bad, np.float32)),
                SpecError,
                f"tensor name '{bad}' is not a valid HDF5 path: it has an empty or '.' "
                "component (a leading, trailing or doubled '/')",
            )
            for bad in ("/a", "a/", "a//b", "a/./b", ".")
        ],
        (
            "npz",
            _items(("__varscale__", np.float32)),
            SpecError,
            "tensor name '__varscale__' is reserved for the npz dtype manifest; rename the tensor",
        ),
        (
            "npz",
            _items(("w", np.float32), ("w.npy", np.float32)),
            SpecError,
            "tensor names 'w' and 'w.npy' clash in an npz file (np.load(...)['w.npy'] returns "
            "'w'); rename one of them",
        ),
        (
            "npz",
            _items(("__varscale__.npy", np.float32)),
            SpecError,
            "tensor names '__varscale__' and '__varscale__.npy' clash in an npz file",
        ),
        (
            "safetensors",
            _items(("__metadata__", np.float32)),
            SpecError,
            "tensor name '__metadata__' is reserved for the safetensors metadata; rename the "
            "tensor",
        ),
        (
            "zip",
            _items(("w", np.float32)),
            SpecError,
            "unknown format 'zip'; use safetensors, npz or hdf5",
        ),
    ],
)
def test_check_items_refusals(
    fmt: str, items: list[WriteItem], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as err:
        check_items(fmt, items)
    assert type(err.value) is error
    assert str(err.value).startswith(message)


def test_check_items_refuses_reserved_hdf5_attr_and_negative_dims() -> None:
    bad_attr = WriteItem("w", (2,), np.float32, lambda: iter(()), {"dtype": "float32"})
    with pytest.raises(SpecError, match="attribute 'dtype' is reserved"):
        check_items("hdf5", [bad_attr])
    with pytest.raises(SpecError, match=r"negative dimension in shape \(2, -1\)"):
        check_items("npz", [WriteItem("w", (2, -1), np.float32, lambda: iter(()))])


def test_check_items_refuses_a_safetensors_header_over_100_mb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(st_format, "MAX_HEADER_SIZE", 100)
    items = _items(*[(f"t{i}", np.float32) for i in range(3)])
    with pytest.raises(SpecError, match="over the 100 byte limit of the reference reader"):
        check_items("safetensors", items)


def test_the_header_limit_counts_the_provenance_before_sampling(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The entries alone fit; with the real provenance in __metadata__ the header would not
    (a 250,000-tensor spec published a 125 MB header the reference reader refuses)."""
    from varscale_cli.engine.generate import provenance, write_file
    from varscale_cli.engine.resolve import resolve
    from varscale_cli.spec import parse_spec

    spec = parse_spec(
        "version: 1\nseed: 0\ntensors:\n" + "".join(f"  t{i}: {{shape: [8, 8]}}\n" for i in range(50))
    )
    tensors = resolve(spec, 0)
    metadata = provenance(spec, 0, tensors).file_metadata()
    items = [WriteItem(t.name, t.plan.shape, np.dtype(np.float32), lambda: iter(())) for t in tensors]
    entries_only = st_format.header_length(items, {})
    assert st_format.header_length(items, metadata) > 3 * entries_only  # provenance dominates
    monkeypatch.setattr(st_format, "MAX_HEADER_SIZE", 2 * entries_only)
    check_items("safetensors", items)  # the lower bound passes...
    out = tmp_path / "w.safetensors"
    with pytest.raises(SpecError, match=r"header would be [\d,]+ bytes \(tensor entries and the provenance"):
        write_file(tensors, metadata, out, "safetensors", force=False, workers=1,
                   on_chunk=lambda *_: pytest.fail("sampled before the header check"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_check_items_accepts_the_common_mix(fmt: str) -> None:
    arrays = common_arrays()
    check_items(fmt, [item(k, v) for k, v in arrays.items()])


def test_check_items_allows_what_only_some_formats_refuse() -> None:
    clash = _items(("a", np.float32), ("a/b", np.float32), ("w", np.float32), ("w.npy", np.float32))
    check_items("safetensors", clash)  # flat names: no groups, no .npy members
    check_items("npz", _items(("a", np.float32), ("a/b", np.float32), ("x", np.complex128)))
    # A leading '/' is an absolute zip member (a zip-slip for unzip): npz refuses it too.
    with pytest.raises(SpecError, match="cannot be an npz member"):
        check_items("npz", _items(("/x", np.complex128),))


# --------------------------------------------------------------------------- safetensors


def test_safetensors_is_byte_identical_to_the_reference(tmp_path: Path) -> None:
    from safetensors.numpy import save

    arrays = common_arrays()
    arrays.pop("layers/0/kernel")
    arrays["kernel/bf16"] = sample((3, 4, 5), BF16, 2)  # same data, a name sorting elsewhere
    arrays['weird "name"\n\u2028'] = sample((2,), np.float16, 7)
    out = tmp_path / "w.safetensors"
    items = [item(k, v, sizes=[3, 1]) for k, v in arrays.items()]
    writers.write("safetensors", out, items, META)
    # One metadata key: the only case where the reference writer is reproducible.
    assert out.read_bytes() == save(arrays, metadata=META)
    assert planned_size("safetensors", items, META) == out.stat().st_size


def test_safetensors_loads_in_numpy_and_torch_bit_for_bit(tmp_path: Path) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as torch_load_file

    arrays = common_arrays()
    arrays.update({f"many.{i:03d}": sample((i % 5 + 1, 3), np.float32, i) for i in range(60)})
    out = tmp_path / "w.safetensors"
    writers.write("safetensors", out, [item(k, v, sizes=[4]) for k, v in arrays.items()], META)

    loaded = load_file(out)
    assert loaded.keys() == arrays.keys()
    for name, arr in arrays.items():
        assert loaded[name].dtype == arr.dtype, name
        assert same_bits(loaded[name], arr), name

    via_torch = torch_load_file(out)
    for name, arr in arrays.items():
        t = via_torch[name]
        raw = t.view(torch.int16) if t.dtype == torch.bfloat16 else t
        assert tuple(t.shape) == arr.shape, name
        assert same_bits(raw.numpy(), arr), name
    with safe_open(out, framework="pt") as f:
        assert f.metadata() == META
        assert same_bits(f.get_tensor("z.f64").numpy(), arrays["z.f64"])


def test_safetensors_header_layout(tmp_path: Path) -> None:
    arrays = {
        "b": sample((3,), BF16),
        "a": sample((3,), np.float16),
        "c": sample((2,), np.float64),
        "d": sample((2,), np.complex64),
        "e": sample((1,), np.float32),
    }
    meta = {"varscale": '{"seed":1}', "format": "pt", "a": "1"}
    out = tmp_path / "w.safetensors"
    writers.write("safetensors", out, [item(k, v) for k, v in arrays.items()], meta)
    data = out.read_bytes()
    n = int.from_bytes(data[:8], "little")
    assert n % 8 == 0 and data[8:9] == b"{"
    text = data[8 : 8 + n].decode()
    assert text == text.rstrip() + " " * (len(text) - len(text.rstrip()))
    header = json.loads(text)
    assert list(header) == ["__metadata__", "c", "d", "e", "b", "a"]  # F64 C64 F32 BF16 F16
    assert list(header["__metadata__"]) == ["a", "format", "varscale"]
    offsets = [header[k]["data_offsets"] for k in list(header)[1:]]
    assert offsets[0][0] == 0 and all(x[1] == y[0] for x, y in itertools.pairwise(offsets))
    assert offsets[-1][1] + 8 + n == len(data)


def test_safetensors_bytes_do_not_depend_on_chunking_or_order(tmp_path: Path) -> None:
    arrays = common_arrays()
    digests = set()
    for i, sizes in enumerate([None, [1], [3, 7, 2], [64]]):
        out = tmp_path / f"w{i}.safetensors"
        names = sorted(arrays, reverse=bool(i % 2))
        writers.write("safetensors", out, [item(k, arrays[k], sizes) for k in names], META)
        digests.add(sha(out))
    assert len(digests) == 1


@pytest.mark.parametrize("fmt", writers.FORMATS)
@pytest.mark.parametrize(
    ("produced", "message"),
    [
        (
            np.zeros(5, np.float32),
            "produced 20 bytes but its shape (2, 3) and dtype float32 need 24",
        ),
        (np.zeros(7, np.float32), "produced more than its 24 bytes"),
        (np.zeros(6, np.float16), "produced a float16 chunk but its dtype is float32"),
    ],
)
def test_a_wrong_chunk_iterator_is_an_output_error(
    tmp_path: Path, fmt: str, produced: np.ndarray, message: str
) -> None:
    bad = WriteItem("w", (2, 3), np.float32, lambda: iter([produced[:2], produced[2:]]))
    with pytest.raises(InternalError, match=message.replace("(", r"\(").replace(")", r"\)")):
        writers.write(fmt, tmp_path / f"w.{fmt}", [bad], META)


def test_safetensors_stops_before_writing_past_a_tensor(tmp_path: Path) -> None:
    out = tmp_path / "w.safetensors"
    bad = WriteItem("w", (4,), np.float32, lambda: iter([np.ones(3, np.float32)] * 3))
    with pytest.raises(InternalError):
        writers.write("safetensors", out, [bad], META)
    header_end = 8 + int.from_bytes(out.read_bytes()[:8], "little")
    assert out.stat().st_size == header_end + 12  # the overflowing chunk was never written


def _tracked(closed: list[str], name: str, n: int) -> WriteItem:
    def chunks() -> Iterator[np.ndarray]:
        try:
            for _ in range(n):
                yield np.ones(2, np.float32)
        finally:
            closed.append(name)

    return WriteItem(name, (4,), np.float32, chunks)


@pytest.mark.parametrize("fmt", writers.FORMATS)
def test_a_failed_write_stops_the_producer_at_once(tmp_path: Path, fmt: str) -> None:
    closed: list[str] = []
    with pytest.raises(InternalError):  # the traceback keeps the writer's frames alive...
        writers.write(fmt, tmp_path / "w", [_tracked(closed, "w", 3)], META)
    assert closed == ["w"]  # ...but the producer was closed explicitly, not by the GC


def test_an_os_error_mid_tensor_stops_the_producer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from varscale_cli.formats import safetensors as st_writer

    calls = iter(range(100))
    real = st_writer._write_all

    def failing(f: object, data: bytes | memoryview) -> None:
        if next(calls) == 2:  # header, first chunk, then a full disk
            raise OSError(28, "No space left on device")
        real(f, data)  # type: ignore[arg-type]

    monkeypatch.setattr(st_writer, "_write_all", failing)
    closed: list[str] = []
    with pytest.raises(OSError, match="No space"):
        writers.write("safetensors", tmp_path / "w", [_tracked(closed, "w", 2)], META)
    assert closed == ["w"]


# --------------------------------------------------------------------------- npz


def test_npz_round_trip_with_awkward_names(tmp_path: Path) -> None:
    arrays = common_arrays()
    arrays.update(
        {
            "file": sample((2, 2), np.float32, 8),
            "allow_pickle": sample((3,), np.float64, 9),
            "a/b": sample((2,), np.complex128, 10),
            "mmap_mode": sample((2,), np.float16, 11),
        }
    )
    out = tmp_path / "w.npz"
    writers.write("npz", out, [item(k, v, sizes=[5, 2]) for k, v in arrays.items()], META)
    with np.load(out, allow_pickle=False) as npz:
        assert npz.files == ["__varscale__", *arrays]
        manifest = json.loads(npz["__varscale__"][()])
        assert manifest == {"dtypes": {"layers/0/kernel": "bfloat16"}, "metadata": META}
        for name, arr in arrays.items():
            got = npz[name]
            if manifest["dtypes"].get(name) == "bfloat16":
                assert got.dtype == np.dtype("<u2")
                got = got.view(BF16)
            assert got.dtype == arr.dtype, name
            assert same_bits(got, arr), name


def test_npz_members_match_np_save_and_are_reproducible(tmp_path: Path) -> None:
    import io

    arrays = {
        "w": sample((3, 4), np.float32),
        "s": np.array(2.0, np.float64),
        "e": np.zeros((0,), np.float16),
        "b": sample((5,), BF16),
    }
    digests = set()
    for i, sizes in enumerate([None, [1], [3, 5]]):
        out = tmp_path / f"w{i}.npz"
        writers.write("npz", out, [item(k, v, sizes) for k, v in arrays.items()], META)
        digests.add(sha(out))
    assert len(digests) == 1
    with zipfile.ZipFile(out) as zf:
        for info in zf.infolist():
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            assert info.compress_type == zipfile.ZIP_STORED
        for name, arr in arrays.items():
            expected = io.BytesIO()
            np.save(expected, arr.view(np.uint16) if arr.dtype == BF16 else arr)
            assert zf.read(name + ".npy") == expected.getvalue(), name


def test_npz_multi_key_metadata_is_sorted_in_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "w.npz"
    writers.write("npz", out, [item("w", sample((2,), np.float32))], {"z": "1", "a": "2"})
    with np.load(out, allow_pickle=False) as npz:
        text = str(npz["__varscale__"][()])
    assert text == '{"dtypes":{},"metadata":{"a":"2","z":"1"}}'


# --------------------------------------------------------------------------- HDF5


def test_hdf5_round_trip_groups_attrs_and_bf16(tmp_path: Path) -> None:
    arrays = common_arrays()
    arrays["layers/dense/vars/0"] = sample((4, 3), np.float32, 12)
    arrays["layers/dense/vars/1"] = sample((3,), BF16, 13)
    arrays["c128"] = sample((2, 2), np.complex128, 14)
    attrs = {name: {"varscale": json.dumps({"name": name})} for name in arrays}
    meta = {"format": "pt", "varscale": '{"seed":0}'}
    out = tmp_path / "w.h5"
    items = [item(k, v, sizes=[5], attrs=attrs[k]) for k, v in arrays.items()]
    writers.write("hdf5", out, items, meta)
    with h5py.File(out, "r") as f:
        assert dict(f.attrs) == meta
        assert isinstance(f["layers/dense"], h5py.Group)
        for name, arr in arrays.items():
            ds = f[name]
            assert ds.shape == arr.shape and ds.compression is None and ds.chunks is None
            plist = ds.id.get_create_plist()
            assert plist.get_layout() == h5py.h5d.CONTIGUOUS
            got = ds[()]
            if arr.dtype == BF16:
                assert ds.attrs["dtype"] == "bfloat16" and got.dtype == np.dtype("V2")
                got = got.view(BF16)
            else:
                assert "dtype" not in ds.attrs
            assert got.dtype == arr.dtype, name
            assert same_bits(np.asarray(got), arr), name
            assert ds.attrs["varscale"] == attrs[name]["varscale"]


def test_hdf5_is_reproducible_and_carries_no_timestamps(tmp_path: Path) -> None:
    arrays = common_arrays()
    t0 = int(time.time())
    digests = set()
    for i, sizes in enumerate([None, [2, 9]]):
        out = tmp_path / f"w{i}.h5"
        items = [item(k, v, sizes, {"varscale": "{}"}) for k, v in arrays.items()]
        writers.write("hdf5", out, items, META)
        digests.add(sha(out))
    assert len(digests) == 1
    data = out.read_bytes()
    # HDF5 stores object modification times as 32-bit seconds; none may be in the file.
    stamps = [t for t in range(t0 - 5, int(time.time()) + 5) if struct.pack("<I", t) in data]
    assert stamps == []


@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 1, 7), (1, 6, 1), (4, 3, 2, 2)])
@pytest.mark.parametrize("sizes", [[1], [7], [13, 2], [19], [59], [4, 1, 11]])
def test_hdf5_odd_chunk_boundaries(
    tmp_path: Path, shape: tuple[int, ...], sizes: list[int]
) -> None:
    arr = sample(shape, np.float32)
    out = tmp_path / "w.h5"
    writers.write("hdf5", out, [item("x/y", arr, sizes)], {})
    with h5py.File(out, "r") as f:
        assert same_bits(f["x/y"][()], arr)


@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple),
    data=st.data(),
)
def test_flat_boxes_cover_exactly_the_range_in_c_order(
    shape: tuple[int, ...], data: st.DataObject
) -> None:
    total = int(np.prod(shape))
    begin = data.draw(st.integers(0, total - 1))
    end = data.draw(st.integers(begin + 1, total))
    boxes = flat_boxes(begin, end, shape)
    assert len(boxes) <= 2 * len(shape) - 1
    index = np.arange(total).reshape(shape)
    covered = np.concatenate(
        [
            index[tuple(slice(s, s + c) for s, c in zip(start, count, strict=True))].reshape(-1)
            for start, count in boxes
        ]
    )
    assert covered.tolist() == list(range(begin, end))


def test_hdf5_takes_attributes_over_64_kib(tmp_path: Path) -> None:
    big = json.dumps({"spec": "x" * 100_000})
    out = tmp_path / "w.h5"
    writers.write(
        "hdf5",
        out,
        [item("w", sample((2,), np.float32), attrs={"varscale": big})],
        {"format": "pt", "varscale": big},
    )
    with h5py.File(out, "r") as f:
        assert f.attrs["varscale"] == big and f["w"].attrs["varscale"] == big


# --------------------------------------------------------------------------- planned_size


@pytest.mark.parametrize("fmt", ["npz", "hdf5"])
def test_planned_size_is_a_close_upper_bound(tmp_path: Path, fmt: str) -> None:
    arrays = common_arrays()
    arrays.update({f"blocks/{i}/w": sample((16, 16), np.float32, i) for i in range(20)})
    items = [item(k, v, attrs={"varscale": json.dumps({"n": k})}) for k, v in arrays.items()]
    meta = {"format": "pt", "varscale": "x" * 300}
    out = tmp_path / f"w.{fmt}"
    writers.write(fmt, out, items, meta)
    actual, planned = out.stat().st_size, planned_size(fmt, items, meta)
    data = sum(a.nbytes for a in arrays.values())
    assert actual <= planned <= actual + 100 * len(items) + data // 10 + 64 * 1024


# --------------------------------------------------------------------------- the registry


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(s, f.name) for f in REGISTRY for s in f.suffixes]
)
def test_every_registered_suffix_names_its_format(suffix: str, fmt: str) -> None:
    assert format_for(Path(f"w{suffix}"), None) == fmt
    assert format_for(Path(f"W{suffix.upper()}"), None) == fmt


@pytest.mark.parametrize(
    ("fmt", "dtype"), [(f.name, d.name) for f in REGISTRY for d in DTYPES]
)
def test_each_format_stores_exactly_its_dtypes(fmt: str, dtype: str) -> None:
    items = [WriteItem("w", (2,), numpy_dtype(dtype), lambda: iter(()))]
    if dtype in writers.get(fmt).dtypes:
        check_items(fmt, items)
    else:
        with pytest.raises(UnsupportedDtype, match=f"which {fmt} cannot store"):
            check_items(fmt, items)


@pytest.mark.parametrize(("fmt", "name"), [(f.name, n) for f in REGISTRY for n in f.reserved])
def test_each_format_refuses_its_reserved_names(fmt: str, name: str) -> None:
    with pytest.raises(SpecError, match=f"tensor name '{name}' is reserved"):
        check_items(fmt, _items((name, np.float32)))


@pytest.mark.parametrize("fmt", [f.name for f in REGISTRY if f.layout is not None])
def test_the_byte_layout_is_where_write_puts_every_tensor(tmp_path: Path, fmt: str) -> None:
    spec = writers.get(fmt)
    assert spec.layout is not None
    arrays = common_arrays()
    items = [item(k, v, sizes=[3]) for k, v in arrays.items()]
    out = tmp_path / f"w{spec.suffixes[0]}"
    writers.write(fmt, out, items, META)
    data = out.read_bytes()
    layout = spec.layout(items, META)
    assert data.startswith(layout.header)
    assert sorted(s.name for s in layout.tensors) == sorted(arrays)
    for span in layout.tensors:
        expected = np.ascontiguousarray(arrays[span.name]).reshape(-1).view(np.uint8).tobytes()
        assert span.nbytes == len(expected)
        assert data[span.offset : span.offset + span.nbytes] == expected, span.name


def test_every_format_module_is_registered() -> None:
    import importlib
    import pkgutil

    declared = []
    for info in pkgutil.iter_modules(writers.__path__):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{writers.__name__}.{info.name}")
            if hasattr(module, "FORMAT"):
                declared.append(module.FORMAT)
    assert sorted(f.name for f in declared) == sorted(writers.FORMATS)
    assert all(f in REGISTRY for f in declared)
