"""The `gatewaycerts` command: serve, token, init-db, rotate-kek, access-key, openapi, config-reference, sync (the
agent)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from collections.abc import Callable
from pathlib import Path

from gatewaycerts.domain.models import Role
from gatewaycerts.settings import Settings, SettingsError, parse_workers, render_reference

MAX_TOKEN_TTL = 30 * 24 * 3600
READY_FLAG = "--worker-ready-fd"  # how the supervisor tells a process it is a worker, and where to report
# After the workers' own drain and order-worker stop: time for their cleanup before they are killed.
SUPERVISOR_GRACE_SECONDS = 15


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as exc:
        raise SystemExit(f"gatewaycerts: configuration error: {exc}") from None


def _workers(value: str) -> int:
    try:
        return parse_workers(value, "--workers")
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _self_command() -> str:
    """How the user invoked us, so printed hints can be pasted as they are (e.g. .venv/bin/gatewaycerts)."""
    argv0 = sys.argv[0]
    if argv0.endswith("__main__.py"):
        return f"{Path(sys.executable).name} -m gatewaycerts"
    return argv0 if "/" in argv0 else "gatewaycerts"


def _announce(settings: Settings, port: int, workers: int = 1) -> None:
    scheme = "https" if settings.tls_cert_file else "http"
    url = f"{scheme}://{settings.host}:{port}"
    store = "SQLite " + str(settings.sqlite_path) if settings.sqlite_path else "MongoDB"
    processes = f", {workers} workers" if workers > 1 else ""
    print(f"gatewaycerts {url} (store: {store}{processes})", flush=True)
    if settings.uses_dev_jwt_key:
        me = _self_command()
        print(f"  get a token:  {me} token --project demo --role admin", flush=True)
        print(
            f'  try:          curl -H "X-Auth-Token: $({me} token --project demo)" {url}/v2/demo/apic/certificates',
            flush=True,
        )
    print(f"  console:      {url}/console/", flush=True)
    print(f"  API docs:     {url}/docs   health: {url}/healthz", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    worker = args.worker_ready_fd is not None
    if worker:
        # A worker of `serve --workers N` stops on the supervisor's SIGTERM only. Ctrl-C in a terminal reaches
        # the whole process group; the supervisor forwards it as SIGTERM, so a worker would get it twice.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    from gatewaycerts.app import create_app
    from gatewaycerts.keyvault import KeyVaultError
    from gatewaycerts.web.logs import configure_logging
    from gatewaycerts.web.server import ListenError, serve
    from gatewaycerts.web.workers import die_with_supervisor, ready_notifier

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    workers = settings.workers if args.workers is None else args.workers
    if not worker and workers > 1:
        return _serve_workers(settings, workers)
    if worker:
        die_with_supervisor()
        on_started = ready_notifier(args.worker_ready_fd)
    else:

        def on_started() -> None:
            _announce(settings, settings.port)

    try:
        ssl_context = _tls_context(settings)
        app = create_app(settings)
    except (KeyVaultError, SettingsError) as exc:
        raise SystemExit(f"gatewaycerts: {exc}") from None
    from gatewaycerts.appkeys import DELIVERY_SERVICE

    app[DELIVERY_SERVICE].freeze_loaded = True  # a serving process: see DeliveryService.freeze_loaded
    try:
        with asyncio.Runner(loop_factory=_loop_factory(settings.event_loop)) as runner:
            runner.run(
                serve(
                    app,
                    settings.host,
                    settings.port,
                    shutdown_timeout=settings.shutdown_timeout,
                    on_started=on_started,
                    reuse_port=worker,
                    ssl_context=ssl_context,
                    stop_signals=(signal.SIGTERM,) if worker else (signal.SIGTERM, signal.SIGINT),
                )
            )
    except ListenError as exc:
        raise SystemExit(f"gatewaycerts: {exc.strerror}") from None
    except KeyVaultError as exc:  # the start-up KEK check (core.kek_rotation.check_keks) refused
        raise SystemExit(f"gatewaycerts: {exc}") from None
    logging.getLogger("gatewaycerts").info("stopped")
    return 0


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS when GATEWAYCERTS_TLS_CERT_FILE/KEY_FILE are set (web/tls.py checks them; SettingsError if unusable)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    from gatewaycerts.web.tls import TLSConfigError, server_context

    try:
        return server_context(settings.tls_cert_file, settings.tls_key_file)
    except TLSConfigError as exc:
        raise SettingsError(str(exc)) from None


def _loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on: uvloop unless `asyncio` is asked for (or uvloop is missing and not asked for)."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("gatewaycerts: GATEWAYCERTS_EVENT_LOOP=uvloop, but uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def _serve_workers(settings: Settings, workers: int) -> int:
    """The supervisor of `serve --workers N`: what must exist once is made here, before any worker starts."""
    from gatewaycerts.app import WORKER_STOP_SECONDS, build_vault, build_verifier
    from gatewaycerts.domain.errors import StoreUnavailableError
    from gatewaycerts.keyvault import KeyVaultError
    from gatewaycerts.web.server import ListenError
    from gatewaycerts.web.workers import Supervisor, check_port_free

    try:
        port = check_port_free(settings.host, settings.port)
        _tls_context(settings)  # the workers load it too: refuse here, once, with the reason
        # Validates the keys as every worker will, and creates the development JWT key and KEK: N workers
        # creating them at once would race on O_EXCL (and could each end up with a different key).
        build_vault(settings)
        build_verifier(settings)
        asyncio.run(_ensure_schemas(settings))
    except ListenError as exc:
        raise SystemExit(f"gatewaycerts: {exc.strerror}") from None
    except (KeyVaultError, SettingsError, StoreUnavailableError) as exc:
        raise SystemExit(f"gatewaycerts: {exc}") from None
    supervisor = Supervisor(
        argv=[sys.executable, "-m", "gatewaycerts", "serve"],
        ready_flag=READY_FLAG,
        # the workers bind the port checked above (the one the OS chose, if GATEWAYCERTS_PORT is 0)
        env={**os.environ, "GATEWAYCERTS_PORT": str(port)},
        count=workers,
        stop_timeout=settings.shutdown_timeout + WORKER_STOP_SECONDS + SUPERVISOR_GRACE_SECONDS,
        on_ready=lambda: _announce(settings, port, workers),
        metrics_dir=settings.metrics_enabled,
    )
    code = supervisor.run()
    logging.getLogger("gatewaycerts").info("stopped")
    return code


async def _ensure_schemas(settings: Settings) -> None:
    from gatewaycerts.app import build_delivery_stores, build_stores

    stores = build_stores(settings)
    try:
        for store in stores:
            await store.ensure_schema()
        for store in build_delivery_stores(stores.certificates):  # after the certificates (SQLite triggers)
            await store.ensure_schema()
            await store.close()
    finally:
        # the certificate store owns a shared MongoDB client: close it last
        for store in reversed(stores):
            await store.close()


def cmd_token(args: argparse.Namespace) -> int:
    from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token

    settings = _settings()
    if not 1 <= args.ttl <= MAX_TOKEN_TTL:
        raise SystemExit(f"gatewaycerts: --ttl must be between 1 and {MAX_TOKEN_TTL} seconds")
    roles = args.role or [Role.ADMIN.value]
    gateway = Role.GATEWAY.value in roles
    if gateway and (len(set(roles)) > 1 or len(args.project) != 1 or not args.instance):
        raise SystemExit("gatewaycerts: --role gateway takes one --project, at least one --instance and no other role")
    if args.instance and not gateway:
        raise SystemExit("gatewaycerts: --instance is only for --role gateway")
    key = load_or_create_dev_key(settings.state_dir)
    print(
        mint_token(
            key,
            subject=args.subject if not gateway or args.subject != "dev-user" else "dev-gateway",
            projects=args.project,
            roles=roles,
            ttl=args.ttl,
            issuer=settings.jwt_issuer or None,
            audience=settings.jwt_audience,
            instances=args.instance,
        )
    )
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    asyncio.run(_ensure_schemas(_settings()))
    print("indexes ensured")
    return 0


EXIT_REMAINING = 1  # rotate-kek: records are left under an old KEK (run again; see the summary)
EXIT_ERROR = 2  # rotate-kek: could not run (configuration, KEK check, store unavailable)


def cmd_rotate_kek(args: argparse.Namespace) -> int:
    from gatewaycerts.app import (
        build_acme_client_store,
        build_acme_store,
        build_notification_store,
        build_stores,
        build_vault,
    )
    from gatewaycerts.core.kek_rotation import EnvelopeStores, KekRotation, KindReport, RotationReport, check_keks
    from gatewaycerts.domain.errors import StoreUnavailableError
    from gatewaycerts.keyvault import KeyVaultError
    from gatewaycerts.web.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise SystemExit("gatewaycerts: --batch-size and --limit must be at least 1")

    def fail(message: str) -> int:
        print(f"gatewaycerts: {message}", file=sys.stderr)
        return EXIT_ERROR

    try:
        vault = build_vault(settings)
    except (KeyVaultError, SettingsError) as exc:
        return fail(str(exc))

    def progress(report: KindReport) -> None:
        print(
            f"  {report.kind.value}: {report.rewrapped} re-wrapped, {report.changed} changed meanwhile, "
            f"{report.gone} deleted meanwhile, {report.failed} failed",
            flush=True,
        )

    async def run() -> RotationReport:
        stores = build_stores(settings)
        try:
            for store in stores:
                await store.ensure_schema()
            notifications = build_notification_store(stores.certificates)  # webhook secrets, same database
            await notifications.ensure_schema()
            acme_client = build_acme_client_store(stores.certificates)  # ACME client secrets, same database
            await acme_client.ensure_schema()
            acme = build_acme_store(stores.certificates)  # the ACME server's EAB keys, same database
            await acme.ensure_schema()
            envelope_stores = EnvelopeStores(
                stores.certificates, stores.pca, stores.orders, stores.access_keys, notifications, acme_client, acme
            )
            # The same check as `serve`: every KEK id in use is configured with the right bytes, and the
            # active KEK is the one the other replicas use (else this would re-wrap everything under it).
            await check_keks(envelope_stores, vault, record_canary=not args.dry_run)
            rotation = KekRotation(envelope_stores, vault, batch_size=args.batch_size, on_batch=progress)
            return await rotation.run(dry_run=args.dry_run, limit=args.limit)
        finally:
            for store in reversed(stores):  # the certificate store owns a shared MongoDB client: close it last
                await store.close()

    verb = "counting" if args.dry_run else "re-wrapping"
    print(f"{verb} stored keys not under the active KEK {vault.active_kek_id!r}", flush=True)
    try:
        report = asyncio.run(run())
    except KeyboardInterrupt:
        print("gatewaycerts: interrupted; run rotate-kek again to continue", file=sys.stderr)
        return 130
    except KeyVaultError as exc:
        return fail(str(exc))
    except StoreUnavailableError as exc:
        return fail(f"{exc}; nothing is lost: run rotate-kek again to continue")
    except Exception as exc:  # one clear line instead of a traceback; the details at DEBUG
        logging.getLogger("gatewaycerts").debug("rotate-kek failed", exc_info=True)
        return fail(
            f"rotate-kek stopped by an unexpected error ({type(exc).__name__}: {str(exc)[:300]}); "
            "nothing is lost: run rotate-kek again to continue"
        )
    print("kind                 re-wrapped  changed  deleted  failed  remaining")
    for kind_report in report.kinds.values():
        left = ", ".join(f"{k}: {n}" for k, n in sorted(kind_report.remaining_by_kek.items()))
        print(
            f"{kind_report.kind.value:<20} {kind_report.rewrapped:>10} {kind_report.changed:>8} "
            f"{kind_report.gone:>8} {kind_report.failed:>7} {kind_report.remaining:>10}"
            + (f"  (KEK {left})" if left else "")
        )
    if report.done:
        print(f"done: every stored key is wrapped by {vault.active_kek_id!r}; older KEKs may be removed")
        return 0
    if args.dry_run:
        print(f"{report.remaining} stored keys are not under {vault.active_kek_id!r} yet (dry run: nothing changed)")
    elif report.stopped_at_limit:
        print(f"stopped after --limit {args.limit}: run rotate-kek again to continue")
    elif failed := sum(k.failed for k in report.kinds.values()):
        print(f"not finished: {failed} stored keys do not decrypt (their ids are in the log); keep the old KEKs")
    else:
        print("not finished: keys remain under an old KEK (changed meanwhile); run rotate-kek again")
    return EXIT_REMAINING


def cmd_access_key_create(args: argparse.Namespace) -> int:
    """An operator creates a project's first access key (later ones: the IAM API, with an admin's key or token)."""
    from gatewaycerts.app import build_stores, build_vault
    from gatewaycerts.core.access_keys import AccessKeyService
    from gatewaycerts.core.audit import AuditLog
    from gatewaycerts.core.kek_rotation import EnvelopeStores, check_keks
    from gatewaycerts.domain.errors import DomainError
    from gatewaycerts.domain.models import Principal
    from gatewaycerts.keyvault import KeyVaultError

    settings = _settings()
    operator = Principal(subject="system:cli", projects=frozenset({args.project}), roles=frozenset({Role.ADMIN}))

    async def run() -> tuple[str, str]:
        stores = build_stores(settings)
        try:
            for store in stores:
                await store.ensure_schema()
            vault = build_vault(settings)
            # As `serve` would: never wrap a secret under a KEK the other replicas do not share.
            await check_keks(EnvelopeStores(stores.certificates, stores.pca, stores.orders, stores.access_keys), vault)
            service = AccessKeyService(stores.access_keys, vault, audit=AuditLog(stores.audit))
            key, secret = await service.create(operator, args.project, args.role, args.description)
            return key.access, secret
        finally:
            for store in reversed(stores):  # the certificate store owns a shared MongoDB client: close it last
                await store.close()

    try:
        access, secret = asyncio.run(run())
    except (DomainError, KeyVaultError, SettingsError) as exc:
        raise SystemExit(f"gatewaycerts: {exc}") from None
    print(f"access: {access}")
    print(f"secret: {secret}")
    print("the secret is shown only now; store it (e.g. BasicCredentials(ak, sk, project_id))", file=sys.stderr)
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    import tempfile

    from gatewaycerts.app import create_app
    from gatewaycerts.appkeys import OPENAPI_DOCS

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(state_dir=Path(tmp)))
        docs = app[OPENAPI_DOCS]
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in docs.items():
        (out / f"openapi-{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        print(out / f"openapi-{name}.json")
    return 0


def cmd_config_reference(args: argparse.Namespace) -> int:
    sys.stdout.write(render_reference())
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["sync"]:  # the agent beside a gateway: its own parser (one-line errors, exit 2)
        from gatewaycerts.agent.sync import main as sync_main

        return sync_main(argv[1:])
    parser = argparse.ArgumentParser(prog="gatewaycerts", description="Certificate management for API gateways")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="server processes on the one port (default GATEWAYCERTS_WORKERS, 1); 0 or auto: one per CPU",
    )
    serve.add_argument(READY_FLAG, type=int, dest="worker_ready_fd", help=argparse.SUPPRESS)  # supervisor's own
    serve.set_defaults(func=cmd_serve)
    token = sub.add_parser("token", help="print a JWT signed with the development key")
    token.add_argument("--project", action="append", required=True, help="project id (repeatable)")
    token.add_argument(
        "--role", action="append", choices=[r.value for r in Role], help="role (repeatable; default admin)"
    )
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.add_argument("--subject", default="dev-user", help="the sub claim")
    token.add_argument(
        "--instance", action="append", help="gateway instance the token may read (repeatable; --role gateway only)"
    )
    token.set_defaults(func=cmd_token)
    sub.add_parser("init-db", help="create store indexes").set_defaults(func=cmd_init_db)
    rotate = sub.add_parser(
        "rotate-kek",
        help="re-wrap every stored key under the newest (last configured) key-encryption key",
        description="Re-wraps every stored key under the last configured KEK, while the service serves. "
        "Resumable: run it again after an interruption. Exit 0 only when no key is left under an older KEK.",
    )
    rotate.add_argument("--batch-size", type=int, default=100, help="records read per query (default 100)")
    rotate.add_argument("--dry-run", action="store_true", help="only count what is not under the newest KEK")
    rotate.add_argument("--limit", type=int, help="stop after this many records (the next run continues)")
    rotate.set_defaults(func=cmd_rotate_kek)
    access_key = sub.add_parser("access-key", help="manage access keys (AK/SK) for SDK-HMAC-SHA256 signing")
    access_key_sub = access_key.add_subparsers(dest="access_key_command", required=True)
    ak_create = access_key_sub.add_parser("create", help="create an access key and print its access id and secret")
    ak_create.add_argument("--project", required=True, help="the project the key acts in")
    ak_create.add_argument("--role", required=True, choices=["admin", "editor", "viewer"], help="what the key may do")
    ak_create.add_argument("--description", help="at most 255 characters")
    ak_create.set_defaults(func=cmd_access_key_create)
    openapi = sub.add_parser("openapi", help="write the OpenAPI documents")
    openapi.add_argument("--output", default="schemas")
    openapi.set_defaults(func=cmd_openapi)
    sub.add_parser("sync", help="keep NGINX/HAProxy certificate files in step with the service (sync --help)")
    sub.add_parser("config-reference", help="print the configuration table").set_defaults(func=cmd_config_reference)
    args = parser.parse_args(argv)
    return int(args.func(args))
