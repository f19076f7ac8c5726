"""Request ids (echoed as X-Request-Id) and the root app's generic JSON errors."""

from __future__ import annotations

import re
import uuid
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gatewaycerts.appkeys import REQUEST_ID
from gatewaycerts.domain.errors import DomainError

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
    request[REQUEST_ID] = request_id
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = request_id
        raise
    response.headers["X-Request-Id"] = request_id
    return response


class PlainDialect:
    """Errors of the service's own routes (health, docs): {"error": {"code", "message"}}."""

    def domain_error(self, exc: DomainError, status: int) -> dict[str, Any]:
        return {"error": {"code": status, "message": exc.message}}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": reason}}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error": {"code": 500, "message": f"internal error, request id {request_id}"}}
