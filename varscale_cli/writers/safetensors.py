"""A streaming safetensors writer: header from names/dtypes/shapes first, then tensor bytes.

The layout matches the reference writer (huggingface/safetensors ``tensor.rs`` ``prepare``) so
that files are interchangeable byte for byte where the reference is deterministic:

* 8-byte little-endian u64 header length, then compact JSON, space-padded to a multiple of 8;
* ``__metadata__`` first (keys sorted here; the reference uses hash order, which is why it is
  only reproducible with a single key), then the tensors in offset order;
* tensors sorted by dtype alignment descending (the reference ``Dtype`` enum order), ties by
  name, offsets consecutive with no holes, so every tensor is aligned to its element size.

The ``safetensors`` package is not used: it needs every tensor in memory at once.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from contextlib import closing
from pathlib import Path

from . import WriteItem, chunk_bytes

#: numpy dtype name -> (safetensors code, rank in the reference ``Dtype`` enum). The enum is
#: declared in increasing alignment order and the writer sorts by it descending: F64 > C64 >
#: F32 > BF16 > F16 (verified against safetensors 0.8.0).
DTYPE_CODES: dict[str, tuple[str, int]] = {
    "float16": ("F16", 13),
    "bfloat16": ("BF16", 14),
    "float32": ("F32", 17),
    "complex64": ("C64", 18),
    "float64": ("F64", 19),
}


def layout(
    items: Sequence[WriteItem], metadata: Mapping[str, str]
) -> tuple[bytes, list[WriteItem]]:
    """The padded header (without the 8-byte length) and the items in offset order.

    Args:
        items: The tensors, in any order.
        metadata: The ``__metadata__`` map (str -> str).

    Returns:
        ``(header, ordered)``: the JSON header padded with spaces to a multiple of 8, and the
        items in the order their bytes must follow it.
    """
    # Python compares str by code point, which is the UTF-8 byte order Rust's String uses.
    ordered = sorted(items, key=lambda it: (-DTYPE_CODES[it.dtype.name][1], it.name))
    header: dict[str, object] = {"__metadata__": {k: metadata[k] for k in sorted(metadata)}}
    offset = 0
    for item in ordered:
        end = offset + item.nbytes
        header[item.name] = {
            "dtype": DTYPE_CODES[item.dtype.name][0],
            "shape": list(item.shape),
            "data_offsets": [offset, end],
        }
        offset = end
    # serde_json writes UTF-8 as is and escapes only '"', '\\' and control characters (as
    # \n, \t, ... or \u00xx in lowercase hex), exactly what ensure_ascii=False does.
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return text + b" " * (-len(text) % 8), ordered


def header_length(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """The padded JSON header length in bytes."""
    return len(layout(items, metadata)[0])


def planned_size(items: Sequence[WriteItem], metadata: Mapping[str, str]) -> int:
    """The exact file size."""
    return 8 + header_length(items, metadata) + sum(item.nbytes for item in items)


def write(path: Path, items: Sequence[WriteItem], metadata: Mapping[str, str]) -> None:
    """Write the header, then stream every tensor in header order with unbuffered writes.

    Raises:
        OutputError: A chunk iterator yields the wrong dtype or byte count (detected before
            anything beyond the tensor's extent is written).
        OSError: The file cannot be written.
    """
    header, ordered = layout(items, metadata)
    # Unbuffered: chunks are large, so a buffer would only add a copy.
    with open(path, "wb", buffering=0) as f:
        _write_all(f, len(header).to_bytes(8, "little") + header)
        for item in ordered:
            with closing(chunk_bytes(item)) as views:
                for view in views:
                    _write_all(f, view)


def _write_all(f: io.FileIO, data: bytes | memoryview) -> None:
    # A raw FileIO write may be partial (Linux caps one write at ~2 GiB), so loop.
    view = memoryview(data)
    while view.nbytes:
        view = view[f.write(view) or 0 :]
