"""Session-wide checks.

``make test`` and ``make test-oldest`` set VARSCALE_REQUIRE_NATIVE=1: there the C extension is
expected to be built (the machines have a compiler), so a build that silently failed must fail
the run instead of skipping every compiled-path test and passing on the numpy path alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

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


@pytest.fixture(params=["numpy", "compiled"])
def transform_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test on the numpy reference path and on the compiled C kernels (the bytes must
    be the same on both); skipped on the compiled side when the extension is not built."""
    from varscale_cli.core.stream import native_path

    with native_path(request.param == "compiled") as kernels:
        if request.param == "compiled" and kernels is None:
            pytest.skip("the C extension is not built")
        yield request.param


@pytest.fixture(scope="module")
def kernels() -> object:
    """The compiled kernels (skipped when the extension is not built)."""
    from varscale_cli.core.stream import native_path

    with native_path(True) as k:
        pass
    if k is None:  # pragma: no cover - CI builds the extension (VARSCALE_REQUIRE_NATIVE)
        pytest.skip("the C extension is not built")
    return k
