"""Which path computes the float32 transforms: the compiled C kernels or numpy.

Both give the same bytes (tests/test_kernels.py); the kernels are several times faster. They
are used when the extension was built (``varscale_cli._native``) unless ``VARSCALE_NO_NATIVE``
is set to anything but ``0``; `native_path` overrides both for a block of code.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import numpy as np

#: Set to anything but "" or "0" to force the numpy path.
DISABLE_ENV = "VARSCALE_NO_NATIVE"


class Kernels(Protocol):
    """What the compiled kernels' loader (``varscale_cli._native.kernels``) provides."""

    def uniform_f32(self, bits: np.ndarray, out: np.ndarray, scale: np.float32) -> None: ...

    def normal_f32(
        self, bits: np.ndarray, out: np.ndarray, xscale: np.float32, outscale: np.float32,
        bound: np.float32, truncated: bool,
    ) -> None: ...

    def moments_f32(self, x: np.ndarray, lo: float, hi: float) -> np.ndarray: ...

    def ks_normal(
        self, xs: np.ndarray, loc: float, scale: float, cuts: tuple[float, float] | None
    ) -> float: ...

    def gather32(self, x: np.ndarray, positions: np.ndarray, first: int) -> np.ndarray: ...

    def first_diff(self, a: np.ndarray, b: np.ndarray) -> int: ...

    def fill32(
        self, key: tuple[int, int], first: int, out: np.ndarray, kind: str, odtype: str,
        xscale: np.float32, outscale: np.float32, bound: np.float32, loc: np.float32 | None,
    ) -> None: ...

    def philox_words(self, path: str, key: tuple[int, int], block: int, nblocks: int) -> np.ndarray | None: ...

    def round16(self, x: np.ndarray, out: np.ndarray, odtype: str) -> None: ...

    def householder_qr(self, at: np.ndarray, qt: np.ndarray) -> None: ...


#: None: follow the environment; True / False: set by `native_path`.
_forced: bool | None = None


def compiled_kernels() -> Kernels | None:
    """The compiled kernels, or None when the extension is not built or the numpy path is
    chosen (`native_path`, else ``VARSCALE_NO_NATIVE``)."""
    enabled = _forced if _forced is not None else os.environ.get(DISABLE_ENV, "") in ("", "0")
    return _load() if enabled else None


@functools.cache
def _load() -> Kernels | None:
    """Load the extension once per process (about a millisecond)."""
    try:
        from ..._native import kernels
    except (ImportError, OSError, AttributeError):
        # AttributeError: an extension built from an older checkout lacks a newer function;
        # the numpy path gives the same results.
        return None
    return kernels


@contextmanager
def native_path(enabled: bool) -> Iterator[Kernels | None]:
    """Within the block, compute float32 transforms with the compiled kernels (``True``, when
    built) or with numpy (``False``), whatever ``VARSCALE_NO_NATIVE`` says; yields the kernels
    in use (None on the numpy path). Process-wide, not per thread: it is for tests and
    benchmarks that compare the two paths.

        >>> with native_path(False):
        ...     pass  # everything sampled here takes the numpy path
    """
    global _forced
    saved = _forced
    _forced = enabled
    try:
        yield compiled_kernels()
    finally:
        _forced = saved
