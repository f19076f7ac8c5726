"""APIC handlers: parse, make one core call, present."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema, querystring_schema

from gatewaycerts.appkeys import CERTIFICATE_SERVICE, GATEWAY_KEY_SERVICE, PRINCIPAL, WEBHOOK_SERVICE
from gatewaycerts.core.certificates import CertificateDraft, DomainRequest
from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.models import AlgorithmType, Certificate, CertificateFilter, CertificateScope
from gatewaycerts.domain.notifications import Delivery, Webhook
from gatewaycerts.facades.apic import schemas as s
from gatewaycerts.facades.apic.cert_body import plain_certificate_body
from gatewaycerts.facades.apic.presenters import DetailBodies, bound_domain, cert_base, cert_detail, iso
from gatewaycerts.web.direct import DirectResponse
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.hot import hot
from gatewaycerts.web.requests import entity_tag, if_match, load, load_query, read_json_object

_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad request (APIG.2001, 2012, 2101-2106, 3108, 3400, 346x)"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token (APIG.1002)"},
    403: {"schema": s.ErrorSchema, "description": "Token not valid for this project or role (APIG.1005)"},
    404: {"schema": s.ErrorSchema, "description": "Not found (APIG.3021, APIG.3020)"},
    409: {"schema": s.ErrorSchema, "description": "Concurrent changes kept colliding; retry (APIG.3463)"},
    412: {"schema": s.ErrorSchema, "description": "Changed since the revision named by If-Match (APIG.3464)"},
    500: {"schema": s.ErrorSchema, "description": "System error (APIG.9999)"},
}

_TAG = ["SSL certificates"]

# The show's bodies by record object (presenters.DetailBodies): a memo of a pure function, exact by identity.
_SHOWN = DetailBodies()


def _ok(schema: type, description: str) -> dict:
    return {200: {"schema": schema, "description": description}, **_ERRORS}


def _ctx(request: web.Request) -> tuple:
    return request[PRINCIPAL], request.match_info["project_id"], request.config_dict[CERTIFICATE_SERVICE]


def _detail(cert: Certificate) -> web.Response:
    # The ETag names the stored revision: send it back as If-Match to change only what you read.
    return json_response(cert_detail(cert), headers={"ETag": entity_tag(cert.revision)})


async def _draft(request: web.Request) -> CertificateDraft:
    raw = await read_json_object(request)
    body = plain_certificate_body(raw)
    if body is None:  # not plainly well formed: the schema reads it, and its errors are the route's
        body = load(s.CertificateCreateSchema, raw)
    return CertificateDraft(**{k: body.get(k) for k in CertificateDraft.__slots__})


async def _domains(request: web.Request) -> list[DomainRequest]:
    body = load(s.AttachOrDetachDomainsSchema, await read_json_object(request))
    return [
        DomainRequest(
            domain=d.get("domain"),
            instance_ids=tuple(d["instance_ids"]) if d.get("instance_ids") is not None else None,
            verified_client_certificate_enabled=d.get("verified_client_certificate_enabled"),
        )
        for d in body["domains"]
    ]


@docs(
    tags=_TAG,
    summary="Create an SSL certificate",
    responses=_ok(s.CertDetailSchema, "CertDetail"),
)
@match_info_schema(s.ProjectPathSchema)
@json_schema(s.CertificateCreateSchema, required=True)
async def create_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    cert = await service.create(principal, project_id, await _draft(request))
    return _detail(cert)


@docs(
    tags=_TAG,
    summary="List SSL certificates",
    responses=_ok(s.CertificateListSchema, "Page of CertBase"),
)
@match_info_schema(s.ProjectPathSchema)
@querystring_schema(s.CertificateListQuerySchema)
async def list_certificates(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    q = load_query(s.CertificateListQuerySchema, request)
    flt = CertificateFilter(
        name_contains=q.get("name") or None,
        common_name=q.get("common_name") or None,
        signature_algorithm=q.get("signature_algorithm") or None,
        scope=CertificateScope(q["type"]) if q.get("type") else None,
        instance_id=q.get("instance_id") or None,
        algorithm_type=AlgorithmType(q["algorithm_type"]) if q.get("algorithm_type") else None,
    )
    page = await service.list(principal, project_id, flt, q.get("offset"), q.get("limit"))
    return json_response({"size": len(page.items), "total": page.total, "certs": [cert_base(c) for c in page.items]})


@docs(
    tags=_TAG,
    summary="Certificates by week of expiry (ours: the console's overview)",
    description="Counts by week of not_after over the coming 53 weeks, the expired and the later ones, and the "
    "certificates that expire within 30 days, soonest first. Any role of the project may read it.",
    responses=_ok(s.ExpiryOverviewSchema, "Expiry overview"),
)
@match_info_schema(s.ProjectPathSchema)
async def show_expiry_overview(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    o = await service.expiry_overview(principal, project_id)
    return json_response(
        {
            "generated_at": iso(o.now),
            "total": o.total,
            "expired": o.expired,
            "weeks": list(o.weeks),
            "later": o.later,
            "expiring": [cert_base(c) for c in o.expiring],
            "more_expiring": o.more_expiring,
        }
    )


@docs(
    tags=_TAG,
    summary="Show SSL certificate details",
    responses=_ok(s.CertDetailSchema, "CertDetail"),
)
@match_info_schema(s.CertificatePathSchema)
@hot
async def show_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    cert = await service.get_summary(principal, project_id, request.match_info["certificate_id"])
    # As _detail, the same bytes: the summary holds every field the detail shows.
    return DirectResponse(
        body=_SHOWN(cert), content_type="application/json", headers={"ETag": entity_tag(cert.revision)}
    )


@docs(
    tags=_TAG,
    summary="Update (fully replace) an SSL certificate; type and instance_id cannot change; If-Match: the ETag read",
    responses=_ok(s.CertDetailSchema, "CertDetail"),
)
@match_info_schema(s.CertificatePathSchema)
@json_schema(s.CertificateCreateSchema, required=True)
async def update_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    cert = await service.update(
        principal, project_id, request.match_info["certificate_id"], await _draft(request), if_match=if_match(request)
    )
    return _detail(cert)


@docs(
    tags=_TAG,
    summary="Delete an SSL certificate (refused while domains are bound: APIG.3461)",
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
@match_info_schema(s.CertificatePathSchema)
async def delete_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    await service.delete(principal, project_id, request.match_info["certificate_id"])
    return web.Response(status=204)


@docs(
    tags=_TAG,
    summary="Bind domain names to an SSL certificate",
    responses={204: {"description": "Bound"}, **_ERRORS},
)
@match_info_schema(s.CertificatePathSchema)
@json_schema(s.AttachOrDetachDomainsSchema, required=True)
async def attach_domains(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    await service.attach_domains(
        principal, project_id, request.match_info["certificate_id"], await _domains(request), if_match=if_match(request)
    )
    return web.Response(status=204)


@docs(
    tags=_TAG,
    summary="Unbind domain names from an SSL certificate",
    responses={204: {"description": "Unbound"}, **_ERRORS},
)
@match_info_schema(s.CertificatePathSchema)
@json_schema(s.AttachOrDetachDomainsSchema, required=True)
async def detach_domains(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    await service.detach_domains(
        principal, project_id, request.match_info["certificate_id"], await _domains(request), if_match=if_match(request)
    )
    return web.Response(status=204)


@docs(
    tags=_TAG,
    summary="List the domain names bound to an SSL certificate",
    responses=_ok(s.AttachedDomainsSchema, "Page of UrlDomainRefInfo"),
)
@match_info_schema(s.CertificatePathSchema)
@querystring_schema(s.AttachedDomainsQuerySchema)
async def list_attached_domains(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    q = load_query(s.AttachedDomainsQuerySchema, request)
    cert, page = await service.list_attached_domains(
        principal,
        project_id,
        request.match_info["certificate_id"],
        q.get("url_domain"),
        q.get("offset"),
        q.get("limit"),
    )
    return json_response(
        {"size": len(page.items), "total": page.total, "bound_domains": [bound_domain(cert, b) for b in page.items]}
    )


_KEYS_TAG = ["Gateway keys"]


def _gateway_key(key: GatewayKey) -> dict:
    return {"id": key.id, "instance_id": key.instance_id, "create_time": iso(key.create_time)}


@docs(
    tags=_KEYS_TAG,
    summary="Create a gateway key for an instance (admins); the key is shown once",
    responses={201: {"schema": s.GatewayKeyCreatedSchema, "description": "The new key"}, **_ERRORS},
)
@match_info_schema(s.InstancePathSchema)
async def create_gateway_key(request: web.Request) -> web.Response:
    info = request.match_info
    key, text = await request.config_dict[GATEWAY_KEY_SERVICE].create(
        request[PRINCIPAL], info["project_id"], info["instance_id"]
    )
    return json_response({**_gateway_key(key), "key": text}, status=201, headers={"Cache-Control": "no-store"})


@docs(
    tags=_KEYS_TAG,
    summary="List an instance's gateway keys (admins), without the keys",
    responses=_ok(s.GatewayKeyListSchema, "The instance's keys"),
)
@match_info_schema(s.InstancePathSchema)
async def list_gateway_keys(request: web.Request) -> web.Response:
    info = request.match_info
    keys = await request.config_dict[GATEWAY_KEY_SERVICE].list(
        request[PRINCIPAL], info["project_id"], info["instance_id"]
    )
    return json_response({"gateway_keys": [_gateway_key(k) for k in keys], "total": len(keys)})


@docs(
    tags=_KEYS_TAG,
    summary="Revoke a gateway key (admins)",
    responses={204: {"description": "Revoked"}, **_ERRORS},
)
@match_info_schema(s.GatewayKeyPathSchema)
async def delete_gateway_key(request: web.Request) -> web.Response:
    info = request.match_info
    await request.config_dict[GATEWAY_KEY_SERVICE].delete(
        request[PRINCIPAL], info["project_id"], info["instance_id"], info["key_id"]
    )
    return web.Response(status=204)


_HOOKS_TAG = ["Webhooks"]
_HOOK_ERRORS = {
    **_ERRORS,
    400: {"schema": s.ErrorSchema, "description": "Bad request (APIG.2001, 2012, 3491-3493)"},
    404: {"schema": s.ErrorSchema, "description": "No such webhook (APIG.3490)"},
}


def _webhook(hook: Webhook) -> dict:
    return {
        "id": hook.id,
        "url": hook.url,
        "events": list(hook.events),
        "description": hook.description,
        "create_time": iso(hook.create_time),
    }


def _delivery(d: Delivery) -> dict:
    return {
        "id": d.id,
        "event_id": d.event_id,
        "event_type": d.event_type,
        "state": d.state.value,
        "create_time": iso(d.create_time),
        "attempt_count": len(d.attempts),
        "attempts": [{"time": iso(a.time), "status_code": a.status_code, "error": a.error} for a in d.attempts],
        "next_retry": iso(d.next_attempt) if d.next_attempt is not None and d.state.value == "pending" else None,
        "payload": json.loads(d.body),
    }


def _hooks(request: web.Request) -> tuple:
    return request[PRINCIPAL], request.match_info["project_id"], request.config_dict[WEBHOOK_SERVICE]


@docs(
    tags=_HOOKS_TAG,
    summary="Create a webhook (admins); its signing secret is shown once",
    responses={201: {"schema": s.WebhookCreatedSchema, "description": "The new webhook"}, **_HOOK_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
@json_schema(s.WebhookCreateSchema, required=True)
async def create_webhook(request: web.Request) -> web.Response:
    principal, project_id, service = _hooks(request)
    body = load(s.WebhookCreateSchema, await read_json_object(request))
    hook, secret = await service.create(principal, project_id, body["url"], body["events"], body.get("description"))
    return json_response({**_webhook(hook), "secret": secret}, status=201, headers={"Cache-Control": "no-store"})


@docs(
    tags=_HOOKS_TAG,
    summary="List the project's webhooks (admins), without secrets",
    responses={200: {"schema": s.WebhookListSchema, "description": "The webhooks"}, **_HOOK_ERRORS},
)
@match_info_schema(s.ProjectPathSchema)
async def list_webhooks(request: web.Request) -> web.Response:
    principal, project_id, service = _hooks(request)
    hooks = await service.list(principal, project_id)
    return json_response({"webhooks": [_webhook(h) for h in hooks], "total": len(hooks)})


@docs(
    tags=_HOOKS_TAG,
    summary="Show a webhook (admins), without its secret",
    responses={200: {"schema": s.WebhookSchema, "description": "The webhook"}, **_HOOK_ERRORS},
)
@match_info_schema(s.WebhookPathSchema)
async def show_webhook(request: web.Request) -> web.Response:
    principal, project_id, service = _hooks(request)
    return json_response(_webhook(await service.get(principal, project_id, request.match_info["webhook_id"])))


@docs(
    tags=_HOOKS_TAG,
    summary="Delete a webhook and its delivery log (admins)",
    responses={204: {"description": "Deleted"}, **_HOOK_ERRORS},
)
@match_info_schema(s.WebhookPathSchema)
async def delete_webhook(request: web.Request) -> web.Response:
    principal, project_id, service = _hooks(request)
    await service.delete(principal, project_id, request.match_info["webhook_id"])
    return web.Response(status=204)


@docs(
    tags=_HOOKS_TAG,
    summary="Send a webhook.test event to this webhook (admins)",
    description="Stored and delivered like any event (signed, retried, in the delivery log); answers at once.",
    responses={202: {"schema": s.TestDeliverySchema, "description": "Queued"}, **_HOOK_ERRORS},
)
@match_info_schema(s.WebhookPathSchema)
async def test_webhook(request: web.Request) -> web.Response:
    principal, project_id, service = _hooks(request)
    d = await service.test(principal, project_id, request.match_info["webhook_id"])
    return json_response({"delivery_id": d.id, "event_id": d.event_id, "event_type": d.event_type}, status=202)


@docs(
    tags=_HOOKS_TAG,
    summary="The webhook's delivery log (admins), newest first",
    responses={200: {"schema": s.DeliveryListSchema, "description": "Deliveries and their attempts"}, **_HOOK_ERRORS},
)
@match_info_schema(s.WebhookPathSchema)
@querystring_schema(s.DeliveryListQuerySchema)
async def list_webhook_deliveries(request: web.Request) -> web.Response:
    principal, project_id, service = _hooks(request)
    q = load_query(s.DeliveryListQuerySchema, request)
    page, _, _ = await service.deliveries(
        principal, project_id, request.match_info["webhook_id"], q.get("offset"), q.get("limit")
    )
    return json_response(
        {"deliveries": [_delivery(d) for d in page.items], "size": len(page.items), "total": page.total}
    )
