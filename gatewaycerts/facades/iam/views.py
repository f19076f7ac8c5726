"""IAM handlers: parse, make one core call, present."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema

from gatewaycerts.appkeys import ACCESS_KEY_SERVICE
from gatewaycerts.facades.iam import presenters as p
from gatewaycerts.facades.iam import schemas as s
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load_body, tenant

_TAGS = ["Access keys"]
_ERRORS = {
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token or signature"},
    403: {"schema": s.ErrorSchema, "description": "Not an admin of the project"},
    500: {"schema": s.ErrorSchema, "description": "System error (with the request id)"},
    503: {"schema": s.ErrorSchema, "description": "The store is unavailable; nothing was changed"},
}
_BODY_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "A missing or invalid parameter"},
    413: {"schema": s.ErrorSchema, "description": "The body is larger than GATEWAYCERTS_MAX_BODY_BYTES"},
    415: {"schema": s.ErrorSchema, "description": "The body is not application/json"},
}
_NOT_FOUND = {404: {"schema": s.ErrorSchema, "description": "No such access key in the project"}}
_NO_STORE = {"Cache-Control": "no-store"}


def _access(request: web.Request) -> str:
    return request.match_info["access"]


@docs(
    tags=_TAGS,
    summary="Create an access key (AK/SK) for a role in the token's project (admins); the secret is shown once",
    responses={
        201: {"schema": s.CreatedCredentialResultSchema, "description": "{credential} with its secret"},
        **_BODY_ERRORS,
        **_ERRORS,
    },
)
@json_schema(s.CreateCredentialBodySchema)
async def create_credential(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    body = (await load_body(request, s.CreateCredentialBodySchema))["credential"]
    key, secret = await request.config_dict[ACCESS_KEY_SERVICE].create(
        principal, project_id, body.get("role"), body.get("description")
    )
    return json_response(p.created(key, secret), status=201, headers=_NO_STORE)


@docs(
    tags=_TAGS,
    summary="List the project's access keys, oldest first (admins; no secrets)",
    responses={200: {"schema": s.CredentialListSchema, "description": "{credentials}"}, **_ERRORS},
)
async def list_credentials(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    keys = await request.config_dict[ACCESS_KEY_SERVICE].list(principal, project_id)
    return json_response({"credentials": [p.credential(k) for k in keys]})


@docs(
    tags=_TAGS,
    summary="Show an access key (admins; no secret)",
    responses={200: {"schema": s.CredentialResultSchema, "description": "{credential}"}, **_NOT_FOUND, **_ERRORS},
)
@match_info_schema(s.AccessPathSchema)
async def show_credential(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    key = await request.config_dict[ACCESS_KEY_SERVICE].get(principal, project_id, _access(request))
    return json_response({"credential": p.credential(key)})


@docs(
    tags=_TAGS,
    summary="Enable or disable an access key, or change its description (admins)",
    responses={
        200: {"schema": s.CredentialResultSchema, "description": "{credential}"},
        **_BODY_ERRORS,
        **_NOT_FOUND,
        **_ERRORS,
    },
)
@match_info_schema(s.AccessPathSchema)
@json_schema(s.UpdateCredentialBodySchema)
async def update_credential(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    body = (await load_body(request, s.UpdateCredentialBodySchema))["credential"]
    key = await request.config_dict[ACCESS_KEY_SERVICE].update(
        principal, project_id, _access(request), status=body.get("status"), description=body.get("description")
    )
    return json_response({"credential": p.credential(key)})


@docs(
    tags=_TAGS,
    summary="Delete an access key (admins): requests it signs are refused from now on",
    responses={204: {"description": "Deleted"}, **_NOT_FOUND, **_ERRORS},
)
@match_info_schema(s.AccessPathSchema)
async def delete_credential(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[ACCESS_KEY_SERVICE].delete(principal, project_id, _access(request))
    return web.Response(status=204)
