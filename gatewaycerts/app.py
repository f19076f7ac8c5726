"""Composition root: the only module that picks implementations (store, key source, KEKs)."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web

from gatewaycerts import __version__
from gatewaycerts.appkeys import CERTIFICATE_SERVICE, CERTIFICATE_STORE, OPENAPI_DOCS, SETTINGS, TOKEN_VERIFIER
from gatewaycerts.auth.tokens import (
    JwksKeySource,
    KeySource,
    StaticKeySource,
    TokenVerifier,
    load_or_create_dev_key,
    load_public_key_file,
)
from gatewaycerts.core.certificates import CertificateService
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.facades.apic.app import DESCRIPTION, MOUNT, TITLE, create_apic_app
from gatewaycerts.keyvault import KeyVault, KeyVaultError, new_kek_line, parse_keks
from gatewaycerts.settings import Settings
from gatewaycerts.store.interfaces import CertificateStore
from gatewaycerts.web.errors import error_middleware
from gatewaycerts.web.health import healthz, readyz
from gatewaycerts.web.middleware import PlainDialect, request_id_middleware
from gatewaycerts.web.openapi import add_docs_routes, build_openapi

log = logging.getLogger("gatewaycerts")

DEV_KEK_FILE = "dev-kek"


def build_store(settings: Settings) -> CertificateStore:
    path = settings.sqlite_path
    if path is not None:
        from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore

        return SqliteCertificateStore(path)
    from pymongo import AsyncMongoClient
    from pymongo.uri_parser import parse_uri

    from gatewaycerts.store.mongo.certificates import MongoCertificateStore

    url = str(settings.database_url)
    database = parse_uri(url).get("database") or settings.mongodb_database
    client: AsyncMongoClient = AsyncMongoClient(
        url, tz_aware=True, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, appname="gatewaycerts"
    )
    return MongoCertificateStore(client, database)


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
        log.warning("no JWT key source configured: trusting the development key in %s", settings.state_dir)
        keys = StaticKeySource(load_or_create_dev_key(settings.state_dir).public_key())
    return TokenVerifier(
        keys, algorithms=settings.jwt_algorithms, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )


def create_app(
    settings: Settings,
    *,
    store: CertificateStore | None = None,
    clock: Clock = system_clock,
    verifier: TokenVerifier | None = None,
) -> web.Application:
    store = store or build_store(settings)
    vault = build_vault(settings)
    executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="pki")

    app = web.Application(
        middlewares=[request_id_middleware, error_middleware(PlainDialect())],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CERTIFICATE_STORE] = store
    app[TOKEN_VERIFIER] = verifier or build_verifier(settings)
    app[CERTIFICATE_SERVICE] = CertificateService(store, vault, executor=executor, clock=clock)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await store.ensure_schema()
        yield
        await store.close()
        executor.shutdown(wait=True)

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/healthz", healthz, allow_head=False)
    app.router.add_get("/readyz", readyz, allow_head=False)
    add_docs_routes(app)

    apic = create_apic_app(client_max_size=settings.max_body_bytes)
    app.add_subapp(MOUNT, apic)
    app[OPENAPI_DOCS] = {"apic": build_openapi(apic, title=TITLE, version=__version__, description=DESCRIPTION)}
    return app
