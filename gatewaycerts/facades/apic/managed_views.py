"""APIC handlers of managed certificates (ours): parse, make one core call, present."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema, querystring_schema

from gatewaycerts.appkeys import PRINCIPAL, RENEWAL_SERVICE
from gatewaycerts.core.renewal.service import ManagedDraft, RenewalView
from gatewaycerts.domain.managed import ManagedCertificate
from gatewaycerts.domain.models import Certificate
from gatewaycerts.facades.apic import schemas as s
from gatewaycerts.facades.apic.presenters import iso
from gatewaycerts.facades.apic.views import _ERRORS
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load, load_query, read_json_object

_TAG = ["Managed certificates"]


def _ok(schema: type, description: str) -> dict:
    return {200: {"schema": schema, "description": description}, **_ERRORS}


def _ctx(request: web.Request) -> tuple:
    return request[PRINCIPAL], request.match_info["project_id"], request.config_dict[RENEWAL_SERVICE]


def _t(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def renewal_body(m: ManagedCertificate, cert: Certificate | None, now: datetime) -> dict[str, Any]:
    return {
        "certificate_id": m.id,
        "state": m.shown_state(now).value,
        "issued": cert is not None,
        "certificate_revision": cert.revision if cert is not None else None,
        "not_after": _t(cert.info.not_after) if cert is not None else None,
        "next_renewal_at": _t(m.due_at),
        "window_source": m.window_source.value if m.window_source else None,
        "window_start": _t(m.window_start),
        "window_end": _t(m.window_end),
        "last_attempt_at": _t(m.last_attempt_at),
        "last_success_at": _t(m.last_success_at),
        "consecutive_failures": m.consecutive_failures,
        "last_error": m.last_error,
        "renewals": m.renewals,
    }


def managed_body(m: ManagedCertificate, cert: Certificate | None, now: datetime) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "type": m.scope.value,
        "instance_id": m.instance_id,
        "project_id": m.project_id,
        "domains": list(m.domains),
        "source": m.source,
        "key_algorithm": m.key_algorithm,
        "private_ca": dict(m.settings) if m.source == "private_ca" else None,
        "acme": dict(m.settings) if m.source == "acme" else None,
        "create_time": iso(m.create_time),
        "update_time": iso(m.update_time),
        "renewal": renewal_body(m, cert, now),
    }


def _view(v: RenewalView) -> dict[str, Any]:
    return managed_body(v.managed, v.certificate, v.now)


@docs(
    tags=_TAG,
    summary="Create a managed certificate (ours): the service issues it and renews it under the same id",
    description="Answers the pending record at once; the renewal loop issues the first chain in the background "
    "(GET .../certificates/{id}/renewal shows when). Until then the certificate is not in the certificate list.",
    responses=_ok(s.ManagedCertificateSchema, "The managed certificate (state pending)"),
)
@match_info_schema(s.ProjectPathSchema)
@json_schema(s.ManagedCertificateCreateSchema, required=True)
async def create_managed_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    body = load(s.ManagedCertificateCreateSchema, await read_json_object(request))
    source = body.get("source")
    draft = ManagedDraft(
        name=body.get("name"),
        domains=tuple(body.get("domains") or ()),
        source=source,
        key_algorithm=body.get("key_algorithm"),
        type=body.get("type"),
        instance_id=body.get("instance_id"),
        settings={k: v for k, v in body[source].items() if v is not None} if body.get(source) else None,
    )
    managed = await service.create(principal, project_id, draft)
    return json_response(managed_body(managed, None, managed.create_time))


@docs(tags=_TAG, summary="List managed certificates (ours)", responses=_ok(s.ManagedCertificateListSchema, "Page"))
@match_info_schema(s.ProjectPathSchema)
@querystring_schema(s.ManagedListQuerySchema)
async def list_managed_certificates(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    q = load_query(s.ManagedListQuerySchema, request)
    page, now = await service.list(principal, project_id, q.get("offset"), q.get("limit"))
    return json_response(
        {
            "size": len(page.items),
            "total": page.total,
            "managed_certificates": [managed_body(m, None, now) for m in page.items],
        }
    )


@docs(tags=_TAG, summary="Show a managed certificate (ours)", responses=_ok(s.ManagedCertificateSchema, "Managed"))
@match_info_schema(s.CertificatePathSchema)
async def show_managed_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    return json_response(_view(await service.get(principal, project_id, request.match_info["certificate_id"])))


@docs(
    tags=_TAG,
    summary="A certificate's renewal state (ours; APIG.3471 for an uploaded certificate)",
    responses=_ok(s.RenewalSchema, "Renewal state"),
)
@match_info_schema(s.CertificatePathSchema)
async def show_renewal(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    v = await service.get(principal, project_id, request.match_info["certificate_id"])
    return json_response(renewal_body(v.managed, v.certificate, v.now))


@docs(
    tags=_TAG,
    summary="Renew now (ours): makes the certificate due at once, also after the loop stopped (APIG.3472 while "
    "a renewal runs)",
    responses=_ok(s.RenewalSchema, "Renewal state"),
)
@match_info_schema(s.CertificatePathSchema)
async def renew_now(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    v = await service.renew_now(principal, project_id, request.match_info["certificate_id"])
    return json_response(renewal_body(v.managed, v.certificate, v.now))


@docs(
    tags=_TAG,
    summary="The chains a certificate held (ours): newest first, the current one marked; no rollback action",
    responses=_ok(s.ChainRevisionListSchema, "Chain history"),
)
@match_info_schema(s.CertificatePathSchema)
@querystring_schema(s.RevisionsQuerySchema)
async def list_revisions(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    q = load_query(s.RevisionsQuerySchema, request)
    v = await service.revisions(principal, project_id, request.match_info["certificate_id"], q.get("limit"))
    current = v.certificate.info.fingerprint_sha256
    return json_response(
        {
            "certificate_id": v.certificate.id,
            "current_revision": v.certificate.revision,
            "revisions": [
                {
                    "revision": r.revision,
                    "current": r.fingerprint_sha256 == current,
                    "source": r.extra.get("source", "upload"),
                    "fingerprint_sha256": r.fingerprint_sha256,
                    "serial_number": r.serial_number,
                    "not_before": iso(r.not_before),
                    "not_after": iso(r.not_after),
                    "recorded_at": iso(r.recorded_at),
                    "chain_pem": r.chain_pem,
                }
                for r in v.revisions
            ],
        }
    )


@docs(
    tags=["SSL certificates"],
    summary="Delete an SSL certificate (refused while domains are bound: APIG.3461); a managed one stops being renewed",
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
@match_info_schema(s.CertificatePathSchema)
async def delete_certificate(request: web.Request) -> web.Response:
    principal, project_id, service = _ctx(request)
    await service.delete(principal, project_id, request.match_info["certificate_id"])
    return web.Response(status=204)
