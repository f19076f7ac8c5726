"""CPU per request of the hot read routes, in process, without sockets: the real app (SQLite, JSON access log
at INFO to a file, metrics on) and a bare aiohttp handler returning the same bytes, each driven through
aiohttp's own HTTP protocol on a fake transport, interleaved in rounds on one uvloop event loop.

What it leaves out is the socket (the kernel's send and receive, the same for both sides); what remains is the
Python work per request that the floor targets are about. It also counts the transport writes per response
(one `write`/`writelines` call is one `send` on a real socket). Nothing asserts; for before/after comparisons
of one change run it on both checkouts one after the other, or `--rounds` more.

    .venv/bin/python bench/inproc.py --requests 4000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bench.pem_scan import pem_scan
from gatewaycerts.app import create_app
from gatewaycerts.appkeys import CERTIFICATE_SERVICE
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.facades.apic import presenters
from gatewaycerts.facades.apic import views as apic_views
from gatewaycerts.facades.ocsp.flat import FLAT_OCSP_ROUTES
from gatewaycerts.settings import Settings
from gatewaycerts.web import logs
from gatewaycerts.web.hot import HOT_ROUTES
from gatewaycerts.web.lane import LANE
from gatewaycerts.web.logs import configure_logging
from tests.factories import CertSpec, ec_chain, ec_key, issue

BENCH = str(Path(__file__).resolve().parent)
ECDSA = "403,503,603,807,808,804,805,806,401,501,601"


class FakeTransport:
    """Collects what the protocol writes; `done` once a whole response (by Content-Length) is in."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.writes = 0
        self.closing = False

        self.waiter: asyncio.Future[None] | None = None

    def _wrote(self) -> None:
        if self.waiter is not None and not self.waiter.done() and self.response_done():
            self.waiter.set_result(None)

    def write(self, data: Any) -> None:
        self.writes += 1
        self.buf += data
        self._wrote()

    def writelines(self, parts: Any) -> None:
        self.writes += 1
        for p in parts:
            self.buf += p
        self._wrote()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, *a: Any, **k: Any) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def response_done(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        head = bytes(self.buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return len(self.buf) >= end + 4 + length


class Driver:
    def __init__(self, factory: Any) -> None:
        self.transport = FakeTransport()
        self.proto = factory()
        self.proto.connection_made(self.transport)

    async def one(self, raw: bytes) -> bytes:
        t = self.transport
        t.buf.clear()
        t.waiter = asyncio.get_running_loop().create_future()
        self.proto.data_received(raw)
        await t.waiter
        return bytes(t.buf)

    async def run(self, raws: list[bytes], n: int) -> tuple[float, float]:
        """CPU µs per request, transport writes per response."""
        w0 = self.transport.writes
        c0 = time.process_time()
        for i in range(n):
            await self.one(raws[i % len(raws)])
        return (time.process_time() - c0) * 1e6 / n, (self.transport.writes - w0) / n


def _access_log_direct(app: web.Application, on: bool) -> None:
    if on:
        logs._json_handler[0] = _saved[0]
    else:
        _saved[0], logs._json_handler[0] = logs._json_handler[0], None


_saved: list[Any] = [None]


def _hot_routes(app: web.Application, on: bool) -> None:
    """Off: aiohttp's own dispatch of the hot routes (since stop 28 the lane's match, web/lane.py, is theirs)."""
    _lane(app, on)
    hot_routes = app[HOT_ROUTES]
    flat = app[FLAT_OCSP_ROUTES]
    flat.original = hot_routes.original  # type: ignore[method-assign]


def _access_buffer(app: web.Application, on: bool) -> None:
    handler = logs._json_handler[0]
    assert isinstance(handler, logs.JsonStreamHandler)
    handler.flush_seconds = logs.ACCESS_FLUSH_SECONDS if on else 0.0


def _access_line(app: web.Application, on: bool) -> None:
    if on:
        logs.AccessLog._line = _saved_line[0]  # type: ignore[method-assign]
    else:  # (log() calls _line, which adds the terminator, since the branch `chain`)
        _saved_line[0] = logs.AccessLog._line
        logs.AccessLog._line = lambda self, *a: logs._ENCODER.encode(self.entry(*a[:-1])) + a[-1]  # type: ignore[method-assign]
    _deferred_via_line(on)  # since stop 31 `_line` is on the request's path only with the deferral off


_saved_line: list[Any] = [None]


def _root_app(app: web.Application, on: bool) -> None:
    """Off: the gateway facade's services looked up through `request.config_dict` again, as before."""
    from gatewaycerts.facades.gateway import app as gateway_app
    from gatewaycerts.facades.gateway import views

    original = _saved_root_app.setdefault("root_app", views.root_app)
    for module in (gateway_app, views):
        module.root_app = original if on else (lambda request: request.config_dict)  # type: ignore[attr-defined]


_saved_root_app: dict[str, Any] = {}
_show_saved: list[Any] = []


def _show_memos(app: web.Application, on: bool) -> None:
    """Off: the show reads the whole record (store get: summary, heavy JSON, key envelope) and presents it
    anew each time (cert_detail, orjson, strftime per date), as before the branch `show`."""
    service = app[CERTIFICATE_SERVICE]
    if on:
        del service.get_summary
        apic_views._SHOWN, presenters.iso = _show_saved
    else:
        _show_saved[:] = [apic_views._SHOWN, presenters.iso]
        service.get_summary = service.get
        apic_views._SHOWN = lambda c: presenters.orjson.dumps(presenters.cert_detail(c))
        presenters.iso = lambda value: value.strftime(presenters._ISO)


# Changes that can be switched off in the running app, so that one run measures with and without each
# (`--without NAME`, interleaved with the rounds).
TOGGLES = {
    "access-log": _access_log_direct,
    "hot-routes": _hot_routes,
    "access-buffer": _access_buffer,
    "access-line": _access_line,
    "root-app": _root_app,
}


def _stop27(app: web.Application, on: bool) -> None:
    """Every change of stop 27's floor branch at once (the access buffer, the composed access line, the
    root-app look-ups)."""
    for name in ("access-buffer", "access-line", "root-app"):
        TOGGLES[name](app, on)


TOGGLES["stop27"] = _stop27
TOGGLES["show-memos"] = _show_memos


# --- Stop 29: delivery (the Caddy answer and the snapshot's 304) -----------------------------------------
_delivery_saved: dict[str, Any] = {}


def _gateway_headers(app: web.Application, on: bool) -> None:
    """Off: the Caddy answer's and the 304's headers built per request (a dict, `content_type=`), the
    If-None-Match parsed per request, the empty query string parsed for `wait`, as before stop 29."""
    from gatewaycerts.facades.gateway import views

    names = ("_caddy_response", "_versioned", "_if_none_match", "_wait")
    if on:
        for name in names:
            setattr(views, name, _delivery_saved[name])
        return
    for name in names:
        _delivery_saved.setdefault(name, getattr(views, name))

    def caddy_response(pem: bytes, stale: int) -> web.Response:
        return web.Response(body=pem, content_type="text/plain", headers=views._headers(stale))

    def if_none_match(request: web.Request) -> str | None:
        raw = request.headers.get("If-None-Match")
        if not raw:
            return None
        return views._etag_of(raw)

    def wait(request: web.Request) -> float:
        raw = views._param(request.query, "wait")
        if raw is None or raw == "":
            return 0.0
        return float(raw)

    views._caddy_response, views._versioned = caddy_response, views._headers  # type: ignore[assignment]
    views._if_none_match, views._wait = if_none_match, wait  # type: ignore[assignment]


def _key_remembered(app: web.Application, on: bool) -> None:
    """Off: a gateway key verified before is answered by `authenticate`'s coroutine, as before stop 29."""
    from gatewaycerts.appkeys import GATEWAY_KEY_SERVICE

    keys = app[GATEWAY_KEY_SERVICE]
    if on:
        del keys.remembered, keys.authenticate
        return
    remembered, authenticate = type(keys).remembered, type(keys).authenticate

    async def before(credential: str) -> Any:
        known = remembered(keys, credential)
        if known is not None:
            return known
        return await authenticate(keys, credential)

    keys.remembered = lambda credential: None
    keys.authenticate = before


def _line_timer(app: web.Application, on: bool) -> None:
    """Off: every buffered access line asks for the running loop (a getpid() system call on Python 3.11), as
    before stop 29."""
    cls = logs.JsonStreamHandler
    if on:
        cls.write_line = _delivery_saved["write_line"]  # type: ignore[method-assign]
        return
    _delivery_saved.setdefault("write_line", cls.write_line)

    def write_line(self: Any, line: str) -> None:
        with self.lock:
            if self.flush_seconds <= 0:
                self._write_pending()
                self.stream.write(line)
                self.stream.flush()
                return
            self._pending.append(line)
            self._pending_chars += len(line) if line.isascii() else 4 * len(line)
            if self._pending_chars >= self.max_chars:
                self._write_pending()
                return
            loop = asyncio._get_running_loop()
            if loop is None:
                self._write_pending()
            elif self._timer_loop is not loop:
                self._timer_loop = loop
                loop.call_later(self.flush_seconds, self._timer_fired)

    cls.write_line = write_line  # type: ignore[method-assign]


TOGGLES["line-timer"] = _line_timer
TOGGLES["gateway-headers"] = _gateway_headers
TOGGLES["key-remembered"] = _key_remembered


def _delivery(app: web.Application, on: bool) -> None:
    """Every change of stop 29's delivery branch at once."""
    for name in ("gateway-headers", "key-remembered", "line-timer"):
        TOGGLES[name](app, on)


TOGGLES["delivery"] = _delivery


def _direct(app: web.Application, on: bool) -> None:
    """Off: the hot answers (DirectResponse) prepared and written by aiohttp's own path, as before stop 30."""
    from gatewaycerts.web import direct

    direct._SUPPORTED = on and direct.supported()


TOGGLES["direct"] = _direct


# --- Stop 28: chain (the per-request middleware internals) -----------------------------------------------
_chain_saved: dict[str, Any] = {}


def _request_tallies(app: web.Application, on: bool) -> None:
    """Off: the request counter and latency histogram as prometheus_client's Counter and Histogram (three locked
    updates per request, on a registry of their own here), as before the branch `chain`."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from gatewaycerts.appkeys import METRICS
    from gatewaycerts.web import metrics as metrics_module
    from gatewaycerts.web.request_metrics import LATENCY, REQUESTS

    metrics = app[METRICS]
    if on:
        metrics._tallies = _chain_saved["tallies"]
        return
    if "requests" not in vars(metrics):
        registry = CollectorRegistry()
        metrics.requests = Counter(*REQUESTS, ["method", "route", "status"], registry=registry)
        buckets = metrics_module._LATENCY_BUCKETS
        metrics.latency = Histogram(*LATENCY, ["method", "route"], buckets=buckets, registry=registry)
    _chain_saved["tallies"], metrics._tallies = metrics._tallies, None


TOGGLES["request-tallies"] = _request_tallies


def _swap_middleware(app: web.Application, current: Any, replacement: Any) -> None:
    """Put `replacement` where `current` is in `app`'s middleware chain (aiohttp caches built chains: cleared)."""
    from aiohttp import web_app

    app._middlewares_handlers = tuple(  # type: ignore[misc]
        (replacement if m is current else m, new) for m, new in app._middlewares_handlers
    )
    web_app._cached_build_middleware.cache_clear()


def _old_request_middleware(metrics: Any, in_flight: Any, for_path: Any) -> Any:
    """The request middleware as it was before the branch `chain` (c814012), for `--without request-mw`."""
    from gatewaycerts.appkeys import REQUEST_ID
    from gatewaycerts.core.context import request_id_var
    from gatewaycerts.web import middleware as mw
    from gatewaycerts.web.errors import ERROR_DIALECT, error_response

    def dialect_of(request: web.Request) -> Any:
        apps = request.match_info.apps
        own = apps[-1].get(ERROR_DIALECT) if len(apps) > 1 else None
        if own is not None:
            return own
        return for_path(request.path)

    def new_request_id() -> str:
        return f"{mw._ID_PREFIX}{next(mw._ID_COUNTER):016x}"

    def enter() -> None:
        in_flight.count += 1

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        incoming = request.headers.get("X-Request-Id")
        request_id = incoming if incoming and mw._SAFE_ID.match(incoming) else new_request_id()
        request[REQUEST_ID] = request_id
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        enter()
        if metrics is not None:
            metrics.request_started()
        try:
            try:
                response = await handler(request)
            except Exception as exc:
                chosen = dialect_of(request)
                if chosen is None:
                    raise
                response = error_response(request, exc, chosen)
            status = response.status
            response.headers["X-Request-Id"] = request_id
            if in_flight.draining:
                response.force_close()
            return response
        except web.HTTPException as exc:
            status = exc.status
            exc.headers["X-Request-Id"] = request_id
            raise
        except asyncio.CancelledError:
            status = mw.CLIENT_CLOSED
            raise
        finally:
            in_flight.leave()
            seconds = time.perf_counter() - start
            route = mw.route_template(request)
            if metrics is not None:
                metrics.observe_request(request.method, route, status, seconds)
            path = request.path
            mw._access.log(
                logging.DEBUG if path in mw._QUIET_PATHS else logging.INFO,
                request.method,
                path,
                route,
                status,
                seconds,
            )
            request_id_var.reset(token)

    return middleware


def _request_mw(app: web.Application, on: bool) -> None:
    """Off: the request middleware as before the branch `chain` (calls for the id, enter, route template)."""
    from gatewaycerts.app import unmatched_path_dialect
    from gatewaycerts.appkeys import IN_FLIGHT, METRICS

    if "request-mw" not in _chain_saved:
        _chain_saved["request-mw"] = app._middlewares_handlers[0][0]
        _chain_saved["old-request-mw"] = _old_request_middleware(app[METRICS], app[IN_FLIGHT], unmatched_path_dialect)
    new, old = _chain_saved["request-mw"], _chain_saved["old-request-mw"]
    _swap_middleware(app, old if on else new, new if on else old)


def _apic_layer(app: web.Application, on: bool) -> None:
    """Off: the APIC sub-app has its own error middleware layer again (before the branch `chain`)."""
    from gatewaycerts.facades.apic.errors import ApicDialect
    from gatewaycerts.web.errors import ERROR_DIALECT, error_middleware

    apic = next(a for a in _sub_apps(app) if isinstance(a.get(ERROR_DIALECT), ApicDialect))
    if "apic-layer" not in _chain_saved:
        _chain_saved["apic-layer"] = apic._middlewares_handlers
    if on:
        apic._middlewares_handlers = _chain_saved["apic-layer"]
    else:
        apic._middlewares_handlers = ((error_middleware(ApicDialect()), True), *_chain_saved["apic-layer"])
    from aiohttp import web_app

    web_app._cached_build_middleware.cache_clear()


def _sub_apps(app: web.Application) -> list[web.Application]:
    from aiohttp.web_urldispatcher import PrefixedSubAppResource

    return [r._app for r in app.router.resources() if isinstance(r, PrefixedSubAppResource)]


def _auth_root(app: web.Application, on: bool) -> None:
    """Off: the token verifier looked up through `request.config_dict` (a ChainMapProxy per request) again."""
    from gatewaycerts.auth import middleware as auth_mw

    original = _chain_saved.setdefault("auth-root", auth_mw.root_app)
    auth_mw.root_app = original if on else (lambda request: request.config_dict)  # type: ignore[assignment]


def _old_gateway_auth_middleware() -> Any:
    """The gateway credential check before the branch `chain`: the query string parsed on every request."""
    from gatewaycerts.appkeys import GATEWAY_KEY_SERVICE, PRINCIPAL, TOKEN_VERIFIER
    from gatewaycerts.auth.middleware import bearer_token
    from gatewaycerts.core.delivery.keys import is_gateway_key
    from gatewaycerts.domain.errors import AuthenticationError
    from gatewaycerts.facades.gateway.views import root_app

    @web.middleware
    async def gateway_auth(request: web.Request, handler: Any) -> web.StreamResponse:
        in_query = request.query.get("key")
        credential = bearer_token(request) or in_query
        if not credential:
            raise AuthenticationError("no gateway credential")
        if is_gateway_key(credential):
            request[PRINCIPAL] = await root_app(request)[GATEWAY_KEY_SERVICE].authenticate(credential)
        elif credential is in_query:
            raise AuthenticationError("only a gateway key may be a parameter")
        else:
            request[PRINCIPAL] = await root_app(request)[TOKEN_VERIFIER].verify(credential)
        return await handler(request)

    return gateway_auth


def _gateway_query(app: web.Application, on: bool) -> None:
    """Off: the gateway credential check parses the query string on every request, as before."""
    from gatewaycerts.facades.gateway.app import gateway_auth_middleware

    if "gateway" not in _chain_saved:
        _chain_saved["gateway"] = next(
            a for a in _sub_apps(app) if any(m is gateway_auth_middleware for m, _ in a._middlewares_handlers)
        )
    gateway = _chain_saved["gateway"]
    old = _chain_saved.setdefault("old-gateway-auth", _old_gateway_auth_middleware())
    if on:
        _swap_middleware(gateway, old, gateway_auth_middleware)
    else:
        _swap_middleware(gateway, gateway_auth_middleware, old)


def _chain_all(app: web.Application, on: bool) -> None:
    """Every change of the branch `chain` at once."""
    for name in ("request-tallies", "request-mw", "apic-layer", "auth-root", "gateway-query", "line-pass"):
        TOGGLES[name](app, on)


def _old_line(self: Any, level: int, method: str, path: str, route: str, status: int, millis: float, end: str) -> str:
    """AccessLog.line as before the branch `chain` (message escaped whole, _utc_millis and _float_repr called),
    plus the terminator as log() added it."""
    request_id = logs.request_id_var.get()
    head = self._heads.get((level, logs._pid[0]))
    if head is None:
        head = self._heads[(level, logs._pid[0])] = (
            f'"level": {logs._esc(logging.getLevelName(level))}, "logger": {logs._esc(self.logger.name)}, '
            f'"pid": {int.__repr__(logs._pid[0])}, "message": '
        )
    esc = logs._esc
    message = esc(f"{method} {path} {status} {millis:.1f} ms")
    rid = f'"request_id": {esc(request_id)}, ' if request_id else ""
    line = (
        f'{{"time": "{logs._utc_millis(time.time())}", {head}{message}, {rid}"method": {esc(method)}, '
        f'"path": {esc(path)}, "route": {esc(route)}, "status": {int.__repr__(status)}, '
        f'"duration_ms": {logs._float_repr(round(millis, 2))}}}'
    )
    return line + end


def _line_pass(app: web.Application, on: bool) -> None:
    """Off: the access line composed as before the branch `chain` (and, since stop 31, made in the request:
    `_line` is on the request's path only then)."""
    saved = _chain_saved.setdefault("line", logs.AccessLog._line)
    logs.AccessLog._line = saved if on else _old_line  # type: ignore[method-assign]
    _deferred_via_line(on)


def _deferred_via_line(on: bool) -> None:
    """With the deferral off through a `_line` toggle, each line goes by `_line` (the one patched) again (the
    request id and time are the request's own: still set when the line is made in it)."""
    _line_made_now(on, lambda access, item, end: access._line(*item[2:], end))


def _line_made_now(on: bool, make: Any) -> None:
    """Off: JsonStreamHandler.write_access makes the line in the request (`make(access, item, terminator)`) and
    buffers its text (write_line), as before stop 31; on: the line is made when the buffer is written."""
    cls = logs.JsonStreamHandler
    saved = _chain_saved.setdefault("write_access", cls.write_access)
    cls.write_access = (  # type: ignore[method-assign]
        saved if on else lambda self, access, item: self.write_line(make(access, item, self.terminator))
    )


TOGGLES["request-mw"] = _request_mw
TOGGLES["apic-layer"] = _apic_layer
TOGGLES["auth-root"] = _auth_root
TOGGLES["gateway-query"] = _gateway_query
TOGGLES["line-pass"] = _line_pass
TOGGLES["chain"] = _chain_all
# --- end of stop 28: chain ----------------------------------------------------------------------------------

# Stop 28, lane: the direct lane of the hot routes (web/lane.py). The protocol of the service's Driver took the
# server's request handler when it was made; `lane` swaps it back to aiohttp's Application._handle, with the
# root router's resolve as before the lane (the OCSP flat match over the hot routes' flat match).
_PROTOCOLS: list[Any] = []


def _lane(app: web.Application, on: bool) -> None:
    lane, flat = app[LANE], app[FLAT_OCSP_ROUTES]
    for proto in _PROTOCOLS:
        proto._request_handler = lane.handle if on else lane.app_handle
    flat.original = lane.hot_routes.original if on else lane.hot_routes.resolve


def _lane_memo(app: web.Application, on: bool) -> None:
    """Off: every hot request matched flat again (split, group look-ups), its lane built anew."""
    lane = app[LANE]
    lane.remembered = lane._memo.get if on else (lambda path: None)


TOGGLES["lane"] = _lane
TOGGLES["lane-memo"] = _lane_memo
# -- branch `sign`: the CCM issue routes (POST, each request signs and stores a certificate) ---------------
# `--only csr` / `--only issue`. (Stop 28 measured their CPU work inline on the event loop against the pki
# executor with a toggle here, on commit fd6af51; reverted, see docs/performance.md "Stop 28: sign".)


_csr_saved: dict[str, Any] = {}


def _csr_facts(app: web.Application, on: bool) -> None:
    """Off: a checked CSR's PEM and fingerprint computed with its facts, and the key usages' key kind read by
    parsing the public key's PEM again, as before 16b8db3."""
    from gatewaycerts.pki import authority

    if not _csr_saved:
        _csr_saved.update(facts=authority._facts, kind_of=authority._kind_of)
    facts, kind_of = _csr_saved["facts"], _csr_saved["kind_of"]
    if on:
        authority._facts, authority._kind_of = facts, kind_of
    else:
        authority._facts = lambda parsed: (f := facts(parsed), f.fingerprint, f.pem)[0]
        authority._kind_of = lambda algorithm, public_key_pem, kind: kind_of(algorithm, public_key_pem, None)


TOGGLES["csr-facts"] = _csr_facts
TOGGLES["pem-scan"] = pem_scan  # stop 29 (bench/pem_scan.py)


def _ca_envelope(app: web.Application, on: bool) -> None:
    """Stop 29: the CA key's envelope parsed once per envelope text (off: parsed at every signature, as before)."""
    from gatewaycerts import keyvault
    from gatewaycerts.core import authorities

    authorities.parse_envelope = keyvault.parse_envelope if on else keyvault.KeyVault.parse  # type: ignore[assignment]


TOGGLES["ca-envelope"] = _ca_envelope


# --- Stop 31: the access line made when the buffer is written ----------------------------------------------
def _access_deferred(app: web.Application, on: bool) -> None:
    """Off: each access line made in its request and buffered as text (JsonStreamHandler.write_line), as before
    stop 31 (the line is `made` the same way)."""
    _line_made_now(on, lambda access, item, end: access.made(item, end))


def _query_memo(app: web.Application, on: bool) -> None:
    """Off: the Caddy route's query string parsed by yarl at every request, as before stop 31."""
    from gatewaycerts.facades.gateway.views import CADDY_QUERIES

    if on:
        del CADDY_QUERIES.kept, CADDY_QUERIES.query
    else:
        CADDY_QUERIES.kept = lambda request: None  # type: ignore[method-assign]
        CADDY_QUERIES.query = lambda request: request.query  # type: ignore[method-assign]


TOGGLES["query-memo"] = _query_memo
TOGGLES["access-deferred"] = _access_deferred


# --- Stop 32: the lane's chains without aiohttp's current-app layers ----------------------------------------
def _app_layers(app: web.Application, on: bool) -> None:
    """Off: every chain of the lane is aiohttp's own `_build_middlewares` again, with a
    `_fix_request_current_app` layer per application (as before stop 32)."""
    from aiohttp.web_app import _build_middlewares

    from gatewaycerts.web import lane as lane_module

    the_lane = app[LANE]
    lean = _chain_saved.setdefault("app-layers", {})
    for route, chain in list(the_lane._chains.items()):
        apps = next((x.apps for x in the_lane._memo.values() if x.route is route), None)
        if apps is None:
            continue
        lean.setdefault(route, chain)
        new = lean[route] if on else _build_middlewares(route.handler, apps)
        the_lane._chains[route] = new
        for entry in the_lane._memo.values():
            if entry.route is route:
                entry.chain = new
    assert on or lane_module._FIX_CODE is not None


TOGGLES["app-layers"] = _app_layers


def raw_post(path: str, headers: dict[str, str], body: dict[str, Any]) -> bytes:
    import json

    data = json.dumps(body).encode()
    head = {**headers, "Content-Type": "application/json", "Content-Length": str(len(data))}
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in head.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def sign_routes(client: TestClient, headers: dict[str, str]) -> dict[str, bytes]:
    """The CSR route and the generated-key route, under a P-256 root CA made here."""
    from bench.bench_peer import csr_pem

    resp = await client.post(
        "/v1/private-certificate-authorities",
        json={
            "type": "ROOT",
            "distinguished_name": {"common_name": "Bench P-256 CA"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 10},
        },
        headers=headers,
    )
    ca_id = (await resp.json())["ca_id"]
    validity = {"type": "DAY", "value": 30}
    return {
        "csr": raw_post(
            "/v1/private-certificates/csr",
            headers,
            {"issuer_id": ca_id, "csr": csr_pem("www.bench.example"), "validity": validity},
        ),
        "issue": raw_post(
            "/v1/private-certificates",
            headers,
            {
                "issuer_id": ca_id,
                "key_algorithm": "EC256",
                "distinguished_name": {"common_name": "www.bench.example"},
                "validity": validity,
            },
        ),
    }


def raw_get(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def bare_factory(body: bytes, ctype: str) -> tuple[Any, web.AppRunner]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=ctype)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    return runner.server, runner


async def main(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="gc-inproc-"))
    log_file = (state / "access.log").open("w")
    configure_logging(args.log_level, "json")
    logging.getLogger().handlers[0].stream = log_file  # the access lines are written, to a file
    settings = Settings(state_dir=state)
    if args.spread:
        from bench import bench_delivery

        # its 2,000 certificates and 10,000 names, on the same project and instance
        await asyncio.to_thread(bench_delivery.seed, state)
    app = create_app(settings, order_worker=False, renewal_worker=False, notification_worker=False)
    # as `serve` runs it (web/server.py): no aiohttp access logger (ours is the request middleware's line)
    server = TestServer(app)
    await server.start_server(access_log=None)
    client = TestClient(server)
    await client.start_server()
    key = load_or_create_dev_key(state)
    admin = {"X-Auth-Token": mint_token(key, subject="a", projects=["bench"], roles=["admin"], ttl=7200)}
    chain = ec_chain()
    leaf = issue(
        CertSpec(cn="www.bench.example", dns=("www.bench.example",)), ec_key("secp256r1", 9), chain.intermediate
    )
    resp = await client.post(
        "/v2/bench/apic/certificates",
        json={"name": "inproc", "cert_content": leaf.pem + chain.intermediate.pem, "private_key": leaf.key_pem()},
        headers=admin,
    )
    cert_id = (await resp.json())["id"]
    resp = await client.post(
        f"/v2/bench/apic/certificates/{cert_id}/domains/attach",
        json={"domains": [{"domain": "www.bench.example", "instance_ids": ["edge"]}]},
        headers=admin,
    )
    assert resp.status == 204, await resp.text()
    resp = await client.post("/v2/bench/apic/instances/edge/gateway-keys", headers=admin)
    gk = (await resp.json())["key"]
    gw = "/gateway/v1/bench/instances/edge"
    resp = await client.get(f"{gw}/bundle", headers={"Authorization": f"Bearer {gk}"})
    etag = resp.headers["ETag"]
    routes = {
        "show": raw_get(f"/v2/bench/apic/certificates/{cert_id}", admin),
        "caddy": raw_get(f"{gw}/caddy?server_name=www.bench.example&signature_schemes={ECDSA}&key={gk}", {}),
        "304": raw_get(f"{gw}/bundle", {"Authorization": f"Bearer {gk}", "If-None-Match": etag}),
        # as bench_delivery's Caddy requests: a distinct path each time (1,430 server names there; here the
        # local_ip varies, which the answer does not depend on)
        "caddy-paths": [
            raw_get(
                f"{gw}/caddy?server_name=www.bench.example&signature_schemes={ECDSA}&local_ip=10.0.{i // 250}.{i % 250}"
                f"&key={gk}",
                {},
            )
            for i in range(1430)
        ],
    }
    if args.spread:
        from bench.bench_delivery import CERTS, NAMES_PER_CERT, domain

        # bench_delivery's Caddy requests: 1,430 names across 286 of the seeded certificates
        routes["caddy-spread"] = [
            raw_get(f"{gw}/caddy?server_name={domain(c, j)}&signature_schemes={ECDSA}&local_ip=127.0.0.1&key={gk}", {})
            for c in range(0, CERTS, 7)
            for j in range(NAMES_PER_CERT)
        ]
    routes.update(await sign_routes(client, admin))
    service = Driver(client.server.runner.server)
    _PROTOCOLS.append(service.proto)
    results: dict[str, list[tuple[float, float, float, float]]] = {}
    for name, raws in routes.items():
        if args.only and name not in args.only:
            continue
        if not isinstance(raws, list):
            raws = [raws]
        raw = raws[0]
        answer = await service.one(raw)
        head, _, body = answer.partition(b"\r\n\r\n")
        status = head.split(b" ")[1].decode()
        ctype = next(
            (
                ln.split(b":", 1)[1].strip().split(b";")[0].decode()
                for ln in head.split(b"\r\n")[1:]
                if ln.lower().startswith(b"content-type")
            ),
            "application/octet-stream",
        )
        print(f"{name}: status {status}, {len(body)} body bytes, {len(head)} header bytes", flush=True)
        factory, runner = await bare_factory(body, ctype)
        bare = Driver(factory)
        bare_raw = raw_get("/x", {"Authorization": "Bearer x"})
        await bare.run([bare_raw], 300)
        await service.run(raws, 300)
        if args.profile:
            sys.path.remove(BENCH)  # bench/profile.py would shadow the stdlib's
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            await service.run(raws, args.requests)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(
                int(__import__("os").environ.get("INPROC_PROFILE_LINES", "35"))
            )
            pstats.Stats(prof).sort_stats("cumulative").print_stats(45)
            continue
        for _ in range(args.rounds):
            b_us, b_w = await bare.run([bare_raw], args.requests)
            s_us, s_w = await service.run(raws, args.requests)
            results.setdefault(name, []).append((s_us, b_us, s_w, b_w))
            for toggle in args.without:
                TOGGLES[toggle](app, False)
                o_us, _ = await service.run(raws, args.requests)
                TOGGLES[toggle](app, True)
                results.setdefault(f"{name} without {toggle}", []).append((o_us, b_us, s_w, b_w))
                print(f"  {name} without {toggle}: service {o_us:.1f} µs ratio {b_us / o_us:.2f}", flush=True)
            print(
                f"  {name}: service {s_us:.1f} µs ({s_w:.1f} writes) bare {b_us:.1f} µs ({b_w:.1f} writes) "
                f"ratio {b_us / s_us:.2f}",
                flush=True,
            )
        await runner.cleanup()
    await client.close()
    print()
    for name, rows in results.items():
        ratios = [b / s for s, b, _, _ in rows]
        print(
            f"{name}: CPU/request service {statistics.median(r[0] for r in rows):.1f} µs, bare "
            f"{statistics.median(r[1] for r in rows):.1f} µs; bare/service median {statistics.median(ratios):.2f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--without", action="append", default=[], choices=sorted(TOGGLES))
    parser.add_argument("--profile", action="store_true", help="cProfile the service's requests instead")
    parser.add_argument(
        "--spread",
        action="store_true",
        help="seed bench_delivery's 2,000 certificates first and add its Caddy requests (route caddy-spread)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="WARNING: no access lines written (bench/harness.Service ran services so until stop 27)",
    )
    uvloop.run(main(parser.parse_args()))
