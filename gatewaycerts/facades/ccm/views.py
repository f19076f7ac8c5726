"""CCM handlers: parse, make one core call, present."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema, querystring_schema

from gatewaycerts.appkeys import AUTHORITY_SERVICE, GATEWAY_IMPORT, PRIVATE_CERTIFICATE_SERVICE
from gatewaycerts.core.authorities import ActivateDraft, AuthorityDraft, CrlConfigRequest, parse_query
from gatewaycerts.core.issuance import CsrIssueDraft, ExportRequest, IssueDraft, SanRequest
from gatewaycerts.core.validity import ValidityRequest
from gatewaycerts.domain.pca import (
    CaStatus,
    CustomExtension,
    DistinguishedName,
    ExtendedKeyUsage,
    IssuedStatus,
)
from gatewaycerts.facades.ccm import presenters as p
from gatewaycerts.facades.ccm import schemas as s
from gatewaycerts.facades.ccm.csr_body import plain_create_body, plain_csr_body
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load, load_body, load_query, read_json_object, tenant

_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad request (PCA.1010-1032; see docs/api/ccm.md)"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token (PCA.1001)"},
    403: {"schema": s.ErrorSchema, "description": "Token not valid for this project or role (PCA.1003)"},
    404: {"schema": s.ErrorSchema, "description": "Not found (PCA.1040, PCA.1041, PCA.1042)"},
    409: {"schema": s.ErrorSchema, "description": "Concurrent change (PCA.1050)"},
    500: {"schema": s.ErrorSchema, "description": "System error (PCA.1000)"},
}
_CA_TAG = ["Private CAs"]
# The export response's SM2 envelope fields: always null, SM2 is not supported.
_SM2_ENVELOPE = {
    "enc_certificate": None,
    "enc_private_key": None,
    "enc_sm2_enveloped_key": None,
    "signed_and_enveloped_data": None,
}
_CERT_TAG = ["Private certificates"]


def _ok(schema: type | None, description: str) -> dict:
    ok: dict[str, Any] = {"description": description}
    if schema is not None:
        ok["schema"] = schema
    return {200: ok, **_ERRORS}


def _dn(body: dict[str, Any] | None) -> DistinguishedName | None:
    if body is None:
        return None
    return DistinguishedName(**{k: body.get(k) for k in DistinguishedName.__slots__})


def _validity(body: dict[str, Any] | None) -> ValidityRequest | None:
    return None if body is None else ValidityRequest(body.get("type"), body.get("value"), body.get("start_from"))


def _crl(body: dict[str, Any] | None) -> CrlConfigRequest | None:
    if body is None:
        return None
    return CrlConfigRequest(body.get("enabled"), body.get("crl_name"), body.get("valid_days"))


def _sans(items: list[dict[str, Any]] | None) -> tuple[SanRequest, ...] | None:
    return None if items is None else tuple(SanRequest(i.get("type"), i.get("value")) for i in items)


def _ca_json(request: web.Request, ca: Any) -> dict[str, Any]:
    service = request.config_dict[AUTHORITY_SERVICE]
    return p.authority(ca, service.status_of(ca), service.crl_url(ca.id))


# -- CAs ---------------------------------------------------------------------------------------------


@docs(tags=_CA_TAG, summary="Create a root or subordinate private CA", responses=_ok(s.CaIdSchema, "{ca_id}"))
@json_schema(s.CaCreateSchema, required=True)
async def create_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CaCreateSchema)
    draft = AuthorityDraft(
        type=b.get("type"),
        distinguished_name=_dn(b.get("distinguished_name")),
        key_algorithm=b.get("key_algorithm"),
        signature_algorithm=b.get("signature_algorithm"),
        validity=_validity(b.get("validity")),
        issuer_id=b.get("issuer_id"),
        path_length=b.get("path_length"),
        key_usages=tuple(b["key_usages"]) if b.get("key_usages") is not None else None,
        crl_configuration=_crl(b.get("crl_configuration")),
    )
    ca = await request.config_dict[AUTHORITY_SERVICE].create(principal, project_id, draft)
    return json_response({"ca_id": ca.id})


@docs(tags=_CA_TAG, summary="List private CAs", responses=_ok(s.CaListSchema, "{total, certificate_authorities}"))
@querystring_schema(s.CaListQuerySchema)
async def list_authorities(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    q = load_query(s.CaListQuerySchema, request)
    query = parse_query(
        q.get("name"),
        q.get("status"),
        q.get("type"),
        q.get("sort_key"),
        q.get("sort_dir"),
        statuses=CaStatus,
        authority=True,
    )
    page = await request.config_dict[AUTHORITY_SERVICE].list(
        principal, project_id, query, q.get("offset"), q.get("limit")
    )
    return json_response({"total": page.total, "certificate_authorities": [_ca_json(request, ca) for ca in page.items]})


@docs(tags=_CA_TAG, summary="Show a private CA", responses=_ok(s.CaSchema, "CertificateAuthorities"))
@match_info_schema(s.CaPathSchema)
async def show_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    ca = await request.config_dict[AUTHORITY_SERVICE].get(principal, project_id, request.match_info["ca_id"])
    return json_response(_ca_json(request, ca))


@docs(
    tags=_CA_TAG,
    summary="Schedule a CA's deletion (pending_days 7-30); restore undoes it",
    responses={204: {"description": "Scheduled"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
@querystring_schema(s.DeleteCaQuerySchema)
async def delete_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    q = load_query(s.DeleteCaQuerySchema, request)
    await request.config_dict[AUTHORITY_SERVICE].schedule_delete(
        principal, project_id, request.match_info["ca_id"], q.get("pending_days")
    )
    return web.Response(status=204)


def _ca_action(verb: str, summary: str) -> Any:
    @docs(tags=_CA_TAG, summary=summary, responses={204: {"description": "Done"}, **_ERRORS})
    @match_info_schema(s.CaPathSchema)
    async def handler(request: web.Request) -> web.Response:
        principal, project_id = tenant(request)
        service = request.config_dict[AUTHORITY_SERVICE]
        await getattr(service, verb)(principal, project_id, request.match_info["ca_id"])
        return web.Response(status=204)

    handler.__name__ = f"{verb}_authority"
    return handler


enable_authority = _ca_action("enable", "Enable a CA")
disable_authority = _ca_action("disable", "Disable a CA (it stops issuing)")
restore_authority = _ca_action("restore", "Restore a CA scheduled for deletion (it comes back disabled)")


@docs(tags=_CA_TAG, summary="Export a CA's certificate and chain", responses=_ok(s.CaExportedSchema, "PEM"))
@match_info_schema(s.CaPathSchema)
async def export_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    cert, chain = await request.config_dict[AUTHORITY_SERVICE].export(
        principal, project_id, request.match_info["ca_id"]
    )
    return json_response({"certificate": cert, "certificate_chain": chain})


@docs(
    tags=_CA_TAG,
    summary="Export a PENDING CA's CSR, for an outside CA to sign",
    responses=_ok(s.CsrExportedSchema, "{csr}"),
)
@match_info_schema(s.CaPathSchema)
async def export_authority_csr(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    csr = await request.config_dict[AUTHORITY_SERVICE].export_csr(principal, project_id, request.match_info["ca_id"])
    return json_response({"csr": csr})


@docs(
    tags=_CA_TAG,
    summary="Import the certificate an outside CA signed for a PENDING CA",
    responses={204: {"description": "Imported"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
@json_schema(s.CaImportSchema, required=True)
async def import_authority_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CaImportSchema)
    await request.config_dict[AUTHORITY_SERVICE].import_certificate(
        principal, project_id, request.match_info["ca_id"], b.get("certificate"), b.get("certificate_chain")
    )
    return web.Response(status=204)


@docs(
    tags=_CA_TAG,
    summary="Activate a PENDING CA by signing it with one of the project's CAs",
    responses={204: {"description": "Activated"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
@json_schema(s.CaActivateSchema, required=True)
async def activate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CaActivateSchema)
    draft = ActivateDraft(
        issuer_id=b.get("issuer_id"),
        signature_algorithm=b.get("signature_algorithm"),
        validity=_validity(b.get("validity")),
        path_length=b.get("path_length"),
        crl_configuration=_crl(b.get("crl_configuration")),
    )
    await request.config_dict[AUTHORITY_SERVICE].activate(principal, project_id, request.match_info["ca_id"], draft)
    return web.Response(status=204)


@docs(
    tags=_CA_TAG,
    summary="Revoke a subordinate CA (its serial goes into its parent's CRL)",
    responses={204: {"description": "Revoked"}, **_ERRORS},
)
@match_info_schema(s.CaPathSchema)
@json_schema(s.RevokeSchema, required=False)
async def revoke_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.RevokeSchema, optional=True)
    await request.config_dict[AUTHORITY_SERVICE].revoke(
        principal, project_id, request.match_info["ca_id"], b.get("reason")
    )
    return web.Response(status=204)


@docs(tags=_CA_TAG, summary="Enable CRL publishing", responses={204: {"description": "Enabled"}, **_ERRORS})
@match_info_schema(s.CaPathSchema)
@json_schema(s.CrlEnableSchema, required=False)
async def enable_crl(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CrlEnableSchema, optional=True)
    await request.config_dict[AUTHORITY_SERVICE].configure_crl(
        principal,
        project_id,
        request.match_info["ca_id"],
        CrlConfigRequest(None, b.get("crl_name"), b.get("valid_days")),
        enabled=True,
    )
    return web.Response(status=204)


@docs(tags=_CA_TAG, summary="Disable CRL publishing", responses={204: {"description": "Disabled"}, **_ERRORS})
@match_info_schema(s.CaPathSchema)
async def disable_crl(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[AUTHORITY_SERVICE].configure_crl(
        principal, project_id, request.match_info["ca_id"], None, enabled=False
    )
    return web.Response(status=204)


@docs(
    tags=_CA_TAG,
    summary="The CA's CRL (public, no token): DER by default; PEM with ?format=pem or Accept: application/x-pem-file",
    security=[],
    responses={200: {"description": "application/pkix-crl (DER) or application/x-pem-file"}, 404: _ERRORS[404]},
)
@match_info_schema(s.CaPathSchema)
async def get_crl(request: web.Request) -> web.Response:
    pem = request.query.get("format") == "pem" or "application/x-pem-file" in request.headers.get("Accept", "")
    body = await request.config_dict[AUTHORITY_SERVICE].public_crl(request.match_info["ca_id"], pem=pem)
    content_type = "application/x-pem-file" if pem else "application/pkix-crl"
    return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "public, max-age=300"})


get_crl.public_route = True  # type: ignore[attr-defined]


# -- certificates -------------------------------------------------------------------------------------


@docs(
    tags=_CERT_TAG,
    summary="Issue a certificate with a key generated here",
    responses=_ok(s.CertificateIdSchema, "{certificate_id}"),
)
@json_schema(s.CertificateCreateSchema, required=True)
async def create_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    body = await read_json_object(request)
    b = plain_create_body(body)
    if b is None:  # anything but a plainly well-formed body: the schema reads it (and words its errors)
        b = load(s.CertificateCreateSchema, body)
    eku = b.get("extended_key_usage")
    ext = b.get("customized_extension")
    draft = IssueDraft(
        issuer_id=b.get("issuer_id"),
        key_algorithm=b.get("key_algorithm"),
        signature_algorithm=b.get("signature_algorithm"),
        distinguished_name=_dn(b.get("distinguished_name")),
        validity=_validity(b.get("validity")),
        key_usages=tuple(b["key_usages"]) if b.get("key_usages") is not None else None,
        subject_alternative_names=_sans(b.get("subject_alternative_names")),
        extended_key_usage=None if eku is None else ExtendedKeyUsage(**{k: bool(v) for k, v in eku.items()}),
        customized_extension=None
        if not ext
        else CustomExtension(ext.get("object_identifier") or "", ext.get("value") or ""),
    )
    cert = await request.config_dict[PRIVATE_CERTIFICATE_SERVICE].issue(principal, project_id, draft)
    return json_response({"certificate_id": cert.id})


@docs(
    tags=_CERT_TAG,
    summary="Issue a certificate from a CSR (ENTITY_CERT or INTERMEDIATE_CA)",
    responses=_ok(s.CertificateIdSchema, "{certificate_id}"),
)
@json_schema(s.CertificateCsrSchema, required=True)
async def create_certificate_by_csr(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    body = await read_json_object(request)
    b = plain_csr_body(body)
    if b is None:  # anything but a plainly well-formed body: the schema reads it (and words its errors)
        b = load(s.CertificateCsrSchema, body)
    draft = CsrIssueDraft(
        issuer_id=b.get("issuer_id"),
        csr=b.get("csr"),
        validity=_validity(b.get("validity")),
        type=b.get("type"),
        path_length=b.get("path_length"),
        subject_alternative_names=_sans(b.get("subject_alternative_names")),
    )
    cert = await request.config_dict[PRIVATE_CERTIFICATE_SERVICE].issue_from_csr(principal, project_id, draft)
    return json_response({"certificate_id": cert.id})


@docs(tags=_CERT_TAG, summary="Parse a CSR", responses=_ok(s.CsrParsedSchema, "CSR contents"))
@json_schema(s.CsrParseSchema, required=True)
async def parse_csr(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CsrParseSchema)
    facts = await request.config_dict[PRIVATE_CERTIFICATE_SERVICE].parse_csr(principal, project_id, b.get("csr"))
    return json_response(
        {
            "key_algorithm": facts.key_type,
            "key_algorithm_length": facts.key_length,
            "signature_algorithm": facts.signature_algorithm,
            "public_key": facts.public_key_pem.decode(),
            "distinguished_name": p.dn(facts.subject) if facts.subject else {},
        }
    )


@docs(
    tags=_CERT_TAG, summary="List private certificates", responses=_ok(s.CertificateListSchema, "{total, certificates}")
)
@querystring_schema(s.ListQuerySchema)
async def list_certificates(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    q = load_query(s.ListQuerySchema, request)
    query = parse_query(
        q.get("name"),
        q.get("status"),
        None,
        q.get("sort_key"),
        q.get("sort_dir"),
        statuses=IssuedStatus,
        authority=False,
    )
    service = request.config_dict[PRIVATE_CERTIFICATE_SERVICE]
    page = await service.list(principal, project_id, query, q.get("offset"), q.get("limit"))
    return json_response(
        {"total": page.total, "certificates": [p.certificate(c, service.status_of(c)) for c in page.items]}
    )


@docs(tags=_CERT_TAG, summary="Show a private certificate", responses=_ok(s.CertificateSchema, "Certificates"))
@match_info_schema(s.CertificatePathSchema)
async def show_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    service = request.config_dict[PRIVATE_CERTIFICATE_SERVICE]
    cert = await service.get(principal, project_id, request.match_info["certificate_id"])
    return json_response(p.certificate(cert, service.status_of(cert)))


@docs(
    tags=_CERT_TAG,
    summary="Delete a revoked or expired certificate (a valid one must be revoked first)",
    responses={204: {"description": "Deleted"}, **_ERRORS},
)
@match_info_schema(s.CertificatePathSchema)
async def delete_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[PRIVATE_CERTIFICATE_SERVICE].delete(
        principal, project_id, request.match_info["certificate_id"]
    )
    return web.Response(status=204)


@docs(
    tags=_CERT_TAG,
    summary="Export a certificate: PEM JSON, a zip (is_compressed) or PKCS#12 (IIS/TOMCAT)",
    responses=_ok(s.ExportedSchema, "PEM fields, or a file"),
)
@match_info_schema(s.CertificatePathSchema)
@json_schema(s.ExportSchema, required=True)
async def export_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.ExportSchema)
    compressed = b.get("is_compressed")
    req = ExportRequest(
        type=b.get("type"),
        is_compressed=compressed is True or str(compressed).lower() == "true",
        password=b.get("password"),
    )
    result = await request.config_dict[PRIVATE_CERTIFICATE_SERVICE].export(
        principal, project_id, request.match_info["certificate_id"], req
    )
    if result.fields is not None:
        return json_response({**result.fields, **_SM2_ENVELOPE}, headers={"Cache-Control": "no-store"})
    return web.Response(
        body=result.content,
        content_type=result.content_type,
        headers={"Content-Disposition": f'attachment; filename="{result.filename}"', "Cache-Control": "no-store"},
    )


@docs(
    tags=_CERT_TAG,
    summary="Revoke a certificate (body {} allowed; reason defaults to UNSPECIFIED)",
    responses={204: {"description": "Revoked"}, **_ERRORS},
)
@match_info_schema(s.CertificatePathSchema)
@json_schema(s.RevokeSchema, required=False)
async def revoke_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.RevokeSchema, optional=True)
    await request.config_dict[PRIVATE_CERTIFICATE_SERVICE].revoke(
        principal, project_id, request.match_info["certificate_id"], b.get("reason")
    )
    return web.Response(status=204)


@docs(
    tags=_CERT_TAG,
    summary="Import a certificate issued here (with its key) into the APIC SSL certificate store",
    responses=_ok(None, "{id, name, project_id}"),
)
@match_info_schema(s.CertificatePathSchema)
@json_schema(s.ImportToApicSchema, required=True)
async def import_to_apic(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.ImportToApicSchema)
    created = await request.config_dict[GATEWAY_IMPORT].import_to_apic(
        principal,
        project_id,
        request.match_info["certificate_id"],
        target_project=b.get("project_id") or project_id,
        name=b.get("name"),
        scope=b.get("type"),
        instance_id=b.get("instance_id"),
    )
    return json_response({"id": created.id, "name": created.name, "project_id": created.project_id})
