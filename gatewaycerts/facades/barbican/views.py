"""Barbican handlers: parse, make one core call, present."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema, querystring_schema

from gatewaycerts.appkeys import AUTHORITY_SERVICE, ORDER_SERVICE, SETTINGS
from gatewaycerts.facades.barbican import presenters as p
from gatewaycerts.facades.barbican import schemas as s
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load_query, read_json_object, tenant

_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad request; the description names the property"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token"},
    403: {"schema": s.ErrorSchema, "description": "The token's project or role does not allow this"},
    404: {"schema": s.ErrorSchema, "description": "Not found"},
    500: {"schema": s.ErrorSchema, "description": "Internal error (with the request id)"},
    503: {"schema": s.ErrorSchema, "description": "The store is unavailable; nothing was changed, retry later"},
}
_ORDERS, _SECRETS, _CONTAINERS, _CAS = ["Orders"], ["Secrets"], ["Containers"], ["CAs"]


def _ok(schema: type | None, description: str, status: int = 200) -> dict:
    ok: dict[str, Any] = {"description": description}
    if schema is not None:
        ok["schema"] = schema
    return {status: ok, **_ERRORS}


def _base(request: web.Request) -> str:
    return request.config_dict[SETTINGS].base_url


def _uuid(request: web.Request) -> str:
    return request.match_info["uuid"]


# -- orders ----------------------------------------------------------------------------------------


@docs(tags=_ORDERS, summary="List the project's orders", responses=_ok(s.OrderListSchema, "{orders, total}"))
@querystring_schema(s.PageQuerySchema)
async def list_orders(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    q = load_query(s.PageQuerySchema, request)
    page, offset, limit = await request.config_dict[ORDER_SERVICE].list(
        principal, project_id, q.get("offset"), q.get("limit")
    )
    base = _base(request)
    return json_response(
        {
            "orders": [p.order(o, base) for o in page.items],
            "total": page.total,
            **p.page_links(base, "orders", offset, limit, page.total),
        }
    )


@docs(
    tags=_ORDERS,
    summary="Order a key, a key pair or a certificate; processed asynchronously (poll the order_ref)",
    responses={
        202: {"schema": s.OrderRefSchema, "description": "{order_ref}"},
        413: {"schema": s.ErrorSchema, "description": "The body is larger than GATEWAYCERTS_MAX_BODY_BYTES"},
        415: {"schema": s.ErrorSchema, "description": "The body is not application/json"},
        **_ERRORS,
    },
)
@json_schema(s.OrderCreateSchema, required=True)
async def create_order(request: web.Request) -> web.Response:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text="use Content-Type: application/json")
    principal, project_id = tenant(request)
    body = await read_json_object(request)
    order = await request.config_dict[ORDER_SERVICE].create(principal, project_id, body.get("type"), body.get("meta"))
    return json_response({"order_ref": p.ref(_base(request), "orders", order.id)}, status=202)


@docs(tags=_ORDERS, summary="Show an order", responses=_ok(s.OrderSchema, "Order"))
@match_info_schema(s.UuidPathSchema)
async def show_order(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    order = await request.config_dict[ORDER_SERVICE].get(principal, project_id, _uuid(request))
    return json_response(p.order(order, _base(request)))


@docs(tags=_ORDERS, summary="Delete an order", responses=_ok(None, "Deleted", 204))
@match_info_schema(s.UuidPathSchema)
async def delete_order(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[ORDER_SERVICE].delete(principal, project_id, _uuid(request))
    return web.Response(status=204)


# -- secrets and containers ---------------------------------------------------------------------------


@docs(tags=_SECRETS, summary="Show a secret's metadata", responses=_ok(s.SecretSchema, "Secret"))
@match_info_schema(s.UuidPathSchema)
async def show_secret(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    secret = await request.config_dict[ORDER_SERVICE].get_secret(principal, project_id, _uuid(request))
    return json_response(p.secret(secret, _base(request)))


@docs(
    tags=_SECRETS,
    summary="A secret's payload, in its content type (Accept: that type, application/octet-stream or */*)",
    responses={
        200: {"description": "text/plain (PEM) or application/octet-stream (symmetric keys)"},
        406: {"schema": s.ErrorSchema, "description": "Accept names no representation we have"},
        **_ERRORS,
    },
)
@match_info_schema(s.UuidPathSchema)
async def show_secret_payload(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    payload, content_type = await request.config_dict[ORDER_SERVICE].secret_payload(
        principal, project_id, _uuid(request), request.headers.get("Accept")
    )
    return web.Response(body=payload, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


@docs(tags=_SECRETS, summary="Delete a secret", responses=_ok(None, "Deleted", 204))
@match_info_schema(s.UuidPathSchema)
async def delete_secret(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[ORDER_SERVICE].delete_secret(principal, project_id, _uuid(request))
    return web.Response(status=204)


@docs(tags=_CONTAINERS, summary="Show a container", responses=_ok(s.ContainerSchema, "Container"))
@match_info_schema(s.UuidPathSchema)
async def show_container(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    container = await request.config_dict[ORDER_SERVICE].get_container(principal, project_id, _uuid(request))
    return json_response(p.container(container, _base(request)))


@docs(tags=_CONTAINERS, summary="Delete a container (its secrets stay)", responses=_ok(None, "Deleted", 204))
@match_info_schema(s.UuidPathSchema)
async def delete_container(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[ORDER_SERVICE].delete_container(principal, project_id, _uuid(request))
    return web.Response(status=204)


# -- CAs ------------------------------------------------------------------------------------------------


def _ca_json(request: web.Request, ca: Any) -> dict[str, Any]:
    return p.ca(ca, request.config_dict[AUTHORITY_SERVICE].status_of(ca), _base(request))


@docs(tags=_CAS, summary="List the project's CAs (references)", responses=_ok(s.CaListSchema, "{cas, total}"))
@querystring_schema(s.PageQuerySchema)
async def list_cas(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    q = load_query(s.PageQuerySchema, request)
    page, offset, limit = await request.config_dict[ORDER_SERVICE].list_cas(
        principal, project_id, q.get("offset"), q.get("limit")
    )
    base = _base(request)
    return json_response(
        {
            "cas": [p.ref(base, "cas", ca.id) for ca in page.items],
            "total": page.total,
            **p.page_links(base, "cas", offset, limit, page.total),
        }
    )


@docs(tags=_CAS, summary="The project's preferred CA", responses=_ok(s.CaSchema, "CA"))
async def show_preferred_ca(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    ca = await request.config_dict[ORDER_SERVICE].preferred_ca(principal, project_id)
    return json_response(_ca_json(request, ca))


@docs(tags=_CAS, summary="Show a CA", responses=_ok(s.CaSchema, "CA"))
@match_info_schema(s.CaPathSchema)
async def show_ca(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    ca = await request.config_dict[ORDER_SERVICE].get_ca(principal, project_id, request.match_info["ca_id"])
    return json_response(_ca_json(request, ca))


async def _pem(request: web.Request, chain: bool) -> web.Response:
    principal, project_id = tenant(request)
    ca = await request.config_dict[ORDER_SERVICE].get_ca(principal, project_id, request.match_info["ca_id"])
    text = ca.chain_pem if chain else (ca.certificate_pem or "")
    return web.Response(text=text, content_type="text/plain")


@docs(tags=_CAS, summary="The CA's certificate, PEM", responses=_ok(None, "text/plain"))
@match_info_schema(s.CaPathSchema)
async def show_ca_certificate(request: web.Request) -> web.Response:
    return await _pem(request, chain=False)


@docs(tags=_CAS, summary="The CA's issuer chain, PEM (empty for a root)", responses=_ok(None, "text/plain"))
@match_info_schema(s.CaPathSchema)
async def show_ca_intermediates(request: web.Request) -> web.Response:
    return await _pem(request, chain=True)


@docs(
    tags=_CAS,
    summary="Make a CA the project's preferred CA (used by certificate orders without ca_id; admin)",
    responses=_ok(None, "Set", 204),
)
@match_info_schema(s.CaPathSchema)
async def set_preferred_ca(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[ORDER_SERVICE].set_preferred_ca(principal, project_id, request.match_info["ca_id"])
    return web.Response(status=204)


async def versions(request: web.Request) -> web.Response:
    """Barbican's version document at the service root: OpenStack clients discover the API here."""
    base = request.config_dict[SETTINGS].base_url
    version = {
        "id": "v1",
        "status": "stable",
        "links": [{"rel": "self", "href": f"{base}/v1/"}],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.key-manager-v1+json"}],
    }
    return json_response({"versions": {"values": [version]}}, status=300)
