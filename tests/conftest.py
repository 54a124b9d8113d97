"""Session-wide checks.

``make test`` and ``make test-oldest`` set VARSCALE_REQUIRE_NATIVE=1: there the C extension is
expected to be built (the machines have a compiler), so a build that silently failed must fail
the run instead of skipping every compiled-path test and passing on the numpy path alone.
"""

from __future__ import annotations

import os

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    if os.environ.get("VARSCALE_REQUIRE_NATIVE", "") in ("", "0"):
        return
    from varscale_cli.core.stream import native_path

    with native_path(True) as kernels:
        if kernels is None:
            raise pytest.UsageError(
                "VARSCALE_REQUIRE_NATIVE is set but the C extension varscale_cli._native."
                "vskernels is not built (or does not load): the compiled-path tests would be "
                "skipped; fix the build (pip install -e . prints the compiler's error)"
            )
