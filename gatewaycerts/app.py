"""Composition root: the only module that picks implementations (store, key source, KEKs)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import NamedTuple

from aiohttp import web

from gatewaycerts import __version__
from gatewaycerts.appkeys import (
    ACCESS_KEY_SERVICE,
    ACME_CLIENT_SERVICE,
    ACME_FINALIZER,
    ACME_NONCES,
    ACME_SERVICE,
    ACME_SOURCE,
    ACME_WORKER,
    AUDIT_LOG,
    AUTHORITY_SERVICE,
    CERTIFICATE_REQUEST_SERVICE,
    CERTIFICATE_SERVICE,
    CERTIFICATE_STORE,
    DELIVERY_SERVICE,
    EVENT_SINK,
    EXPIRY_REPORT,
    EXPIRY_WATCH,
    GATEWAY_IMPORT,
    GATEWAY_KEY_SERVICE,
    IN_FLIGHT,
    METRICS,
    NOTARY_AUTHORITY_SERVICE,
    OCSP_RESPONDER,
    OPENAPI_DOCS,
    ORDER_SERVICE,
    ORDER_WORKER,
    PRIVATE_CERTIFICATE_SERVICE,
    RENEWAL_SERVICE,
    RENEWAL_WORKER,
    SETTINGS,
    TOKEN_VERIFIER,
    WEBHOOK_SERVICE,
    WEBHOOK_WORKER,
)
from gatewaycerts.auth.tokens import (
    JwksKeySource,
    KeySource,
    StaticKeySource,
    TokenVerifier,
    load_or_create_dev_key,
    load_public_key_file,
)
from gatewaycerts.connectors.addresses import AddressPolicy, parse_networks
from gatewaycerts.connectors.webhooks import WebhookSender
from gatewaycerts.console.routes import add_console_routes
from gatewaycerts.core.access_keys import AccessKeyService
from gatewaycerts.core.acme.finalizer import AcmeFinalizeWorker
from gatewaycerts.core.acme.nonces import NonceService
from gatewaycerts.core.acme.service import ACME_ANSWER_WAIT_SECONDS, AcmeService
from gatewaycerts.core.acme.validation import ChallengeValidator
from gatewaycerts.core.acme.worker import AcmeValidationWorker
from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import AuthorityService
from gatewaycerts.core.certificates import CertificateService
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.delivery.keys import GatewayKeyService
from gatewaycerts.core.delivery.service import DeliveryService
from gatewaycerts.core.delivery.uniqueness import BindingUniqueness
from gatewaycerts.core.expiry import ExpiryReport
from gatewaycerts.core.gateway_import import GatewayImport
from gatewaycerts.core.issuance import PrivateCertificateService
from gatewaycerts.core.kek_rotation import EnvelopeStores, check_keks
from gatewaycerts.core.notary import NotaryAuthorityService
from gatewaycerts.core.notifications import DeliveryWorker, ExpiryWatch, Notifier, WebhookService
from gatewaycerts.core.ocsp import OcspResponder
from gatewaycerts.core.orders import OrderService, OrderWorker
from gatewaycerts.core.renewal.acme_client import AcmeClientService
from gatewaycerts.core.renewal.acme_source import AcmeSource
from gatewaycerts.core.renewal.private_ca_source import PrivateCaSource
from gatewaycerts.core.renewal.service import RenewalService
from gatewaycerts.core.renewal.sources import CertificateSource, SourceKind
from gatewaycerts.core.renewal.worker import RenewalSettings, RenewalWorker
from gatewaycerts.core.requests import CertificateRequestService
from gatewaycerts.core.revocation import CrlPublisher
from gatewaycerts.facades.acme import app as acme_facade
from gatewaycerts.facades.apic.app import DESCRIPTION, MOUNT, TITLE, create_apic_app
from gatewaycerts.facades.audit import app as audit_facade
from gatewaycerts.facades.barbican import app as barbican
from gatewaycerts.facades.barbican.errors import BarbicanDialect
from gatewaycerts.facades.ccm import app as ccm
from gatewaycerts.facades.ccm.errors import CcmDialect
from gatewaycerts.facades.gateway import app as gateway_facade
from gatewaycerts.facades.iam import app as iam
from gatewaycerts.facades.notary import app as notary
from gatewaycerts.facades.ocsp import app as ocsp_facade
from gatewaycerts.keyvault import KeyVault, KeyVaultError, new_kek_line, parse_keks
from gatewaycerts.settings import Settings, SettingsError
from gatewaycerts.store.interfaces import (
    AccessKeyStore,
    AcmeClientStore,
    AcmeStore,
    AuditStore,
    CertificateStore,
    DeliveryStore,
    GatewayKeyStore,
    ManagedCertificateStore,
    NotificationStore,
    OrderStore,
    PcaStore,
)
from gatewaycerts.web import hot
from gatewaycerts.web.errors import ErrorDialect
from gatewaycerts.web.health import healthz, readyz
from gatewaycerts.web.metrics import Metrics, TimedStore, counter_hook, metrics_handler
from gatewaycerts.web.middleware import InFlight, PlainDialect, request_middleware
from gatewaycerts.web.openapi import OpenApiDocs, add_docs_routes, build_openapi

log = logging.getLogger("gatewaycerts")

DEV_KEK_FILE = "dev-kek"
WORKER_STOP_SECONDS = 10


def unmatched_path_dialect(path: str) -> ErrorDialect:
    """The envelope of a path no route matches, by the namespace it is in. Each dialect's sub-app answers
    its own unknown paths (/v2/{project_id}/apic/..., /api/v1/..., /v1/orders/...); the root app gets the
    rest. Under /v1, where Barbican's and CCM's collections sit side by side, CCM owns /v1/private-* (its
    only collections are /v1/private-certificate-authorities and /v1/private-certificates) and Barbican the
    rest (its version document at / advertises /v1/ to OpenStack clients). Anything else is the service's
    own (health, metrics, docs): {"error": {"code", "message"}}."""
    if path.startswith("/v1/private-"):
        return _CCM_DIALECT
    if path == "/v1" or path.startswith("/v1/"):
        return _BARBICAN_DIALECT
    return _PLAIN_DIALECT


_CCM_DIALECT, _BARBICAN_DIALECT, _PLAIN_DIALECT = CcmDialect(), BarbicanDialect(), PlainDialect()


class Stores(NamedTuple):
    certificates: CertificateStore
    pca: PcaStore
    orders: OrderStore
    audit: AuditStore
    access_keys: AccessKeyStore


def build_store(settings: Settings) -> CertificateStore:
    return build_stores(settings).certificates


def build_stores(settings: Settings) -> Stores:
    """Every store, on one database (one SQLite file with one writer and one reader pool, or one MongoDB
    client, owned and closed by the certificate store)."""
    path = settings.sqlite_path
    if path is not None:
        from gatewaycerts.store.sqlite.access_keys import SqliteAccessKeyStore
        from gatewaycerts.store.sqlite.audit import SqliteAuditStore
        from gatewaycerts.store.sqlite.base import SqliteDatabase
        from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
        from gatewaycerts.store.sqlite.orders import SqliteOrderStore
        from gatewaycerts.store.sqlite.pca import SqlitePcaStore

        db = SqliteDatabase(path)  # one writer (group commits across the stores) and one reader pool
        return Stores(
            SqliteCertificateStore(db),
            SqlitePcaStore(db),
            SqliteOrderStore(db),
            SqliteAuditStore(db),
            SqliteAccessKeyStore(db),
        )
    from pymongo import AsyncMongoClient
    from pymongo.uri_parser import parse_uri

    from gatewaycerts.store.mongo.access_keys import MongoAccessKeyStore
    from gatewaycerts.store.mongo.audit import MongoAuditStore
    from gatewaycerts.store.mongo.certificates import MongoCertificateStore
    from gatewaycerts.store.mongo.orders import MongoOrderStore
    from gatewaycerts.store.mongo.pca import MongoPcaStore

    url = str(settings.database_url)
    database = parse_uri(url).get("database") or settings.mongodb_database
    client: AsyncMongoClient = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, appname="gatewaycerts"
    )
    return Stores(
        MongoCertificateStore(client, database),
        MongoPcaStore(client, database, owns_client=False),
        MongoOrderStore(client, database, owns_client=False),
        MongoAuditStore(client, database, owns_client=False),
        MongoAccessKeyStore(client, database, owns_client=False),
    )


def build_access_key_store(settings: Settings) -> AccessKeyStore:
    """The access-key store alone, on the configured database (with a client or SQLite connection of its own)."""
    if settings.sqlite_path is not None:
        from gatewaycerts.store.sqlite.access_keys import SqliteAccessKeyStore

        return SqliteAccessKeyStore(settings.sqlite_path)
    from pymongo import AsyncMongoClient
    from pymongo.uri_parser import parse_uri

    from gatewaycerts.store.mongo.access_keys import MongoAccessKeyStore

    url = str(settings.database_url)
    database = parse_uri(url).get("database") or settings.mongodb_database
    client: AsyncMongoClient = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5000, appname="gatewaycerts"
    )
    return MongoAccessKeyStore(client, database, owns_client=True)


def build_managed_store(certificates: CertificateStore) -> ManagedCertificateStore:
    """The managed-certificate store on the certificate store's own database."""
    from gatewaycerts.store.sqlite.base import SqliteBase

    if isinstance(certificates, SqliteBase):
        from gatewaycerts.store.sqlite.managed import SqliteManagedCertificateStore

        return SqliteManagedCertificateStore(certificates.database)
    from gatewaycerts.store.mongo.certificates import MongoCertificateStore
    from gatewaycerts.store.mongo.managed import MongoManagedCertificateStore

    assert isinstance(certificates, MongoCertificateStore)
    return MongoManagedCertificateStore(certificates.client, certificates.database_name)


