"""Notary handlers: parse, make one core call, present in {"result": ...}."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_apigami import docs, json_schema, match_info_schema, querystring_schema

from gatewaycerts.appkeys import AUTHORITY_SERVICE, CERTIFICATE_REQUEST_SERVICE, NOTARY_AUTHORITY_SERVICE
from gatewaycerts.core.notary import NotaryCaDraft
from gatewaycerts.facades.notary import presenters as p
from gatewaycerts.facades.notary import schemas as s
from gatewaycerts.web.errors import json_response
from gatewaycerts.web.requests import load_body, load_query, tenant

_ERRORS = {
    400: {"schema": s.ErrorSchema, "description": "Bad request or a transition the status does not allow"},
    401: {"schema": s.ErrorSchema, "description": "Missing or invalid token"},
    403: {"schema": s.ErrorSchema, "description": "The token's project or role does not allow this"},
    404: {"schema": s.ErrorSchema, "description": "Not found"},
    409: {"schema": s.ErrorSchema, "description": "A concurrent change, or the request is being signed"},
    500: {"schema": s.ErrorSchema, "description": "Internal error (with the request id)"},
    503: {"schema": s.ErrorSchema, "description": "The store is unavailable; nothing was changed, retry later"},
}
# What a route that reads a JSON body may answer besides.
_BODY_ERRORS = {
    413: {"schema": s.ErrorSchema, "description": "The body is larger than GATEWAYCERTS_MAX_BODY_BYTES"},
    415: {"schema": s.ErrorSchema, "description": "The body is not application/json"},
}
_REQ_TAG = ["Certificate requests"]
_CA_TAG = ["Certificate authorities"]


def _ok(schema: type, description: str, status: int = 200, *, body: bool = False) -> dict:
    return {status: {"schema": schema, "description": description}, **(_BODY_ERRORS if body else {}), **_ERRORS}


def _id(request: web.Request) -> str:
    return request.match_info["id"]


def _success(status: int = 200, **extra: Any) -> web.Response:
    return json_response(p.success(**extra), status=status)


# -- certificate requests ----------------------------------------------------------------------------


@docs(tags=_REQ_TAG, summary="List certificate requests", responses=_ok(s.CertificateRequestListSchema, "{result}"))
@querystring_schema(s.CertificateRequestListQuerySchema)
async def list_certificate_requests(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    q = load_query(s.CertificateRequestListQuerySchema, request)
    page = await request.config_dict[CERTIFICATE_REQUEST_SERVICE].list(
        principal, project_id, q.get("status"), q.get("offset"), q.get("limit")
    )
    return json_response(
        {"result": [p.certificate_request(r) for r in page.items]}, headers={"X-Total-Count": str(page.total)}
    )


@docs(
    tags=_REQ_TAG,
    summary="Submit a CSR (editor); a CSR already outstanding in the project is refused",
    responses=_ok(s.CreatedResultSchema, "{result: {message, id}}", 201, body=True),
)
@json_schema(s.CreateCertificateRequestSchema, required=True)
async def create_certificate_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CreateCertificateRequestSchema)
    req = await request.config_dict[CERTIFICATE_REQUEST_SERVICE].submit(principal, project_id, b.get("csr"))
    return _success(201, id=req.id)


@docs(tags=_REQ_TAG, summary="Show a certificate request", responses=_ok(s.CertificateRequestResultSchema, "{result}"))
@match_info_schema(s.IdPathSchema)
async def show_certificate_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    req = await request.config_dict[CERTIFICATE_REQUEST_SERVICE].get(principal, project_id, _id(request))
    return json_response({"result": p.certificate_request(req)})


@docs(
    tags=_REQ_TAG,
    summary="Delete a certificate request (its submitter or an admin; a valid certificate signed here: revoke first)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}"),
)
@match_info_schema(s.IdPathSchema)
async def delete_certificate_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[CERTIFICATE_REQUEST_SERVICE].delete(principal, project_id, _id(request))
    return _success()


@docs(
    tags=_REQ_TAG,
    summary="Sign an Outstanding request with a CA of the project (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}", body=True),
)
@match_info_schema(s.IdPathSchema)
@json_schema(s.SignCertificateRequestSchema, required=True)
async def sign_certificate_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.SignCertificateRequestSchema)
    await request.config_dict[CERTIFICATE_REQUEST_SERVICE].sign(
        principal, project_id, _id(request), b.get("certificate_authority_id"), b.get("validity_days")
    )
    return _success()


@docs(
    tags=_REQ_TAG,
    summary="Attach a chain signed elsewhere to an Outstanding request (admin)",
    responses=_ok(s.CreatedResultSchema, "{result: {message, id}}", 201, body=True),
)
@match_info_schema(s.IdPathSchema)
@json_schema(s.UploadCertificateSchema, required=True)
async def create_certificate_for_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.UploadCertificateSchema)
    req = await request.config_dict[CERTIFICATE_REQUEST_SERVICE].upload_certificate(
        principal, project_id, _id(request), b.get("certificate")
    )
    return _success(201, id=req.id)


@docs(
    tags=_REQ_TAG,
    summary="Detach an uploaded chain: the request is Outstanding again (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}"),
)
@match_info_schema(s.IdPathSchema)
async def delete_certificate_of_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[CERTIFICATE_REQUEST_SERVICE].delete_certificate(principal, project_id, _id(request))
    return _success()


@docs(tags=_REQ_TAG, summary="Reject an Outstanding request (admin)", responses=_ok(s.MessageResultSchema, "{result}"))
@match_info_schema(s.IdPathSchema)
async def reject_certificate_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[CERTIFICATE_REQUEST_SERVICE].reject(principal, project_id, _id(request))
    return _success()


@docs(
    tags=_REQ_TAG,
    summary="Revoke the certificate signed here for an Active request: its serial goes on the CA's CRL (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}", body=True),
)
@match_info_schema(s.IdPathSchema)
@json_schema(s.RevokeSchema, required=False)
async def revoke_certificate_of_request(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.RevokeSchema, optional=True)
    await request.config_dict[CERTIFICATE_REQUEST_SERVICE].revoke(principal, project_id, _id(request), b.get("reason"))
    return _success()


# -- certificate authorities ---------------------------------------------------------------------------


async def _ca_json(request: web.Request, ca: Any) -> dict[str, Any]:
    authorities = request.config_dict[AUTHORITY_SERVICE]
    crl = await request.config_dict[NOTARY_AUTHORITY_SERVICE].current_crl_pem(ca)
    return p.certificate_authority(ca, authorities.status_of(ca), crl)


@docs(tags=_CA_TAG, summary="List certificate authorities", responses=_ok(s.CertificateAuthorityListSchema, "{result}"))
async def list_certificate_authorities(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    cas = await request.config_dict[NOTARY_AUTHORITY_SERVICE].list(principal, project_id)
    return json_response({"result": [await _ca_json(request, ca) for ca in cas]})


@docs(
    tags=_CA_TAG,
    summary="Create a self-signed (root) CA, or an intermediate CA waiting for its certificate (admin)",
    responses=_ok(s.CreatedResultSchema, "{result: {message, id}}", 201, body=True),
)
@json_schema(s.CreateCertificateAuthoritySchema, required=True)
async def create_certificate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.CreateCertificateAuthoritySchema)
    given = {k: b[k] for k in NotaryCaDraft.__slots__ if k in b}
    draft = NotaryCaDraft(**{**given, "self_signed": bool(b.get("self_signed", False))})
    ca = await request.config_dict[NOTARY_AUTHORITY_SERVICE].create(principal, project_id, draft)
    return _success(201, id=ca.id)


@docs(
    tags=_CA_TAG, summary="Show a certificate authority", responses=_ok(s.CertificateAuthorityResultSchema, "{result}")
)
@match_info_schema(s.IdPathSchema)
async def show_certificate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    ca = await request.config_dict[NOTARY_AUTHORITY_SERVICE].load_visible(principal, project_id, _id(request))
    return json_response({"result": await _ca_json(request, ca)})


@docs(
    tags=_CA_TAG,
    summary="Enable or disable a CA (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}", body=True),
)
@match_info_schema(s.IdPathSchema)
@json_schema(s.UpdateCertificateAuthoritySchema, required=True)
async def update_certificate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.UpdateCertificateAuthoritySchema)
    await request.config_dict[NOTARY_AUTHORITY_SERVICE].set_enabled(
        principal, project_id, _id(request), b.get("enabled")
    )
    return _success()


@docs(
    tags=_CA_TAG,
    summary="Delete a disabled CA (admin; restorable for 7 days through the CCM API)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}"),
)
@match_info_schema(s.IdPathSchema)
async def delete_certificate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[NOTARY_AUTHORITY_SERVICE].delete(principal, project_id, _id(request))
    return _success()


@docs(
    tags=_CA_TAG,
    summary="Sign a pending intermediate CA with another CA of the project (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}", body=True),
)
@match_info_schema(s.IdPathSchema)
@json_schema(s.SignCertificateAuthoritySchema, required=True)
async def sign_certificate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.SignCertificateAuthoritySchema)
    await request.config_dict[NOTARY_AUTHORITY_SERVICE].sign(
        principal, project_id, _id(request), b.get("certificate_authority_id"), b.get("not_valid_after")
    )
    return _success()


@docs(
    tags=_CA_TAG,
    summary="Upload a pending intermediate CA's certificate signed elsewhere, then its issuers (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}", 201, body=True),
)
@match_info_schema(s.IdPathSchema)
@json_schema(s.UploadCertificateAuthorityCertificateSchema, required=True)
async def upload_certificate_authority_certificate(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    b = await load_body(request, s.UploadCertificateAuthorityCertificateSchema)
    await request.config_dict[NOTARY_AUTHORITY_SERVICE].upload_certificate(
        principal, project_id, _id(request), b.get("certificate_chain")
    )
    return _success(201)


@docs(
    tags=_CA_TAG,
    summary="Revoke an intermediate CA: its serial goes on its issuer's CRL (admin)",
    responses=_ok(s.MessageResultSchema, "{result: {message}}"),
)
@match_info_schema(s.IdPathSchema)
async def revoke_certificate_authority(request: web.Request) -> web.Response:
    principal, project_id = tenant(request)
    await request.config_dict[NOTARY_AUTHORITY_SERVICE].revoke(principal, project_id, _id(request))
    return _success()


@docs(
    tags=_CA_TAG,
    summary="The CA's current CRL, PEM (public, no token)",
    security=[],
    responses={
        200: {"schema": s.CrlResultSchema, "description": "{result: {crl}}"},
        404: _ERRORS[404],
        503: _ERRORS[503],
    },
)
@match_info_schema(s.IdPathSchema)
async def get_certificate_authority_crl(request: web.Request) -> web.Response:
    crl = await request.config_dict[NOTARY_AUTHORITY_SERVICE].crl_pem(_id(request))
    return json_response({"result": {"crl": crl}}, headers={"Cache-Control": "public, max-age=300"})


get_certificate_authority_crl.public_route = True  # type: ignore[attr-defined]
