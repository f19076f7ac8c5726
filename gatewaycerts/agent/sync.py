"""`gatewaycerts sync`: long-poll the delivery snapshot, write the gateway's files, run `--on-change`.

A plain blocking loop in one process (it is its own process beside the gateway): urllib for HTTP, one
request at a time. The credential is read from its file on every request (so a rotated key is picked up) and
travels only in the Authorization header; it never appears in a log line.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import shlex
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import NoReturn

from gatewaycerts.agent.bundle import Bundle, BundleError, parse_bundle
from gatewaycerts.agent.files import apply_layout, prepare_directory, read_manifest, write_atomic
from gatewaycerts.agent.layout import HAPROXY_CRT_LIST, NGINX_INCLUDE, Layout, haproxy_layout, nginx_layout

log = logging.getLogger("gatewaycerts.sync")

KEY_ENV = "GATEWAYCERTS_GATEWAY_KEY"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FIRST_BACKOFF = 1.0
ON_CHANGE_TIMEOUT = 120.0
RELOAD_PENDING = ".gatewaycerts-sync.reload-pending"  # files changed, --on-change not yet done
MIN_POLL_SECONDS = 1.0
STALE_HEADER = (
    "X-Gateway-Stale-Seconds"  # docs/api/gateway.md  # the fastest the agent asks again after an immediate 304
)
# Characters that would need quoting in an nginx include or a crt-list line: refused in paths we write there.
_UNSAFE_PATH = re.compile(r"[\s\"';{}#\[\]\\$]")
_LISTEN = re.compile(r"(?:(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):)?[0-9]{1,5}")


class UsageError(Exception):
    """A bad argument: one line, exit 2."""


class FetchError(Exception):
    """The service could not be reached or did not answer a usable snapshot; the message is safe to log."""


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass(frozen=True)
class Options:
    bundle_url: str
    directory: Path
    format: str
    credential: Callable[[], str]
    on_change: list[str] | None
    wait: int
    once: bool
    max_backoff: float
    nginx_listen: list[str]
    nginx_server_include: str | None
    ssl_context: ssl.SSLContext | None


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog="gatewaycerts sync",
        description="Keep a directory of NGINX or HAProxy certificate files in step with the delivery snapshot "
        "of one gateway instance; run a command after each change (docs/gateways.md).",
    )
    parser.add_argument("--url", required=True, help="http(s)://HOST:PORT/gateway/v1/PROJECT/instances/INSTANCE")
    parser.add_argument("--dir", required=True, help="directory the gateway reads (created 0700 if missing)")
    parser.add_argument("--format", required=True, choices=["nginx", "haproxy"])
    creds = parser.add_mutually_exclusive_group()
    creds.add_argument("--key-file", help=f"file holding a gateway key gk_... (else env {KEY_ENV})")
    creds.add_argument("--token-file", help="file holding a gateway JWT")
    parser.add_argument("--on-change", help="command run after files changed (split like a shell, no shell)")
    parser.add_argument("--wait", type=int, default=55, help="long-poll seconds, 1..60 (default 55)")
    parser.add_argument("--once", action="store_true", help="fetch once, write, run --on-change if changed, exit")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="longest pause between retries (s)")
    parser.add_argument("--ca-file", help="CA certificates to verify an https --url (default: the system's)")
    parser.add_argument(
        "--nginx-listen",
        action="append",
        help="listen address of the generated servers, [HOST:]PORT (repeatable; default 8443)",
    )
    parser.add_argument("--nginx-server-include", help="file included in every generated server block")
    return parser


def _usage(message: str) -> NoReturn:
    raise UsageError(message)


def _file_reader(path: str, what: str) -> Callable[[], str]:
    def read() -> str:
        try:
            text = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise FetchError(f"cannot read the {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None
        if not text or any(c.isspace() for c in text):
            raise FetchError(f"the {what} {path} is empty or not one line")
        return text

    try:
        read()
    except FetchError as exc:
        _usage(str(exc))
    return read


def parse_options(argv: Sequence[str], environ: dict[str, str] | None = None) -> Options:
    environ = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    url = urllib.parse.urlsplit(args.url)
    if url.scheme not in ("http", "https") or not url.hostname:
        _usage("--url must be an http:// or https:// URL of .../gateway/v1/PROJECT/instances/INSTANCE")
    if url.query or url.fragment or url.username or url.password:
        _usage("--url must carry no query, fragment or credentials (give the key with --key-file or the env)")
    path = url.path.rstrip("/")
    if not path.endswith("/bundle"):
        path += "/bundle"
    bundle_url = urllib.parse.urlunsplit((url.scheme, url.netloc, path, "", ""))
    if not 1 <= args.wait <= 60:
        _usage("--wait must be between 1 and 60 seconds")
    if not 1 <= args.max_backoff <= 3600:
        _usage("--max-backoff must be between 1 and 3600 seconds")
    directory = Path(args.dir).absolute()
    if _UNSAFE_PATH.search(str(directory)):
        _usage("--dir must be a path without spaces, quotes or any of ; { } # [ ] \\ $")
    if directory.exists() and not directory.is_dir():
        _usage(f"--dir {directory} exists and is not a directory")
    if args.key_file:
        credential = _file_reader(args.key_file, "key file")
    elif args.token_file:
        credential = _file_reader(args.token_file, "token file")
    elif environ.get(KEY_ENV, "").strip():
        key = environ[KEY_ENV].strip()
        credential = lambda: key  # noqa: E731
    else:
        _usage(f"give a credential: --key-file, --token-file or the environment variable {KEY_ENV}")
    on_change = None
    if args.on_change is not None:
        try:
            on_change = shlex.split(args.on_change)
        except ValueError as exc:
            _usage(f"--on-change cannot be split: {exc}")
        if not on_change:
            _usage("--on-change is empty")
    listen = args.nginx_listen or ["8443"]
    for address in listen:
        if not _LISTEN.fullmatch(address) or not 1 <= int(address.rsplit(":", 1)[-1]) <= 65535:
            _usage(f"--nginx-listen {address!r} is not [HOST:]PORT")
    include = args.nginx_server_include
    if include:  # NGINX would read a relative path against its own prefix, not our working directory
        include = str(Path(include).absolute())
    if include is not None and (not include or _UNSAFE_PATH.search(include)):
        _usage("--nginx-server-include must be a path without spaces, quotes or any of ; { } # [ ] \\ $")
    context = None
    if url.scheme == "https":
        try:
            context = ssl.create_default_context(cafile=args.ca_file)
        except (OSError, ssl.SSLError) as exc:
            _usage(f"--ca-file {args.ca_file}: {getattr(exc, 'strerror', None) or exc}")
    elif args.ca_file:
        _usage("--ca-file is for an https --url")
    return Options(
        bundle_url=bundle_url,
        directory=directory,
        format=args.format,
        credential=credential,
        on_change=on_change,
        wait=args.wait,
        once=args.once,
        max_backoff=args.max_backoff,
        nginx_listen=listen,
        nginx_server_include=include,
        ssl_context=context,
    )


def _error_summary(raw: bytes) -> str:
    try:
        document = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(document, dict):
        return ""
    parts = [str(document.get(k))[:200] for k in ("error_code", "error_msg") if document.get(k)]
    return " ".join(parts)


def _note_staleness(headers: object) -> None:
    """The service answers from memory while its store is down, and says how old that state is."""
    stale = getattr(headers, "get", lambda _: None)(STALE_HEADER)
    if stale:
        log.warning("the service answers from a state %s s old (its store is unreachable)", str(stale)[:20])


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would carry the Authorization header to wherever it points: answer it as an error instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def fetch(options: Options, etag: str | None) -> tuple[Bundle, str] | None:
    """One GET of the snapshot: (bundle, etag), or None on 304. Raises FetchError with a loggable message."""
    credential = options.credential()
    url = options.bundle_url + (f"?wait={options.wait}" if etag else "")
    headers = {"Authorization": f"Bearer {credential}", "Accept": "application/json", "User-Agent": "gatewaycerts-sync"}
    if etag:
        headers["If-None-Match"] = etag
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) only, checked by parse_options
    timeout = (options.wait if etag else 0) + 30
    opener = urllib.request.build_opener(_RefuseRedirects(), urllib.request.HTTPSHandler(context=options.ssl_context))
    try:
        with opener.open(request, timeout=timeout) as response:
            raw = response.read()
            new_etag = response.headers.get("ETag")
            _note_staleness(response.headers)
    except urllib.error.HTTPError as err:
        if err.code == 304:
            _note_staleness(err.headers)
            return None
        body = err.read(4096)
        detail = _error_summary(body)
        message = f"HTTP {err.code}" + (f" {detail}" if detail else "")
        raise FetchError(message.replace(credential, "REDACTED")) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise FetchError(f"cannot reach {options.bundle_url}: {reason}") from None
    try:
        bundle = parse_bundle(json.loads(raw))
    except ValueError as exc:  # BundleError is a ValueError; so is bad JSON
        what = str(exc) if isinstance(exc, BundleError) else "the answer is not JSON"
        raise FetchError(f"unusable snapshot: {what}") from None
    return bundle, new_etag or f'"{bundle.version}"'


def build_layout(options: Options, bundle: Bundle) -> tuple[Layout, set[str]]:
    directory = PurePosixPath(options.directory)
    if options.format == "nginx":
        return nginx_layout(bundle, directory, options.nginx_listen, options.nginx_server_include), {NGINX_INCLUDE}
    return haproxy_layout(bundle, directory), {HAPROXY_CRT_LIST}


def run_on_change(command: list[str]) -> bool:
    try:
        done = subprocess.run(  # noqa: S603 - the operator's own command, split without a shell
            command, capture_output=True, text=True, timeout=ON_CHANGE_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.error("on-change command %s failed: %s", command[0], getattr(exc, "strerror", None) or exc)
        return False
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        log.error(
            "on-change command %s exited %d%s", command[0], done.returncode, f": {tail[-1][:300]}" if tail else ""
        )
        return False
    log.info("on-change command %s done", command[0])
    return True


class Agent:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.stop = threading.Event()
        self.fetching = False
        # A reload owed from an earlier run (stopped or failed after writing files) is owed still.
        self.pending_marker = options.directory / RELOAD_PENDING
        self.reload_pending = options.on_change is not None and self.pending_marker.exists()

    def sync_once(self, etag: str | None) -> str | None:
        """Fetch; on a new snapshot write the files and run --on-change. Returns the ETag to send next."""
        self.fetching = True
        try:
            result = fetch(self.options, etag)
        finally:
            self.fetching = False
        if result is not None:
            bundle, etag = result
            layout, index_files = build_layout(self.options, bundle)
            directory = self.options.directory
            prepare_directory(directory)
            applied = apply_layout(
                directory, layout, version=bundle.version, last_files=read_manifest(directory), index_files=index_files
            )
            if applied.changed:
                log.info(
                    "snapshot %s: %d certificates; %d files written, %d removed",
                    bundle.version,
                    len(bundle.items),
                    len(applied.written),
                    len(applied.removed),
                )
                if self.options.on_change is not None:
                    write_atomic(self.pending_marker, b"", 0o600)
                    self.reload_pending = True
        if self.reload_pending and self.options.on_change:
            self.reload_pending = not run_on_change(self.options.on_change)
            if not self.reload_pending:
                self.pending_marker.unlink(missing_ok=True)
        return etag

    def backoff(self, failures: int) -> float:
        ceiling = min(self.options.max_backoff, FIRST_BACKOFF * 2 ** min(failures - 1, 30))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret

    def run(self) -> int:
        if self.options.once:
            try:
                self.sync_once(None)
            except FetchError as exc:
                log.error("sync failed: %s; the files in %s are unchanged", exc, self.options.directory)
                return EXIT_FAILED
            except OSError as exc:
                log.error("sync failed: %s", _describe(exc))
                return EXIT_FAILED
            return EXIT_FAILED if self.reload_pending else EXIT_OK
        log.info(
            "syncing %s into %s (%s)%s",
            self.options.bundle_url,
            self.options.directory,
            self.options.format,
            f", on change: {self.options.on_change[0]}" if self.options.on_change else "",
        )
        etag: str | None = None
        failures = reload_failures = 0
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                sent = etag
                etag = self.sync_once(etag)
            except (FetchError, OSError) as exc:
                failures += 1
                delay = self.backoff(failures)
                log.error("sync failed: %s; keeping the last files, retry in %.1f s", _describe(exc), delay)
                self.stop.wait(delay)
                continue
            failures = 0
            if self.reload_pending:  # the gateway did not take the files yet: try again, backing off
                reload_failures += 1
                self.stop.wait(self.backoff(reload_failures))
                continue
            reload_failures = 0
            if etag == sent and time.monotonic() - started < MIN_POLL_SECONDS:
                # a 304 at once: something between us and the service does not hold the long poll
                self.stop.wait(MIN_POLL_SECONDS)
        return EXIT_OK


class _Stopped(BaseException):
    pass


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FetchError):
        return str(exc)
    return f"{getattr(exc, 'strerror', None) or exc} ({getattr(exc, 'filename', '') or type(exc).__name__})"


def main(argv: Sequence[str]) -> int:
    try:
        options = parse_options(argv)
    except UsageError as exc:
        print(f"gatewaycerts sync: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s gatewaycerts-sync %(levelname)s %(message)s", stream=sys.stderr
    )
    agent = Agent(options)

    def on_signal(signum: int, frame: object) -> None:
        agent.stop.set()
        if agent.fetching:  # a held long poll: give it up now (files are only written after it returns)
            raise _Stopped

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return agent.run()
    except _Stopped:
        return EXIT_OK