def build_delivery_stores(certificates: CertificateStore) -> tuple[DeliveryStore, GatewayKeyStore]:
    """The delivery and gateway-key stores on the certificate store's own database (the delivery store reads
    its certificates; on SQLite its triggers count their writes)."""
    from gatewaycerts.store.sqlite.base import SqliteBase

    if isinstance(certificates, SqliteBase):
        from gatewaycerts.store.sqlite.delivery import SqliteDeliveryStore, SqliteGatewayKeyStore

        return SqliteDeliveryStore(certificates.database), SqliteGatewayKeyStore(certificates.database)
    from gatewaycerts.store.mongo.certificates import MongoCertificateStore
    from gatewaycerts.store.mongo.delivery import MongoDeliveryStore, MongoGatewayKeyStore

    assert isinstance(certificates, MongoCertificateStore)
    client, database = certificates.client, certificates.database_name
    return MongoDeliveryStore(client, database), MongoGatewayKeyStore(client, database)


def build_notification_store(certificates: CertificateStore) -> NotificationStore:
    """The notification store on the certificate store's own database (the expiry watch reads its index)."""
    from gatewaycerts.store.sqlite.base import SqliteBase

    if isinstance(certificates, SqliteBase):
        from gatewaycerts.store.sqlite.notifications import SqliteNotificationStore

        return SqliteNotificationStore(certificates.database)
    from gatewaycerts.store.mongo.certificates import MongoCertificateStore
    from gatewaycerts.store.mongo.notifications import MongoNotificationStore

    assert isinstance(certificates, MongoCertificateStore)
    return MongoNotificationStore(certificates.client, certificates.database_name)


