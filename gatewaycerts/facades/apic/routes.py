"""The APIC route table (paths relative to the /v2 mount point)."""

from __future__ import annotations

from aiohttp import web

from gatewaycerts.facades.apic import acme_client, managed_views, views

CERTS = "/{project_id}/apic/certificates"
CERT = CERTS + "/{certificate_id}"
EXPIRY = "/{project_id}/apic/certificate-expiry"  # ours: the console's overview
MANAGED = "/{project_id}/apic/managed-certificates"  # ours: certificates the service renews
GATEWAY_KEYS = "/{project_id}/apic/instances/{instance_id}/gateway-keys"
WEBHOOKS = "/{project_id}/apic/webhooks"
WEBHOOK = WEBHOOKS + "/{webhook_id}"


def add_routes(app: web.Application) -> None:
    app.router.add_post(CERTS, views.create_certificate)
    app.router.add_get(CERTS, views.list_certificates, allow_head=False)
    app.router.add_get(CERT, views.show_certificate, allow_head=False)
    app.router.add_put(CERT, views.update_certificate)
    app.router.add_delete(CERT, managed_views.delete_certificate)  # managed ones stop being renewed too
    app.router.add_post(CERT + "/domains/attach", views.attach_domains)
    app.router.add_post(CERT + "/domains/detach", views.detach_domains)
    app.router.add_get(CERT + "/attached-domains", views.list_attached_domains, allow_head=False)
    app.router.add_get(CERT + "/renewal", managed_views.show_renewal, allow_head=False)
    app.router.add_post(CERT + "/renewal/actions/renew", managed_views.renew_now)
    app.router.add_get(CERT + "/revisions", managed_views.list_revisions, allow_head=False)
    app.router.add_post(MANAGED, managed_views.create_managed_certificate)
    app.router.add_get(MANAGED, managed_views.list_managed_certificates, allow_head=False)
    app.router.add_get(MANAGED + "/{certificate_id}", managed_views.show_managed_certificate, allow_head=False)
    app.router.add_get(EXPIRY, views.show_expiry_overview, allow_head=False)
    app.router.add_post(GATEWAY_KEYS, views.create_gateway_key)
    app.router.add_get(GATEWAY_KEYS, views.list_gateway_keys, allow_head=False)
    app.router.add_delete(GATEWAY_KEYS + "/{key_id}", views.delete_gateway_key)
    app.router.add_post(WEBHOOKS, views.create_webhook)
    app.router.add_get(WEBHOOKS, views.list_webhooks, allow_head=False)
    app.router.add_get(WEBHOOK, views.show_webhook, allow_head=False)
    app.router.add_delete(WEBHOOK, views.delete_webhook)
    app.router.add_post(WEBHOOK + "/actions/test", views.test_webhook)
    app.router.add_get(WEBHOOK + "/deliveries", views.list_webhook_deliveries, allow_head=False)
    acme_client.add_routes(app)
