"""APIC-dialect routes of the ACME client: per-project ACME accounts and DNS update configurations (dns-01 by
RFC 2136 + TSIG). Secrets (account key, EAB HMAC, TSIG secret) go in, never out."""

from __future__ import annotations

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema
from marshmallow import Schema, fields, validate

from gatewaycerts.appkeys import ACME_CLIENT_SERVICE, PRINCIPAL
from gatewaycerts.core.renewal.acme_client import AccountInput, DnsConfigInput
from gatewaycerts.domain.acme_client import AcmeAccount, DnsUpdateConfig
from gatewaycerts.facades.apic import schemas as s
from gatewaycerts.facades.apic.presenters import iso
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load, read_json_object

ACCOUNTS = "/{project_id}/apic/acme-accounts"
DNS_CONFIGS = "/{project_id}/apic/dns-update-configs"
_TAG = ["ACME client"]
_ERRORS = {
    400: {
        "schema": s.ErrorSchema,
        "description": "Bad request (APIG.2001, 2012; APIG.3480 directory unusable or CA unreachable; APIG.3481 "
        "the CA refused the account)",
    },
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token (APIG.1002)"},
    403: {"schema": s.ErrorSchema, "description": "Token not valid for this project or role (APIG.1005)"},
    404: {"schema": s.ErrorSchema, "description": "Not found (APIG.3483 account, APIG.3484 DNS configuration)"},
}


class AccountPathSchema(s.ProjectPathSchema):
    account_id = fields.String(required=True, metadata={"description": "ACME account ID."})


class DnsConfigPathSchema(s.ProjectPathSchema):
    config_id = fields.String(required=True, metadata={"description": "DNS update configuration ID."})


class AccountCreateSchema(Schema):
    directory_url = fields.String(
        required=True, metadata={"example": "https://acme.example/directory", "description": "The CA's directory"}
    )
    contact = fields.List(fields.String(), load_default=list, metadata={"example": ["mailto:ops@example.com"]})
    terms_agreed = fields.Boolean(required=True, metadata={"description": "Must be true: the CA's terms agreed."})
    eab_kid = fields.String(load_default=None, metadata={"description": "External Account Binding key id"})
    eab_hmac_key = fields.String(
        load_default=None, metadata={"description": "EAB HMAC key, base64url as the CA gives it (never returned)"}
    )


class AccountSchema(Schema):
    id = fields.String()
    directory_url = fields.String()
    contact = fields.List(fields.String())
    terms_agreed = fields.Boolean()
    eab_kid = fields.String(allow_none=True)
    account_url = fields.String(metadata={"description": "The account's URL at the CA"})
    key_algorithm = fields.String(metadata={"example": "EC256"})
    create_time = fields.String()


class AccountListSchema(Schema):
    acme_accounts = fields.List(fields.Nested(AccountSchema))
    total = fields.Integer()


class DnsConfigCreateSchema(Schema):
    server = fields.String(required=True, metadata={"example": "ns1.example.com", "description": "Primary server"})
    port = fields.Integer(load_default=53, validate=validate.Range(1, 65535))
    zone = fields.String(required=True, metadata={"example": "example.com."})
    tsig_key_name = fields.String(required=True, metadata={"example": "acme-update."})
    tsig_algorithm = fields.String(load_default="hmac-sha256", metadata={"example": "hmac-sha256"})
    tsig_secret = fields.String(required=True, metadata={"description": "base64 (tsig-keygen); never returned"})


class DnsConfigSchema(Schema):
    id = fields.String()
    server = fields.String()
    port = fields.Integer()
    zone = fields.String()
    tsig_key_name = fields.String()
    tsig_algorithm = fields.String()
    create_time = fields.String()


class DnsConfigListSchema(Schema):
    dns_update_configs = fields.List(fields.Nested(DnsConfigSchema))
    total = fields.Integer()


def _account(a: AcmeAccount) -> dict:
    return {
        "id": a.id,
        "directory_url": a.directory_url,
        "contact": list(a.contact),
        "terms_agreed": a.terms_agreed,
        "eab_kid": a.eab_kid,
        "account_url": a.account_url,
        "key_algorithm": "EC256",
        "create_time": iso(a.create_time),
    }


