"""Typed keys for aiohttp applications and requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from gatewaycerts.domain.models import Principal

if TYPE_CHECKING:
    from gatewaycerts.auth.tokens import TokenVerifier
    from gatewaycerts.core.access_keys import AccessKeyService
    from gatewaycerts.core.acme.finalizer import AcmeFinalizeWorker
    from gatewaycerts.core.acme.nonces import NonceService
    from gatewaycerts.core.acme.service import AcmeService
    from gatewaycerts.core.acme.worker import AcmeValidationWorker
    from gatewaycerts.core.audit import AuditLog
    from gatewaycerts.core.authorities import AuthorityService
    from gatewaycerts.core.certificates import CertificateService
    from gatewaycerts.core.delivery.keys import GatewayKeyService
    from gatewaycerts.core.delivery.service import DeliveryService
    from gatewaycerts.core.expiry import ExpiryReport
    from gatewaycerts.core.gateway_import import GatewayImport
    from gatewaycerts.core.issuance import PrivateCertificateService
    from gatewaycerts.core.notary import NotaryAuthorityService
    from gatewaycerts.core.notifications import DeliveryWorker, ExpiryWatch, Notifier, WebhookService
    from gatewaycerts.core.ocsp import OcspResponder
    from gatewaycerts.core.orders import OrderService, OrderWorker
    from gatewaycerts.core.renewal.acme_client import AcmeClientService
    from gatewaycerts.core.renewal.acme_source import AcmeSource
    from gatewaycerts.core.renewal.service import RenewalService
    from gatewaycerts.core.renewal.worker import RenewalWorker
    from gatewaycerts.core.requests import CertificateRequestService
    from gatewaycerts.settings import Settings
    from gatewaycerts.store.interfaces import CertificateStore
    from gatewaycerts.web.metrics import Metrics
    from gatewaycerts.web.middleware import InFlight

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
TOKEN_VERIFIER: web.AppKey[TokenVerifier] = web.AppKey("token_verifier")
CERTIFICATE_SERVICE: web.AppKey[CertificateService] = web.AppKey("certificate_service")
CERTIFICATE_STORE: web.AppKey[CertificateStore] = web.AppKey("certificate_store")
AUTHORITY_SERVICE: web.AppKey[AuthorityService] = web.AppKey("authority_service")
PRIVATE_CERTIFICATE_SERVICE: web.AppKey[PrivateCertificateService] = web.AppKey("private_certificate_service")
GATEWAY_IMPORT: web.AppKey[GatewayImport] = web.AppKey("gateway_import")
CERTIFICATE_REQUEST_SERVICE: web.AppKey[CertificateRequestService] = web.AppKey("certificate_request_service")
NOTARY_AUTHORITY_SERVICE: web.AppKey[NotaryAuthorityService] = web.AppKey("notary_authority_service")
ORDER_SERVICE: web.AppKey[OrderService] = web.AppKey("order_service")
ORDER_WORKER: web.AppKey[OrderWorker] = web.AppKey("order_worker")
OCSP_RESPONDER: web.AppKey[OcspResponder] = web.AppKey("ocsp_responder")
OPENAPI_DOCS: web.AppKey[Mapping[str, dict]] = web.AppKey("openapi_docs")  # web/openapi.py OpenApiDocs
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
IN_FLIGHT: web.AppKey[InFlight] = web.AppKey("in_flight")
EXPIRY_REPORT: web.AppKey[ExpiryReport] = web.AppKey("expiry_report")
AUDIT_LOG: web.AppKey[AuditLog] = web.AppKey("audit_log")
ACCESS_KEY_SERVICE: web.AppKey[AccessKeyService] = web.AppKey("access_key_service")
DELIVERY_SERVICE: web.AppKey[DeliveryService] = web.AppKey("delivery_service")
GATEWAY_KEY_SERVICE: web.AppKey[GatewayKeyService] = web.AppKey("gateway_key_service")
ACME_CLIENT_SERVICE: web.AppKey[AcmeClientService] = web.AppKey("acme_client_service")
ACME_SOURCE: web.AppKey[AcmeSource] = web.AppKey("acme_source")
RENEWAL_SERVICE: web.AppKey[RenewalService] = web.AppKey("renewal_service")
RENEWAL_WORKER: web.AppKey[RenewalWorker] = web.AppKey("renewal_worker")
WEBHOOK_SERVICE: web.AppKey[WebhookService] = web.AppKey("webhook_service")
EVENT_SINK: web.AppKey[Notifier] = web.AppKey("event_sink")  # core.events.EventSink for renewals
WEBHOOK_WORKER: web.AppKey[DeliveryWorker] = web.AppKey("webhook_worker")
EXPIRY_WATCH: web.AppKey[ExpiryWatch] = web.AppKey("expiry_watch")

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal", Principal)
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
ACME_SERVICE: web.AppKey[AcmeService] = web.AppKey("acme_service")
ACME_NONCES: web.AppKey[NonceService] = web.AppKey("acme_nonces")
ACME_WORKER: web.AppKey[AcmeValidationWorker] = web.AppKey("acme_worker")
ACME_FINALIZER: web.AppKey[AcmeFinalizeWorker] = web.AppKey("acme_finalizer")
