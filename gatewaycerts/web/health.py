"""Liveness and readiness endpoints (no authentication)."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gatewaycerts.appkeys import CERTIFICATE_STORE
from gatewaycerts.domain.errors import StoreUnavailableError
from gatewaycerts.web.errors import json_response


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with asyncio.timeout(3):
            await request.app[CERTIFICATE_STORE].ping()
    except (StoreUnavailableError, TimeoutError):
        return json_response({"status": "unavailable", "store": "unreachable"}, status=503)
    return json_response({"status": "ok", "store": "ok"})