def _dns(c: DnsUpdateConfig) -> dict:
    return {
        "id": c.id,
        "server": c.server,
        "port": c.port,
        "zone": c.zone,
        "tsig_key_name": c.tsig_key_name,
        "tsig_algorithm": c.tsig_algorithm,
        "create_time": iso(c.create_time),
    }


def _ctx(request: web.Request) -> tuple:
    return request[PRINCIPAL], request.match_info["project_id"], request.config_dict[ACME_CLIENT_SERVICE]


@docs(
    tags=_TAG,
    summary="Create an ACME account (admins): the key is generated here and the account registered with the CA",
    responses={201: {"schema": AccountSchema, "description": "The account"}, **_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
@json_schema(AccountCreateSchema, required=True)
async def create_account(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    service.authorize_manage(principal, project_id)
    body = load(AccountCreateSchema, await read_json_object(request))
    account = await service.create_account(principal, project_id, AccountInput(**body))
    return json_response(_account(account), status=201)


@docs(
    tags=_TAG,
    summary="List the project's ACME accounts",
    responses={200: {"schema": AccountListSchema, "description": "The accounts"}, **_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
async def list_accounts(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    accounts = await service.list_accounts(principal, project_id)
    return json_response({"acme_accounts": [_account(a) for a in accounts], "total": len(accounts)})


@docs(
    tags=_TAG,
    summary="Show an ACME account",
    responses={200: {"schema": AccountSchema, "description": "The account"}, **_ERRORS},
)
@match_info_schema(AccountPathSchema)
async def show_account(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    return json_response(_account(await service.get_account(principal, project_id, request.match_info["account_id"])))


@docs(
    tags=_TAG,
    summary="Delete an ACME account (admins; the CA keeps it)",
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
@match_info_schema(AccountPathSchema)
async def delete_account(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    await service.delete_account(principal, project_id, request.match_info["account_id"])
    return web.Response(status=204)


@docs(
    tags=_TAG,
    summary="Create a DNS update configuration for dns-01 (admins): RFC 2136 updates signed with TSIG",
    responses={201: {"schema": DnsConfigSchema, "description": "The configuration"}, **_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
@json_schema(DnsConfigCreateSchema, required=True)
async def create_dns_config(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    service.authorize_manage(principal, project_id)
    body = load(DnsConfigCreateSchema, await read_json_object(request))
    config = await service.create_dns_config(principal, project_id, DnsConfigInput(**body))
    return json_response(_dns(config), status=201)


@docs(
    tags=_TAG,
    summary="List DNS update configurations",
    responses={200: {"schema": DnsConfigListSchema, "description": "The configurations"}, **_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
async def list_dns_configs(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    configs = await service.list_dns_configs(principal, project_id)
    return json_response({"dns_update_configs": [_dns(c) for c in configs], "total": len(configs)})


@docs(
    tags=_TAG,
    summary="Show a DNS update configuration",
    responses={200: {"schema": DnsConfigSchema, "description": "The configuration"}, **_ERRORS},
)
@match_info_schema(DnsConfigPathSchema)
async def show_dns_config(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    return json_response(_dns(await service.get_dns_config(principal, project_id, request.match_info["config_id"])))


@docs(
    tags=_TAG,
    summary="Delete a DNS update configuration (admins)",
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
@match_info_schema(DnsConfigPathSchema)
async def delete_dns_config(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    await service.delete_dns_config(principal, project_id, request.match_info["config_id"])
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    app.router.add_post(ACCOUNTS, create_account)
    app.router.add_get(ACCOUNTS, list_accounts, allow_head=False)
    app.router.add_get(ACCOUNTS + "/{account_id}", show_account, allow_head=False)
    app.router.add_delete(ACCOUNTS + "/{account_id}", delete_account)
    app.router.add_post(DNS_CONFIGS, create_dns_config)
    app.router.add_get(DNS_CONFIGS, list_dns_configs, allow_head=False)
    app.router.add_get(DNS_CONFIGS + "/{config_id}", show_dns_config, allow_head=False)
    app.router.add_delete(DNS_CONFIGS + "/{config_id}", delete_dns_config)
