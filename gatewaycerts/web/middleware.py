"""The outermost middleware (request id, access log, request metrics) and the root app's generic JSON errors."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import REQUEST_ID
from gatewaycerts.core.context import request_id_var
from gatewaycerts.domain.errors import DomainError
from gatewaycerts.web.errors import ERROR_DIALECT, ErrorDialect, error_response
from gatewaycerts.web.lane import app_agnostic
from gatewaycerts.web.logs import AccessLog
from gatewaycerts.web.metrics import Metrics

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Probes and scrapes arrive every few seconds; their access lines would drown the rest.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
CLIENT_CLOSED = 499  # the client went away before the answer (nginx's convention)

access_log = logging.getLogger("gatewaycerts.access")
_access = AccessLog(access_log)

# Request ids need to be unique, not secret: a random per-process prefix and a counter (uuid4 reads the
# kernel's random source for every request, a visible cost on small requests).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


class InFlight:
    """Counts requests being handled, so a shutdown can wait for them while their connections still read.

    (aiohttp's own shutdown stops reading from connections first, which strands a request whose body is
    still arriving: aio-libs/aiohttp#2298.)
    """

    def __init__(self) -> None:
        self.count = 0
        self.draining = False
        self._idle: asyncio.Event | None = None  # made by drain(), the only one waiting for it

    def enter(self) -> None:
        self.count += 1

    def leave(self) -> None:
        self.count -= 1
        if self.count == 0 and self._idle is not None:
            self._idle.set()

    async def drain(self) -> None:
        """Mark the service as draining and wait until no request is in flight (bound it with a timeout)."""
        self.draining = True
        if self.count == 0:
            return
        if self._idle is None:
            self._idle = asyncio.Event()
        await self._idle.wait()


def route_template(request: web.Request) -> str:
    """The matched route's template (`/v2/{project_id}/apic/certificates/{certificate_id}`), never the raw
    path, so metrics labels stay few and carry no ids."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def request_middleware(
    metrics: Metrics | None,
    in_flight: InFlight,
    *,
    dialect: ErrorDialect | None = None,
    for_path: Callable[[str], ErrorDialect] | None = None,
) -> Any:
    """Give each request an id (the client's X-Request-Id when it is safe, else a new one; echoed back and
    put on every log record), then log one access line and count the request.

    It is also the root app's error middleware (one layer instead of two on every request): an error no
    sub-app's own error middleware answered gets the envelope of the sub-app that matched, if it declared one
    (`errors.use_dialect`: such a sub-app needs no error middleware of its own), else of `for_path(path)`,
    else `dialect`. Without either, errors pass through (an app that maps them itself)."""

    def dialect_of(request: web.Request) -> ErrorDialect | None:
        apps = request.match_info.apps
        own = apps[-1].get(ERROR_DIALECT) if len(apps) > 1 else None
        if own is not None:
            return own  # type: ignore[no-any-return]
        return for_path(request.path) if for_path is not None else dialect

    # Bound once: every name below is read on every request (ARCHITECTURE §6, hot paths; see docs/performance.md,
    # "Stop 28: chain"). A new request id (the prefix and the counter's next value), InFlight.enter and
    # route_template are written out below instead of called: the same values, three calls fewer.
    safe_id = _SAFE_ID.match
    id_prefix, id_counter = _ID_PREFIX, _ID_COUNTER
    set_request_id, reset_request_id = request_id_var.set, request_id_var.reset
    perf_counter = time.perf_counter
    access, info, debug, quiet = _access.log, logging.INFO, logging.DEBUG, _QUIET_PATHS

    @app_agnostic  # it reads the match info's applications and route, never the current app (web/lane.py)
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id")
        request_id = incoming if incoming and safe_id(incoming) else f"{id_prefix}{next(id_counter):016x}"
        request[REQUEST_ID] = request_id
        token = set_request_id(request_id)
        start = perf_counter()
        status = 500
        in_flight.count += 1  # InFlight.enter
        if metrics is not None and metrics.tracks_in_flight:
            metrics.request_started()
        try:
            try:
                response = await handler(request)
            except Exception as exc:
                chosen = dialect_of(request)
                if chosen is None:
                    raise
                response = error_response(request, exc, chosen)  # re-raises a redirect
            status = response.status
            response.headers["X-Request-Id"] = request_id
            if in_flight.draining:
                response.force_close()  # no further requests on this connection: the process is stopping
            return response
        except web.HTTPException as exc:
            status = exc.status
            exc.headers["X-Request-Id"] = request_id
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            in_flight.leave()
            seconds = perf_counter() - start
            resource = request.match_info.route.resource  # route_template(request), inline
            route = resource.canonical if resource is not None else "unmatched"
            method = request.method
            if metrics is not None:
                metrics.observe_request(method, route, status, seconds)
            path = request.path
            access(debug if path in quiet else info, method, path, route, status, seconds)
            reset_request_id(token)

    return middleware


class PlainDialect:
    """Errors of the service's own routes (health, docs): {"error": {"code", "message"}}."""

    def domain_error(self, exc: DomainError, status: int) -> dict[str, Any]:
        return {"error": {"code": status, "message": exc.message}}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": reason}}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error": {"code": 500, "message": f"internal error, request id {request_id}"}}
