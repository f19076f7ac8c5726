"""CCM admin routes of a CA's ACME directory: its policy and its EAB keys (docs/api/acme.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema
from marshmallow import Schema, fields

from gatewaycerts.appkeys import ACME_SERVICE, SETTINGS
from gatewaycerts.core.acme.service import PolicyDraft
from gatewaycerts.domain.acme import AcmePolicy, EabKey
from gatewaycerts.facades.ccm import schemas as s
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load_body, tenant

_TAG = ["ACME"]
_OPT = {"required": False, "allow_none": True}
_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad request (PCA.1010-1020, PCA.1061 policy; docs/api/acme.md)"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token (PCA.1001)"},
    403: {"schema": s.ErrorSchema, "description": "Token not valid for this project or role (PCA.1003)"},
    404: {"schema": s.ErrorSchema, "description": "No such CA (PCA.1040) or EAB key (PCA.1060)"},
    409: {"schema": s.ErrorSchema, "description": "Concurrent change (PCA.1050)"},
}


class AcmePolicySchema(Schema):
    enabled = fields.Boolean(**_OPT, metadata={"description": "Serve the CA's ACME directory (default false)."})
    eab_required = fields.Boolean(**_OPT, metadata={"description": "New accounts need an EAB key (default true)."})
    allowed_domains = fields.List(
        fields.String(), **_OPT, metadata={"description": "DNS suffixes names must fall under (example.com)."}
    )
    allow_wildcards = fields.Boolean(**_OPT, metadata={"description": "Issue *.name (validated by dns-01 only)."})
    allow_ip = fields.Boolean(**_OPT, metadata={"description": "Issue for IP addresses (validated by http-01 only)."})
    challenge_types = fields.List(
        fields.String(), **_OPT, metadata={"description": "Any of http-01, dns-01, tls-alpn-01 (default all)."}
    )
    max_validity_days = fields.Integer(
        strict=True, **_OPT, metadata={"description": "Certificate lifetime in days, 1-398 (default 90)."}
    )


class AcmePolicyViewSchema(AcmePolicySchema):
    directory_url = fields.String(metadata={"description": "The CA's ACME directory."})
    update_time = fields.Integer(allow_none=True, metadata={"description": "Milliseconds since the epoch."})


class EabCreateSchema(Schema):
    valid_days = fields.Integer(strict=True, **_OPT, metadata={"description": "Days until unused, 1-365 (default 7)."})


class EabKeySchema(Schema):
    kid = fields.String()
    status = fields.String(metadata={"description": "active, used, revoked or expired."})
    create_time = fields.Integer()
    expire_time = fields.Integer()
    account_id = fields.String(allow_none=True, metadata={"description": "The ACME account it is bound to."})


class EabCreatedSchema(EabKeySchema):
    hmac_key = fields.String(metadata={"description": "base64url HMAC key; shown only in this answer."})


class EabListSchema(Schema):
    total = fields.Integer()
    eab_keys = fields.List(fields.Nested(EabKeySchema))


class EabPathSchema(s.CaPathSchema):
    kid = fields.String(required=True)


def _ms(value: datetime | None) -> int | None:
    return None if value is None else int(value.astimezone(UTC).timestamp() * 1000)


def _policy(request: web.Request, p: AcmePolicy) -> dict[str, Any]:
    public = request.config_dict[SETTINGS].public_url
    base = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    return {
        "enabled": p.enabled,
        "eab_required": p.eab_required,
        "allowed_domains": list(p.allowed_domains),
        "allow_wildcards": p.allow_wildcards,
        "allow_ip": p.allow_ip,
        "challenge_types": list(p.challenge_types),
        "max_validity_days": p.max_validity_days,
        "directory_url": f"{base}/acme/{p.ca_id}/directory",
        "update_time": _ms(p.update_time),
    }


def _eab(request: web.Request, k: EabKey) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "status": request.config_dict[ACME_SERVICE].eab_status(k),
        "create_time": _ms(k.create_time),
        "expire_time": _ms(k.expires),
        "account_id": k.account_id,
    }


@docs(
    tags=_TAG,
    summary="Read the CA's ACME policy",
    responses={200: {"schema": AcmePolicyViewSchema, "description": "The policy"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
async def get_policy(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    policy = await request.config_dict[ACME_SERVICE].get_policy(principal, project_id, request.match_info["ca_id"])
    return json_response(_policy(request, policy))


@docs(
    tags=_TAG,
    summary="Switch ACME on or off for the CA and set its policy (omitted fields take their defaults)",
    responses={200: {"schema": AcmePolicyViewSchema, "description": "The policy"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
@json_schema(AcmePolicySchema, required=True)
async def put_policy(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, AcmePolicySchema)
    draft = PolicyDraft(**{k: b.get(k) for k in PolicyDraft.__slots__})
    policy = await request.config_dict[ACME_SERVICE].put_policy(
        principal, project_id, request.match_info["ca_id"], draft
    )
    return json_response(_policy(request, policy))


@docs(
    tags=_TAG,
    summary="Create an EAB key (its HMAC key is shown once)",
    responses={201: {"schema": EabCreatedSchema, "description": "The key, with its HMAC key"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
@json_schema(EabCreateSchema, required=False)
async def create_eab_key(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, EabCreateSchema, optional=True)
    key, secret = await request.config_dict[ACME_SERVICE].create_eab_key(
        principal, project_id, request.match_info["ca_id"], b.get("valid_days")
    )
    return json_response({**_eab(request, key), "hmac_key": secret}, status=201)


@docs(
    tags=_TAG,
    summary="List the CA's EAB keys (never their HMAC keys)",
    responses={200: {"schema": EabListSchema, "description": "{total, eab_keys}"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
async def list_eab_keys(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    keys = await request.config_dict[ACME_SERVICE].list_eab_keys(principal, project_id, request.match_info["ca_id"])
    return json_response({"total": len(keys), "eab_keys": [_eab(request, k) for k in keys]})


@docs(tags=_TAG, summary="Revoke an EAB key", responses={204: {"description": "Revoked"}, **_ERRORS})
@match_info_schema(EabPathSchema)
async def revoke_eab_key(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[ACME_SERVICE].revoke_eab_key(
        principal, project_id, request.match_info["ca_id"], request.match_info["kid"]
    )
    return web.Response(status=204)
