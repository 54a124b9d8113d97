"""Talking to a Dask scheduler with a deadline: the address checked, the connection timed out.

``distributed.Client(address, timeout=t)`` bounds the TCP connect but not the handshake that
follows (``distributed.comm.core.connect`` awaits the peer's first message with no timeout),
so a listener that accepts and never answers hung ``varscale generate --dask`` forever, and a
closed port took the full connect timeout of retries before a traceback. Here:

* the address is checked first (a scheme dask knows, a host and a port): a usage error, 2;
* for TCP, one plain socket connect tells a closed port (ECONNREFUSED) or an unknown host at
  once, without dask's retry loop;
* the client starts asynchronously under ``asyncio.wait_for(..., timeout)``, which covers
  the handshake too; past it, one ``Error:`` line, exit 1.

The default timeout is dask's own connect timeout, ``distributed.comm.timeouts.connect`` in the
dask config (30 s unless the user's dask config says otherwise): the value dask chose for a
scheduler that is slow to accept, so varscale waits exactly as long as any other dask client
before giving up. ``--dask-timeout`` overrides it. Only the connection is timed: the shards
themselves may legitimately run for hours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SpecError, VarscaleError

#: The schemes distributed ships a communication backend for.
SCHEMES = ("tcp", "tls", "inproc", "ucx", "ws", "wss")

#: One task: the function, its arguments, its key on the scheduler.
Task = tuple[Callable[..., Any], tuple[Any, ...], str]


def check_address(address: str) -> tuple[str, str, int | None]:
    """``(scheme, host, port)`` of a scheduler address such as ``tcp://host:8786``.

    Raises:
        SpecError: not an address (empty, spaces, no port, a port out of range, a scheme
            distributed does not know).
    """
    from distributed.comm.addressing import parse_address, parse_host_port

    shown = address if len(address) <= 80 else address[:77] + "..."
    usage = "give the scheduler's address as tcp://HOST:PORT (e.g. tcp://scheduler:8786)"
    if not address.strip() or any(c.isspace() for c in address):
        raise SpecError(f"--dask {shown!r} is not a scheduler address; {usage}")
    try:
        scheme, loc = parse_address(address)
    except ValueError:
        raise SpecError(f"--dask {shown!r} is not a scheduler address; {usage}") from None
    if scheme not in SCHEMES:
        raise SpecError(
            f"--dask {shown!r} has the unknown scheme {scheme!r}; dask speaks {', '.join(SCHEMES)}"
        )
    if scheme == "inproc":
        return scheme, loc, None
    try:
        host, port = parse_host_port(loc)
    except ValueError:
        raise SpecError(f"--dask {shown!r} has no port; {usage}") from None
    if not host or not isinstance(port, int) or not 0 < port < 65536:
        raise SpecError(f"--dask {shown!r} needs a host and a port in 1..65535; {usage}")
    return scheme, host, port


def default_timeout() -> float:
    """dask's own connect timeout (``distributed.comm.timeouts.connect``), in seconds."""
    import dask
    from dask.utils import parse_timedelta

    seconds = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), default="seconds")
    return float(seconds) if seconds else 30.0


def _probe(address: str, host: str, port: int, timeout: float) -> None:
    """Fail fast on a closed port or an unknown host (plain TCP connect, then close)."""
    # socket and asyncio (with ssl under it, ~40 ms) are imported only by a --dask run: this
    # module is imported by every sharded one.
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror as exc:
        raise VarscaleError(f"cannot reach the Dask scheduler {address}: unknown host ({exc.strerror})") from None
    except ConnectionRefusedError:
        raise VarscaleError(
            f"cannot reach the Dask scheduler {address}: connection refused (nothing listens there)"
        ) from None
    except TimeoutError:
        raise VarscaleError(
            f"cannot reach the Dask scheduler {address}: no connection within {timeout:g} s "
            "(--dask-timeout sets the limit)"
        ) from None
    except OSError as exc:
        raise VarscaleError(f"cannot reach the Dask scheduler {address}: {exc.strerror or exc}") from None


def run_tasks(
    address: str, timeout: float | None, tasks: Sequence[Task], on_connected: Callable[[], None]
) -> list[Any]:
    """Connect (within ``timeout`` seconds, handshake included), call ``on_connected`` (e.g.
    create the output folder: nothing exists on disk before the scheduler has answered), run
    ``tasks`` and return their results in order.

    Raises:
        SpecError: ``address`` is not an address, or ``timeout`` is not positive.
        VarscaleError: dask.distributed is missing, or no scheduler answered in time.
    """
    try:
        from distributed import Client
    except ImportError:
        raise VarscaleError("--dask needs dask.distributed: pip install 'varscale[dask]'") from None
    scheme, host, port = check_address(address)
    if timeout is not None and not timeout > 0:
        raise SpecError(f"--dask-timeout must be a positive number of seconds, got {timeout:g}")
    limit = default_timeout() if timeout is None else timeout
    import asyncio  # see _probe

    if scheme == "tcp" and port is not None:
        _probe(address, host, port, limit)

    async def started(client: Any) -> None:
        await client

    async def main() -> list[Any]:
        client = Client(address, asynchronous=True, timeout=limit)
        try:
            await asyncio.wait_for(started(client), limit)
        except OSError as exc:  # TimeoutError (no handshake) is an OSError too
            await client.close()
            reason = "no answer" if isinstance(exc, TimeoutError) else "no connection"
            raise VarscaleError(
                f"cannot reach the Dask scheduler {address}: {reason} within {limit:g} s "
                "(--dask-timeout sets the limit)"
            ) from None
        async with client:
            on_connected()
            futures = [client.submit(fn, *args, pure=False, key=key) for fn, args, key in tasks]
            return list(await client.gather(futures))

    return asyncio.run(main())
