"""The ``.npy`` member format (numpy.lib.format): its header, parsed and written as numpy does.

Kept apart from the npz archive logic because it is a format of its own (one array per
stream); the npz module reads and writes its members with these.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import numpy as np

#: numpy's own default ``max_header_size`` (numpy.lib.format._MAX_HEADER_SIZE): np.load refuses
#: larger headers without allow_pickle, and no plain numeric array needs more.
MAX_NPY_HEADER = 10_000

_NPY_MAGIC = b"\x93NUMPY"


def read_exact(fp: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes (fewer only at end of stream), never more than asked for."""
    parts = []
    left = n
    while left > 0:
        piece = fp.read(left)
        if not piece:
            break
        parts.append(piece)
        left -= len(piece)
    return b"".join(parts)


def parse_npy_header(fp: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran_order, dtype, header length in bytes) of the ``.npy`` stream ``fp``.

    Reads at most 12 + `MAX_NPY_HEADER` bytes whatever the header claims.

    Raises:
        ValueError: not a .npy stream, unsupported version, oversized or malformed header.
    """
    magic = read_exact(fp, 8)
    if len(magic) != 8 or magic[:6] != _NPY_MAGIC:
        raise ValueError("not a .npy array (bad magic bytes)")
    version = (magic[6], magic[7])
    if version == (1, 0):
        size_len, reader = 2, np.lib.format.read_array_header_1_0
    elif version in ((2, 0), (3, 0)):
        # 3.0 differs from 2.0 only by a UTF-8 header, which numeric dtypes never need.
        size_len, reader = 4, np.lib.format.read_array_header_2_0
    else:
        raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
    size_bytes = read_exact(fp, size_len)
    if len(size_bytes) != size_len:
        raise ValueError("the .npy header is truncated")
    hlen = int.from_bytes(size_bytes, "little")
    if hlen > MAX_NPY_HEADER:
        raise ValueError(f"its .npy header claims {hlen} bytes, more than {MAX_NPY_HEADER}")
    header = read_exact(fp, hlen)
    if len(header) != hlen:
        raise ValueError("the .npy header is truncated")
    shape, fortran, dtype = reader(io.BytesIO(size_bytes + header), max_header_size=MAX_NPY_HEADER)
    if not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"invalid shape {shape!r}")
    return tuple(shape), bool(fortran), dtype, 8 + size_len + hlen


def npy_header(shape: tuple[int, ...], dtype: np.dtype) -> bytes:
    """The ``.npy`` header numpy writes for a C-order array (version 1.0, else 2.0)."""
    d = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    try:
        np.lib.format.write_array_header_1_0(buf, d)
    except ValueError:  # header over 64 KiB (absurdly many dims); numpy falls back the same way
        buf = io.BytesIO()
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()
