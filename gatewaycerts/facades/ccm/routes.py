"""The CCM route tables: one sub-app per collection (CCM's two URL roots share no prefix but /v1)."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.facades.ccm import acme_views as acme
from gatewaycerts.facades.ccm import views as v

CAS = "/v1/private-certificate-authorities"
CERTS = "/v1/private-certificates"


def add_authority_routes(app: web.Application) -> None:
    """Paths relative to CAS."""
    app.router.add_post("", v.create_authority)
    app.router.add_get("", v.list_authorities, allow_head=False)
    ca = "/{ca_id}"
    app.router.add_get(ca, v.show_authority, allow_head=False)
    app.router.add_delete(ca, v.delete_authority)
    app.router.add_post(ca + "/enable", v.enable_authority)
    app.router.add_post(ca + "/disable", v.disable_authority)
    app.router.add_post(ca + "/restore", v.restore_authority)
    app.router.add_post(ca + "/export", v.export_authority)
    app.router.add_get(ca + "/csr", v.export_authority_csr, allow_head=False)
    app.router.add_post(ca + "/import", v.import_authority_certificate)
    app.router.add_post(ca + "/activate", v.activate_authority)
    app.router.add_post(ca + "/revoke", v.revoke_authority)
    app.router.add_post(ca + "/crl/enable", v.enable_crl)
    app.router.add_post(ca + "/crl/disable", v.disable_crl)
    app.router.add_get(ca + "/crl", v.get_crl, allow_head=False)
    app.router.add_get(ca + "/acme", acme.get_policy, allow_head=False)
    app.router.add_put(ca + "/acme", acme.put_policy)
    app.router.add_post(ca + "/acme/eab-keys", acme.create_eab_key)
    app.router.add_get(ca + "/acme/eab-keys", acme.list_eab_keys, allow_head=False)
    app.router.add_delete(ca + "/acme/eab-keys/{kid}", acme.revoke_eab_key)


def add_certificate_routes(app: web.Application) -> None:
    """Paths relative to CERTS."""
    app.router.add_post("", v.create_certificate)
    app.router.add_get("", v.list_certificates, allow_head=False)
    app.router.add_post("/csr", v.create_certificate_by_csr)
    app.router.add_post("/csr/parse", v.parse_csr)
    cert = "/{certificate_id}"
    app.router.add_get(cert, v.show_certificate, allow_head=False)
    app.router.add_delete(cert, v.delete_certificate)
    app.router.add_post(cert + "/export", v.export_certificate)
    app.router.add_post(cert + "/revoke", v.revoke_certificate)
    app.router.add_post(cert + "/import-to-apic", v.import_to_apic)