def build_acme_store(certificates: CertificateStore) -> AcmeStore:
    """The ACME store on the certificate store's own database (SQLite file or MongoDB client)."""
    from gatewaycerts.store.sqlite.base import SqliteBase

    if isinstance(certificates, SqliteBase):
        from gatewaycerts.store.sqlite.acme import SqliteAcmeStore

        return SqliteAcmeStore(certificates.database)
    from gatewaycerts.store.mongo.acme import MongoAcmeStore
    from gatewaycerts.store.mongo.certificates import MongoCertificateStore

    assert isinstance(certificates, MongoCertificateStore)
    return MongoAcmeStore(certificates.client, certificates.database_name)


def build_challenge_validator(settings: Settings) -> ChallengeValidator:
    """The ACME server's http-01 / dns-01 / tls-alpn-01 probes, behind the address guard (connectors/)."""
    from gatewaycerts.connectors.validators import ChallengeValidators, ValidatorSettings

    return ChallengeValidators(
        ValidatorSettings.of(
            http_port=settings.acme_http_port,
            tls_port=settings.acme_tls_port,
            resolver=settings.acme_resolver,
            allowed_targets=settings.acme_allowed_targets,
        )
    )


def build_acme_client_store(certificates: CertificateStore) -> AcmeClientStore:
    """The ACME client's store on the certificate store's own database."""
    from gatewaycerts.store.sqlite.base import SqliteBase

    if isinstance(certificates, SqliteBase):
        from gatewaycerts.store.sqlite.acme_client import SqliteAcmeClientStore

        return SqliteAcmeClientStore(certificates.database)
    from gatewaycerts.store.mongo.acme_client import MongoAcmeClientStore
    from gatewaycerts.store.mongo.certificates import MongoCertificateStore

    assert isinstance(certificates, MongoCertificateStore)
    client, database = certificates.client, certificates.database_name
    return MongoAcmeClientStore(client, database)


