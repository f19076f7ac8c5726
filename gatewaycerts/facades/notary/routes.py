"""The Notary route table, relative to MOUNT (/api/v1)."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.facades.notary import views as v

MOUNT = "/api/v1"


def add_routes(app: web.Application) -> None:
    reqs, req = "/certificate_requests", "/certificate_requests/{id}"
    app.router.add_get(reqs, v.list_certificate_requests, allow_head=False)
    app.router.add_post(reqs, v.create_certificate_request)
    app.router.add_get(req, v.show_certificate_request, allow_head=False)
    app.router.add_delete(req, v.delete_certificate_request)
    app.router.add_post(req + "/sign", v.sign_certificate_request)
    app.router.add_post(req + "/certificate", v.create_certificate_for_request)
    app.router.add_delete(req + "/certificate", v.delete_certificate_of_request)
    app.router.add_post(req + "/reject", v.reject_certificate_request)
    app.router.add_post(req + "/certificate/revoke", v.revoke_certificate_of_request)
    cas, ca = "/certificate_authorities", "/certificate_authorities/{id}"
    app.router.add_get(cas, v.list_certificate_authorities, allow_head=False)
    app.router.add_post(cas, v.create_certificate_authority)
    app.router.add_get(ca, v.show_certificate_authority, allow_head=False)
    app.router.add_put(ca, v.update_certificate_authority)
    app.router.add_delete(ca, v.delete_certificate_authority)
    app.router.add_post(ca + "/sign", v.sign_certificate_authority)
    app.router.add_post(ca + "/certificate", v.upload_certificate_authority_certificate)
    app.router.add_post(ca + "/revoke", v.revoke_certificate_authority)
    app.router.add_get(ca + "/crl", v.get_certificate_authority_crl, allow_head=False)
