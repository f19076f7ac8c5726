"""The `gatewaycerts` command: serve, token, init-db, openapi, config-reference."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
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
    url = f"http://{settings.host}:{port}"
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
        app = create_app(settings)
    except (KeyVaultError, SettingsError) as exc:
        raise SystemExit(f"gatewaycerts: {exc}") from None
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
                    stop_signals=(signal.SIGTERM,) if worker else (signal.SIGTERM, signal.SIGINT),
                )
            )
    except ListenError as exc:
        raise SystemExit(f"gatewaycerts: {exc.strerror}") from None
    logging.getLogger("gatewaycerts").info("stopped")
    return 0


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
    from gatewaycerts.app import build_stores

    stores = build_stores(settings)
    try:
        for store in stores:
            await store.ensure_schema()
    finally:
        # the certificate store owns a shared MongoDB client: close it last
        for store in reversed(stores):
            await store.close()


def cmd_token(args: argparse.Namespace) -> int:
    from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token

    settings = _settings()
    if not 1 <= args.ttl <= MAX_TOKEN_TTL:
        raise SystemExit(f"gatewaycerts: --ttl must be between 1 and {MAX_TOKEN_TTL} seconds")
    key = load_or_create_dev_key(settings.state_dir)
    print(
        mint_token(
            key,
            subject=args.subject,
            projects=args.project,
            roles=args.role or [Role.ADMIN.value],
            ttl=args.ttl,
            issuer=settings.jwt_issuer or None,
            audience=settings.jwt_audience,
        )
    )
    return 0


def cmd_init_db(args: argparse.Namespace) -> int:
    asyncio.run(_ensure_schemas(_settings()))
    print("indexes ensured")
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
    token.set_defaults(func=cmd_token)
    sub.add_parser("init-db", help="create store indexes").set_defaults(func=cmd_init_db)
    openapi = sub.add_parser("openapi", help="write the OpenAPI documents")
    openapi.add_argument("--output", default="schemas")
    openapi.set_defaults(func=cmd_openapi)
    sub.add_parser("config-reference", help="print the configuration table").set_defaults(func=cmd_config_reference)
    args = parser.parse_args(argv)
    return int(args.func(args))