def build_acme_client(
    settings: Settings, store: AcmeClientStore, vault: KeyVault, audit: AuditLog, clock: Clock
) -> tuple[AcmeClientService, AcmeSource]:
    """The ACME client (certbot's `acme` in the thread pool) and the dns-01 updater behind the address guard."""
    from gatewaycerts.connectors.acme_client import AcmeClient
    from gatewaycerts.connectors.addresses import AddressPolicy, parse_networks
    from gatewaycerts.connectors.dns_update import DnsUpdater

    try:
        policy = AddressPolicy(parse_networks(settings.outbound_allowed_cidrs))
    except ValueError as exc:
        raise SettingsError(f"GATEWAYCERTS_OUTBOUND_ALLOWED_CIDRS: {exc}") from None
    acme = AcmeClient(policy, ca_bundle=settings.acme_ca_bundle)
    service = AcmeClientService(store, vault, acme, policy, audit=audit, clock=clock)
    return service, AcmeSource(service, DnsUpdater())


def _dev_kek(state_dir: Path) -> str:
    path = state_dir / DEV_KEK_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(new_kek_line("dev-1") + "\n")
    return path.read_text()


def build_vault(settings: Settings) -> KeyVault:
    """KEKs from GATEWAYCERTS_KEK_FILE, else GATEWAYCERTS_KEK, else a dev KEK in the state dir."""
    if settings.kek_file is not None:
        spec = settings.kek_file.read_text()
    elif settings.kek:
        spec = settings.kek
    else:
        if not settings.allow_dev_keys:
            raise SettingsError(
                "no key-encryption keys: set GATEWAYCERTS_KEK_FILE (or GATEWAYCERTS_KEK); "
                "GATEWAYCERTS_ALLOW_DEV_KEYS=false forbids the development KEK"
            )
        log.warning("no GATEWAYCERTS_KEK(_FILE) set: using the development KEK in %s", settings.state_dir)
        spec = _dev_kek(settings.state_dir)
    try:
        return KeyVault(parse_keks(spec))
    except KeyVaultError as exc:
        raise KeyVaultError(f"invalid key-encryption keys: {exc}") from None


def build_verifier(settings: Settings) -> TokenVerifier:
    keys: KeySource
    if settings.jwt_jwks_url:
        keys = JwksKeySource(settings.jwt_jwks_url)
    elif settings.jwt_public_key_file:
        keys = StaticKeySource(load_public_key_file(settings.jwt_public_key_file))
    else:
        if not settings.allow_dev_keys:
            raise SettingsError(
                "no JWT key source: set GATEWAYCERTS_JWT_JWKS_URL or GATEWAYCERTS_JWT_PUBLIC_KEY_FILE; "
                "GATEWAYCERTS_ALLOW_DEV_KEYS=false forbids the development signing key"
            )
        log.warning("no JWT key source configured: trusting the development key in %s", settings.state_dir)
        keys = StaticKeySource(load_or_create_dev_key(settings.state_dir).public_key())
    return TokenVerifier(
        keys, algorithms=settings.jwt_algorithms, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )


