"""Audit handlers: parse, make one core call, present."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, match_info_schema, querystring_schema

from gatewaycerts.appkeys import AUDIT_LOG, PRINCIPAL
from gatewaycerts.facades.audit import presenters as p
from gatewaycerts.facades.audit import schemas as s
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load_query

_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad query parameter (CTS.0003)"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token (CTS.0002)"},
    403: {"schema": s.ErrorSchema, "description": "Not an admin of this project (CTS.0002)"},
    500: {"schema": s.ErrorSchema, "description": "System error (CTS.0005)"},
    503: {"schema": s.ErrorSchema, "description": "The store is unavailable (CTS.0005)"},
}


@docs(
    tags=["Traces"],
    summary="List the project's audit trail, newest first (admins)",
    responses={200: {"schema": s.TraceListSchema, "description": "{traces, meta_data}"}, **_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
@querystring_schema(s.TraceListQuerySchema)
async def list_traces(request: web.Request) -> web.Response:
    q = load_query(s.TraceListQuerySchema, request)
    page = await request.config_dict[AUDIT_LOG].list(
        request[PRINCIPAL],
        request.match_info["project_id"],
        limit=q.get("limit"),
        marker=q.get("next"),
        since_ms=q.get("from_"),
        until_ms=q.get("to"),
        object_type=q.get("resource_type"),
        object_id=q.get("resource_id"),
        action=q.get("trace_name"),
        actor=q.get("user"),
        request_id=q.get("request_id"),
    )
    return json_response(p.trace_list(page))
