"""The one table from domain errors to HTTP status, and the error middleware every facade uses.

A facade supplies an ErrorDialect that renders its own envelope; unexpected exceptions are logged with
the request id and answered with the dialect's "system error", never with their text.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import REQUEST_ID
from gatewaycerts.domain import errors as e
from gatewaycerts.web.direct import DirectResponse

log = logging.getLogger("gatewaycerts.web")

# Most specific first.
STATUS_TABLE: tuple[tuple[type[e.DomainError], int], ...] = (
    (e.AuthenticationError, 401),
    (e.PermissionDeniedError, 403),
    (e.DomainNotBoundError, 404),
    (e.NotFoundError, 404),
    (e.ConflictError, 409),
    (e.StaleRevisionError, 412),
    (e.RequestBusyError, 409),
    (e.NotAcceptableError, 406),
    (e.StoreUnavailableError, 503),
    (e.InvalidInputError, 400),
)


def status_for(exc: e.DomainError) -> int:
    for cls, status in STATUS_TABLE:
        if isinstance(exc, cls):
            return status
    return 500


class ErrorDialect(Protocol):
    def domain_error(self, exc: e.DomainError, status: int) -> dict[str, Any]: ...

    def http_error(self, status: int, reason: str) -> dict[str, Any]: ...

    def system_error(self, request_id: str) -> dict[str, Any]: ...


class ApigDialect:
    """Huawei APIG's envelope {"error_code": "APIG.xxxx", "error_msg": "..."}, shared by the facades that speak
    it: a domain error gets the code of the first class of `code_table` it is (APIG.9999 otherwise), its message
    behind the code's standard text in `prefixes` where the message does not start with it already."""

    def __init__(self, code_table: tuple[tuple[type[e.DomainError], str], ...], prefixes: dict[str, str]) -> None:
        self._code_table = code_table
        self._prefixes = prefixes

    def code_for(self, exc: e.DomainError) -> str:
        for cls, code in self._code_table:
            if isinstance(exc, cls):
                return code
        return "APIG.9999"

    def domain_error(self, exc: e.DomainError, status: int) -> dict[str, Any]:
        code = self.code_for(exc)
        prefix = self._prefixes.get(code)
        message = exc.message
        if prefix and not message.lower().startswith(prefix.lower()):
            message = f"{prefix}: {message}"
        return {"error_code": code, "error_msg": message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        code = "APIG.3002" if status in (404, 405) else "APIG.2012"
        return {"error_code": code, "error_msg": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error_code": "APIG.9999", "error_msg": f"System error, request_id:{request_id}"}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return DirectResponse(
        body=orjson.dumps(body),
        status=status,
        content_type="application/json",
        headers=headers,
    )


_HTTP_REASONS = {
    404: "the requested URL does not match any API",
    406: "no representation the client accepts",
    405: "the method is not allowed for this URL",
    413: "the request body is too large",
    415: "unsupported media type",
}


# A sub-app whose errors the root's request middleware renders in this dialect (web.middleware): it then
# needs no error middleware of its own, one layer fewer on every request (ARCHITECTURE §6, hot paths).
ERROR_DIALECT = web.AppKey("error_dialect", object)


def use_dialect(app: web.Application, dialect: ErrorDialect) -> None:
    """Let the root's request middleware answer every error of `app`'s routes (its middlewares' and its
    handlers') in `dialect`: the same answers as `error_middleware(dialect)` in `app`, without the layer."""
    app[ERROR_DIALECT] = dialect


def error_response(request: web.Request, exc: Exception, dialect: ErrorDialect) -> web.Response:
    """The answer to an exception that left a handler: a domain error by the status table, an HTTP error
    (>= 400) as itself, anything else as a system error (logged with the request id, its text never
    answered). An HTTP exception below 400 (a redirect) is not an error: re-raised."""
    if isinstance(exc, e.DomainError):
        status = status_for(exc)
        if status >= 500:
            log.warning("store unavailable request_id=%s: %s", request.get(REQUEST_ID), exc.__cause__ or exc)
        return json_response(dialect.domain_error(exc, status), status=status)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        reason = _HTTP_REASONS.get(exc.status, exc.reason)
        if exc.status == 413:
            reason = f"the request body is too large: {exc.text}" if exc.text else reason
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return json_response(dialect.http_error(exc.status, reason), status=exc.status, headers=headers)
    request_id = str(request.get(REQUEST_ID, "-"))
    log.error("unhandled error request_id=%s %s %s", request_id, request.method, request.rel_url.path, exc_info=exc)
    return json_response(dialect.system_error(request_id), status=500)


def error_middleware(dialect: ErrorDialect, *, for_path: Callable[[str], ErrorDialect] | None = None) -> Any:
    """`for_path` picks the dialect by the request's path, for an app whose paths belong to several (the
    root app answers the unknown paths of every dialect's namespace)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Exception as exc:  # noqa: BLE001 - every error gets its envelope (error_response)
            return error_response(request, exc, for_path(request.path) if for_path is not None else dialect)

    return middleware
