"""Run the application on a TCP port until SIGTERM/SIGINT, then stop gracefully.

Shutdown order: close the listening socket (new connections are refused; Kubernetes has already taken
the pod out of its endpoints during the preStop delay), let every in-flight request finish — reading
the rest of its body and writing its answer — for up to `shutdown_timeout` seconds, then let aiohttp
close idle connections, run the cleanup contexts (the stores close here) and cancel what is left.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import ssl
from collections.abc import Callable

from aiohttp import web

from gatewaycerts.appkeys import IN_FLIGHT

log = logging.getLogger("gatewaycerts")


class ListenError(OSError):
    """The listening socket could not be bound (port in use, address not local, no permission)."""

    @classmethod
    def of(cls, host: str, port: int, exc: OSError) -> ListenError:
        # asyncio's message repeats the address tuple; the OS's own words are clearer on one line.
        reason = os.strerror(exc.errno) if exc.errno and exc.errno > 0 else str(exc.strerror or exc)
        if exc.errno == errno.EADDRINUSE:
            reason += " (another process listens there: is gatewaycerts already running?)"
        return cls(exc.errno, f"cannot listen on {host}:{port}: {reason}")


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float,
    on_started: Callable[[], None],
    reuse_port: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """`reuse_port`: bind with SO_REUSEPORT, beside the other worker processes of one `serve --workers N`
    (whose supervisor stops them with SIGTERM alone: `stop_signals`). `ssl_context`: serve HTTPS (web/tls.py)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in stop_signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            raise ListenError.of(host, port, exc) from None
        on_started()
        await stop.wait()
        await site.stop()
        in_flight = app[IN_FLIGHT]
        log.info(
            "shutting down: listener closed; %d request(s) in flight get up to %s s to finish",
            in_flight.count,
            shutdown_timeout,
        )
        try:
            async with asyncio.timeout(shutdown_timeout):
                await in_flight.drain()
        except TimeoutError:
            log.warning("shutdown timeout: %d request(s) still in flight are cancelled", in_flight.count)
    finally:
        try:
            # The handlers stay through the cleanup: a repeated signal (a second Ctrl-C; SIGTERM from the
            # supervisor and from a kill of the whole process group) must not cut the stores' and the order
            # worker's shutdown short.
            await runner.cleanup()
        finally:
            for sig in stop_signals:
                loop.remove_signal_handler(sig)
            for handler in logging.getLogger().handlers:
                handler.flush()  # the access lines still buffered (web/logs.JsonStreamHandler)