def create_app(
    settings: Settings,
    *,
    store: CertificateStore | None = None,
    pca_store: PcaStore | None = None,
    order_store: OrderStore | None = None,
    audit_store: AuditStore | None = None,
    access_key_store: AccessKeyStore | None = None,
    clock: Clock = system_clock,
    verifier: TokenVerifier | None = None,
    order_worker: bool | None = None,
    renewal_worker: bool | None = None,
    notification_worker: bool | None = None,
    acme_store: AcmeStore | None = None,
    challenge_validator: ChallengeValidator | None = None,
    acme_worker: bool | None = None,
) -> web.Application:
    """`order_worker`, `renewal_worker` and `notification_worker` override the settings (tests drive the workers
    themselves); `acme_worker` the same for the ACME validation worker (default: as order_worker).
    `challenge_validator` replaces the ACME challenge validator (the bench's always-succeeding one; never a
    setting)."""
    if store is None or pca_store is None or order_store is None or audit_store is None:
        built = build_stores(settings)
        store = store or built.certificates
        pca_store = pca_store or built.pca
        order_store = order_store or built.orders
        audit_store = audit_store or built.audit
        access_key_store = access_key_store or built.access_keys
    elif access_key_store is None:  # callers that give the other four (tests) and have no access keys of their own
        access_key_store = build_access_key_store(settings)
    vault = build_vault(settings)
    token_verifier = verifier or build_verifier(settings)
    executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="pki")
    in_flight = InFlight()
    # prometheus_client reads PROMETHEUS_MULTIPROC_DIR itself (the workers of `serve --workers N` have it);
    # the exposition has to follow the storage the library chose.
    multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    metrics = Metrics(multiprocess_dir=multiprocess_dir) if settings.metrics_enabled else None
    if metrics is not None:
        metrics.count_in_flight_from(lambda: in_flight.count)
    on_issued = on_revoked = on_audit_lost = None
    assert store is not None
    # The CCM issue paths' audit events go into the certificate's own transaction when the PCA store can write
    # them and shares the audit store's database (SQLite; see core/audit.py).
    pca_db = getattr(pca_store, "database", None)
    audit_with_certificates = bool(getattr(pca_store, "joins_audit", False)) and (
        pca_db is not None and pca_db is getattr(audit_store, "database", None)
    )
    delivery_store, gateway_key_store = build_delivery_stores(store)
    acme_client_store = build_acme_client_store(store)
    managed_store = build_managed_store(store)
    notification_store = build_notification_store(store)
    if acme_store is None:
        acme_store = build_acme_store(store)
    if challenge_validator is None:
        challenge_validator = build_challenge_validator(settings)
    if metrics is not None:
        store = TimedStore(store, "certificates", metrics)  # type: ignore[assignment]
        pca_store = TimedStore(pca_store, "pca", metrics)  # type: ignore[assignment]
        order_store = TimedStore(order_store, "orders", metrics)  # type: ignore[assignment]
        audit_store = TimedStore(audit_store, "audit", metrics)  # type: ignore[assignment]
        access_key_store = TimedStore(access_key_store, "access_keys", metrics)  # type: ignore[assignment]
        delivery_store = TimedStore(delivery_store, "delivery", metrics)  # type: ignore[assignment]
        gateway_key_store = TimedStore(gateway_key_store, "gateway_keys", metrics)  # type: ignore[assignment]
        acme_client_store = TimedStore(acme_client_store, "acme_client", metrics)  # type: ignore[assignment]
        managed_store = TimedStore(managed_store, "managed", metrics)  # type: ignore[assignment]
        notification_store = TimedStore(notification_store, "notifications", metrics)  # type: ignore[assignment]
        acme_store = TimedStore(acme_store, "acme", metrics)  # type: ignore[assignment]
        on_issued, on_revoked = counter_hook(metrics.issued), counter_hook(metrics.revoked)
        on_audit_lost = counter_hook(metrics.audit_lost)
    assert store is not None and pca_store is not None and order_store is not None and audit_store is not None
    assert access_key_store is not None

    app = web.Application(
        middlewares=[
            request_middleware(metrics, in_flight, for_path=unmatched_path_dialect),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[IN_FLIGHT] = in_flight
    app[CERTIFICATE_STORE] = store
    app[TOKEN_VERIFIER] = token_verifier
    audit = AuditLog(audit_store, clock=clock, on_lost=on_audit_lost)
    app[AUDIT_LOG] = audit
    certificates = CertificateService(
        store,
        vault,
        executor=executor,
        clock=clock,
        audit=audit,
        openssl_rsa_check=settings.rsa_key_check == "openssl",
        uniqueness=BindingUniqueness(delivery_store, store, clock),
    )
    app[CERTIFICATE_SERVICE] = certificates
    delivery = DeliveryService(
        delivery_store,
        vault,
        audit=audit,
        poll_seconds=settings.delivery_poll_ms / 1000,
        on_stale=metrics.delivery_stale.set if metrics is not None else None,
    )
    certificates.on_change = delivery.certificate_changed
    app[DELIVERY_SERVICE] = delivery
    app[GATEWAY_KEY_SERVICE] = GatewayKeyService(gateway_key_store, delivery, audit=audit, clock=clock)
    crls = CrlPublisher(pca_store, vault, executor=executor, clock=clock)
    authorities = AuthorityService(
        pca_store,
        vault,
        crls,
        public_url=settings.base_url,
        executor=executor,
        clock=clock,
        on_issued=on_issued,
        on_revoked=on_revoked,
        audit=audit,
    )
    issued = PrivateCertificateService(
        pca_store,
        vault,
        authorities,
        crls,
        executor=executor,
        clock=clock,
        on_issued=on_issued,
        on_revoked=on_revoked,
        audit=audit,
        audit_with_certificates=audit_with_certificates,
    )
    app[AUTHORITY_SERVICE] = authorities
    app[PRIVATE_CERTIFICATE_SERVICE] = issued
    app[GATEWAY_IMPORT] = GatewayImport(issued, certificates, audit=audit)
    app[CERTIFICATE_REQUEST_SERVICE] = CertificateRequestService(
        pca_store,
        authorities,
        issued,
        crls,
        executor=executor,
        clock=clock,
        on_issued=on_issued,
        on_revoked=on_revoked,
        audit=audit,
    )
    app[OCSP_RESPONDER] = OcspResponder(
        pca_store,
        vault,
        authorities,
        signer=settings.ocsp_signer,
        validity=timedelta(hours=settings.ocsp_validity_hours),
        executor=executor,
        clock=clock,
    )
    app[NOTARY_AUTHORITY_SERVICE] = NotaryAuthorityService(authorities, clock=clock, audit=audit)
    app[ACCESS_KEY_SERVICE] = AccessKeyService(access_key_store, vault, clock=clock, audit=audit)
    app[ACME_CLIENT_SERVICE], app[ACME_SOURCE] = build_acme_client(settings, acme_client_store, vault, audit, clock)
    orders = OrderService(
        order_store, vault, authorities, issued, executor=executor, clock=clock, on_issued=on_issued, audit=audit
    )
    worker = OrderWorker(order_store, orders, clock=clock, poll_seconds=settings.order_poll_ms / 1000)
    orders.on_created = worker.wake
    app[ORDER_SERVICE] = orders
    app[ORDER_WORKER] = worker
    run_worker = settings.order_worker if order_worker is None else order_worker
    # Managed certificates: the sources the loop issues from.
    sources: dict[str, CertificateSource] = {
        SourceKind.PRIVATE_CA.value: PrivateCaSource(issued),
        SourceKind.ACME.value: app[ACME_SOURCE],
    }
    renewal = RenewalService(managed_store, store, certificates, sources, audit=audit, clock=clock)
    renewal_loop = RenewalWorker(
        managed_store,
        store,
        vault,
        sources,
        audit=audit,
        executor=executor,
        clock=clock,
        settings=RenewalSettings(
            lease=timedelta(seconds=settings.renewal_lease_seconds),
            poll_seconds=settings.renewal_poll_seconds,
            concurrency=settings.renewal_concurrency,
            backoff_base=timedelta(seconds=settings.renewal_backoff_seconds),
            backoff_cap=timedelta(seconds=settings.renewal_backoff_max_seconds),
        ),
    )
    renewal.on_due = renewal_loop.wake
    renewal_loop.on_change = delivery.certificate_changed
    if metrics is not None:
        renewal_loop.on_result = lambda result: metrics.renewals.labels(result=result).inc()
        renewal_loop.on_schedule = lambda m: (
            metrics.next_renewal.labels(certificate_id=m.id).set(m.due_at.timestamp() if m.due_at else 0),
            metrics.renewal_failures.labels(certificate_id=m.id).set(m.consecutive_failures),
        )
        renewal.on_forget = renewal_loop.on_forget = metrics.forget_certificate
    app[RENEWAL_SERVICE] = renewal
    app[RENEWAL_WORKER] = renewal_loop
    run_renewals = settings.renewal_worker if renewal_worker is None else renewal_worker

    # Webhooks: the address guard refuses loopback, link-local and private targets unless the operator allows
    # CIDRs; the EventSink (EVENT_SINK) is what renewals and the expiry watch emit into.
    address_policy = AddressPolicy(parse_networks(settings.webhook_allowed_targets))
    notifier = Notifier(notification_store, clock=clock)
    app[EVENT_SINK] = notifier
    renewal_loop.events = notifier  # certificate.renewed / certificate.renewal_failed
    app[WEBHOOK_SERVICE] = WebhookService(notification_store, vault, notifier, address_policy, audit=audit, clock=clock)
    webhook_worker = DeliveryWorker(
        notification_store,
        vault,
        WebhookSender(address_policy, timeout=settings.webhook_timeout, connect_timeout=settings.webhook_timeout / 2),
        clock=clock,
        retry_schedule=settings.webhook_retry_schedule,
        # a claim outlives the slowest attempt, so no other replica sends while one is still in flight
        lease=timedelta(seconds=max(60, 3 * settings.webhook_timeout)),
        poll_seconds=settings.webhook_poll_ms / 1000,
        on_result=(lambda result: metrics.webhook_deliveries.labels(result).inc()) if metrics is not None else None,
        on_pending=metrics.webhook_pending.set if metrics is not None else None,
    )
    notifier.on_stored = webhook_worker.wake
    app[WEBHOOK_WORKER] = webhook_worker
    expiry_watch = ExpiryWatch(
        notification_store, notifier, clock=clock, interval_seconds=settings.expiry_watch_seconds
    )
    app[EXPIRY_WATCH] = expiry_watch
    run_notifications = settings.notification_worker if notification_worker is None else notification_worker

    acme = AcmeService(
        acme_store,
        pca_store,
        vault,
        authorities,
        issued,
        executor=executor,
        clock=clock,
        audit=audit,
        on_issued=on_issued,
    )
    acme_validations = AcmeValidationWorker(acme_store, acme, challenge_validator, clock=clock)
    acme.on_challenge = acme_validations.wake
    app[ACME_SERVICE] = acme
    app[ACME_NONCES] = NonceService(acme_store)
    app[ACME_WORKER] = acme_validations
    acme_finalizer = AcmeFinalizeWorker(acme_store, acme.issuer, clock=clock)
    app[ACME_FINALIZER] = acme_finalizer
    run_acme_worker = run_worker if acme_worker is None else acme_worker
    if run_acme_worker:
        acme.answer_wait_seconds = ACME_ANSWER_WAIT_SECONDS

    async def close() -> None:
        await notification_store.close()
        await acme_store.close()
        await acme_client_store.close()
        await managed_store.close()
        await access_key_store.close()
        await gateway_key_store.close()
        await delivery_store.close()
        await audit_store.close()
        await order_store.close()
        await pca_store.close()
        await store.close()
        executor.shutdown(wait=True)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        try:
            await store.ensure_schema()
            await pca_store.ensure_schema()
            await order_store.ensure_schema()
            await audit_store.ensure_schema()
            await access_key_store.ensure_schema()
            await delivery_store.ensure_schema()  # after the certificates': its SQLite triggers are on them
            await gateway_key_store.ensure_schema()
            await acme_client_store.ensure_schema()
            await managed_store.ensure_schema()
            await notification_store.ensure_schema()
            await acme_store.ensure_schema()
            # Before serving: a missing or wrong KEK refuses to start instead of failing request by request.
            await check_keks(
                EnvelopeStores(
                    store,
                    pca_store,
                    order_store,
                    access_key_store,
                    notification_store,
                    acme_client_store,
                    acme_store,
                ),
                vault,
            )
        except BaseException:
            await close()
            raise
        task = asyncio.create_task(worker.run(), name="order-worker") if run_worker else None
        watch = asyncio.create_task(delivery.run(), name="delivery-watch")
        renewals = asyncio.create_task(renewal_loop.run(), name="renewal-loop") if run_renewals else None
        notifying = (
            [
                asyncio.create_task(webhook_worker.run(), name="webhook-worker"),
                asyncio.create_task(expiry_watch.run(), name="expiry-watch"),
            ]
            if run_notifications
            else []
        )
        validations = asyncio.create_task(acme_validations.run(), name="acme-validations") if run_acme_worker else None
        finalizing = asyncio.create_task(acme_finalizer.run(), name="acme-finalizer") if run_acme_worker else None
        yield
        if finalizing is not None:
            acme_finalizer.stop()
            try:
                await asyncio.wait_for(finalizing, WORKER_STOP_SECONDS)
            except TimeoutError:
                log.warning("the ACME finalize worker did not stop in time; its lease lapses and is taken again")
        if validations is not None:
            acme_validations.stop()
            try:
                await asyncio.wait_for(validations, WORKER_STOP_SECONDS)
            except TimeoutError:
                log.warning("the ACME validation worker did not stop in time; its claims lapse and are taken again")
        if renewals is not None:
            renewal_loop.stop()
            try:
                await asyncio.wait_for(renewals, WORKER_STOP_SECONDS)
            except TimeoutError:
                log.warning("the renewal loop did not stop in %ss; its claim runs out", WORKER_STOP_SECONDS)
        delivery.stop()
        await watch
        webhook_worker.stop()
        expiry_watch.stop()
        for loop_task in notifying:
            try:
                await asyncio.wait_for(loop_task, WORKER_STOP_SECONDS)
            except TimeoutError:
                log.warning(
                    "%s did not stop in %ss; its work is claimed again later", loop_task.get_name(), WORKER_STOP_SECONDS
                )
        if task is not None:
            worker.stop()
            try:
                await asyncio.wait_for(task, WORKER_STOP_SECONDS)
            except TimeoutError:
                log.warning(
                    "the order worker did not stop in %ss; its order is claimed again later", WORKER_STOP_SECONDS
                )
        await close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    if metrics is not None:
        app[METRICS] = metrics
        app[EXPIRY_REPORT] = ExpiryReport(store, pca_store, clock=clock)
        app.router.add_get("/metrics", metrics_handler, allow_head=False)
    add_docs_routes(app)
    add_console_routes(app)

    apic = create_apic_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(MOUNT, apic)
    ccm_apps = ccm.create_ccm_apps(client_max_size=settings.max_body_bytes)
    for mount, sub in ccm_apps.items():
        app.add_subapp(mount, sub)
    barbican_apps = barbican.create_barbican_apps(client_max_size=settings.max_body_bytes)
    for mount, sub in barbican_apps.items():
        app.add_subapp(mount, sub)
    app.router.add_get("/", barbican.versions, allow_head=False)
    notary_app = notary.create_notary_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(notary.MOUNT, notary_app)
    audit_app = audit_facade.create_audit_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(audit_facade.MOUNT, audit_app)
    iam_app = iam.create_iam_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(iam.MOUNT, iam_app)
    pki_app = ocsp_facade.create_ocsp_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(ocsp_facade.MOUNT, pki_app)
    gateway_app = gateway_facade.create_gateway_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(gateway_facade.MOUNT, gateway_app)
    app.add_subapp(acme_facade.MOUNT, acme_facade.create_acme_app(client_max_size=settings.max_body_bytes))
    hot.install(app)  # the routes marked @hot (delivery, APIC show) matched flat, before aiohttp's routers
    ocsp_facade.install_flat_routes(app, pki_app)  # OCSP GET and POST matched flat too (facades/ocsp/flat.py)
    documented = {  # facade -> (its mounted apps, title, description)
        "apic": ((apic,), TITLE, DESCRIPTION),
        "ccm": (tuple(ccm_apps.values()), ccm.TITLE, ccm.DESCRIPTION),
        "notary": ((notary_app,), notary.TITLE, notary.DESCRIPTION),
        "barbican": (tuple(barbican_apps.values()), barbican.TITLE, barbican.DESCRIPTION),
        "audit": ((audit_app,), audit_facade.TITLE, audit_facade.DESCRIPTION),
        "iam": ((iam_app,), iam.TITLE, iam.DESCRIPTION),
        "gateway": ((gateway_app,), gateway_facade.TITLE, gateway_facade.DESCRIPTION),
        "pki": ((pki_app,), ocsp_facade.TITLE, ocsp_facade.DESCRIPTION),
    }
    app[OPENAPI_DOCS] = OpenApiDocs(
        {
            name: partial(build_openapi, *apps, title=title, version=__version__, description=description)
            for name, (apps, title, description) in documented.items()
        }
    )
    return app
