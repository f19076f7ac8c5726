"""web/direct.py: a DirectResponse puts on the wire exactly what aiohttp's own path puts there for the same
response (Date aside), in one transport write when it takes its own path, and defers to aiohttp's path for
everything it does not handle (HTTP/1.0, HEAD, Connection: close, a prepare signal, cookies, a non-bytes body)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from gatewaycerts.web import direct
from gatewaycerts.web.direct import DirectResponse

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" * 20
BLOCK = CIMultiDict({"Cache-Control": "no-store", "Content-Type": "text/plain"})


def responses(kind: type[web.Response]) -> dict[str, Callable[[], web.Response]]:
    return {
        "pem": lambda: kind(body=PEM, headers=BLOCK),
        "typed": lambda: kind(body=b'{"a":1}', content_type="application/json", headers={"ETag": '"3"'}),
        "untyped": lambda: kind(body=b"\x30\x03\x0a\x01\x00"),
        "304": lambda: kind(status=304, headers={"ETag": '"v1"', "X-Stale": "0"}),
        "empty-200": lambda: kind(body=b""),
        "created": lambda: kind(status=201, body=b"{}", content_type="application/json"),
        "no-content": lambda: kind(status=204),
        "error": lambda: kind(status=404, body=b"nope", content_type="text/plain"),
        "text": lambda: kind(text="héllo", content_type="text/plain"),
        "cookie": lambda: _with_cookie(kind()),
        "closing": lambda: _closing(kind(body=b"bye")),
    }


def _with_cookie(response: web.Response) -> web.Response:
    response.set_cookie("a", "b")
    return response


def _closing(response: web.Response) -> web.Response:
    response.force_close()
    return response


def app_with(kind: type[web.Response], *, signal: bool = False) -> web.Application:
    app = web.Application()
    made = responses(kind)
    writes: dict[str, list[int]] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        counted = _Counting.install(transport)
        response = made[request.match_info["name"]]()
        response.headers["X-Request-Id"] = "req-1"  # as the request middleware adds it after the handler
        writes["counts"] = counted.counts
        return response

    app["writes"] = writes
    app.router.add_route("*", "/{name}", handler)
    if signal:

        async def mark(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["X-Signalled"] = "1"

        app.on_response_prepare.append(mark)
    return app


class _Counting:
    """Counts the transport's write calls from the handler's return on (a response's own writes)."""

    def __init__(self) -> None:
        self.counts = [0]

    @classmethod
    def install(cls, transport: asyncio.BaseTransport) -> _Counting:
        counted = cls()
        for name in ("write", "writelines"):
            original = getattr(transport, name)

            def counting(*args: object, _original: Callable[..., None] = original) -> None:
                counted.counts[0] += 1
                _original(*args)

            try:
                setattr(transport, name, counting)
            except AttributeError:  # a transport that refuses it: not counted
                return counted
        return counted


async def exchange(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        data = await asyncio.wait_for(reader.read(65536), 10)
        # a keep-alive answer: read until the announced length is in
        while b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?im)^content-length: *(\d+)", head)
            bodiless = raw.startswith(b"HEAD ") or re.match(rb"HTTP/1\.[01] (1\d\d|204|304) ", head) is not None
            if m is None or bodiless or len(rest) >= int(m.group(1)):
                break
            data += await asyncio.wait_for(reader.read(65536), 10)
    finally:
        writer.close()
    return data


def undated(raw: bytes) -> bytes:
    return re.sub(rb"(?m)^Date: [^\r]*\r\n", b"Date: -\r\n", raw)


REQUESTS = {
    "get": b"GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n",
    "post": b"POST /{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab",
    "head": b"HEAD /{name} HTTP/1.1\r\nHost: x\r\n\r\n",
    "http10": b"GET /{name} HTTP/1.0\r\nHost: x\r\n\r\n",
    "http10-keepalive": b"GET /{name} HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
    "close": b"GET /{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    "put": b"PUT /{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
}


@pytest.fixture
async def servers():
    made = []

    async def start(**kw: bool) -> tuple[TestServer, TestServer]:
        plain, fast = TestServer(app_with(web.Response, **kw)), TestServer(app_with(DirectResponse, **kw))
        for server in (plain, fast):
            await server.start_server()
            made.append(server)
        return plain, fast

    yield start
    for server in made:
        await server.close()


def test_supported_on_this_aiohttp() -> None:
    assert direct.supported()


@pytest.mark.parametrize("name", sorted(responses(web.Response)))
@pytest.mark.parametrize("request_kind", sorted(REQUESTS))
async def test_the_same_bytes_as_aiohttp(servers, name: str, request_kind: str) -> None:
    plain, fast = await servers()
    raw = REQUESTS[request_kind].replace(b"{name}", name.encode())
    expected = undated(await exchange(plain.port, raw))
    got = undated(await exchange(fast.port, raw))
    assert got == expected
    assert b"X-Request-Id: req-1\r\n" in got


@pytest.mark.parametrize(("name", "request_kind"), [("pem", "get"), ("typed", "post"), ("304", "get")])
async def test_one_write_on_its_own_path(servers, name: str, request_kind: str) -> None:
    _, fast = await servers()
    raw = REQUESTS[request_kind].replace(b"{name}", name.encode())
    await exchange(fast.port, raw)
    assert fast.app["writes"]["counts"] == [1]
    # and its own path was taken: aiohttp's leaves the header buffer on the writer, this one never fills it
    seen: list[DirectResponse] = []
    original = web.Response.prepare

    async def spy(self: web.Response, request: web.BaseRequest):  # type: ignore[no-untyped-def]
        seen.append(self)
        return await original(self, request)

    web.Response.prepare = spy  # type: ignore[method-assign]
    try:
        got = await exchange(fast.port, raw)
    finally:
        web.Response.prepare = original  # type: ignore[method-assign]
    assert got.startswith(b"HTTP/1.1 ")
    assert seen == []  # DirectResponse.prepare did not defer to web.Response.prepare


@pytest.mark.parametrize("request_kind", ["head", "http10", "close", "put"])
async def test_defers_to_aiohttp_where_it_adds_something(servers, request_kind: str) -> None:
    _, fast = await servers()
    raw = REQUESTS[request_kind].replace(b"{name}", b"pem")
    deferred: list[int] = []
    original = web.Response.prepare

    async def spy(self: web.Response, request: web.BaseRequest):  # type: ignore[no-untyped-def]
        deferred.append(1)
        return await original(self, request)

    web.Response.prepare = spy  # type: ignore[method-assign]
    try:
        await exchange(fast.port, raw)
    finally:
        web.Response.prepare = original  # type: ignore[method-assign]
    assert deferred == [1]


async def test_a_prepare_signal_still_runs(servers) -> None:
    plain, fast = await servers(signal=True)
    raw = REQUESTS["get"].replace(b"{name}", b"pem")
    got = await exchange(fast.port, raw)
    assert b"X-Signalled: 1\r\n" in got
    assert undated(got) == undated(await exchange(plain.port, raw))


async def test_a_control_character_in_a_header_is_refused_as_by_aiohttp(servers) -> None:
    """aiohttp's serialiser refuses it on both paths: the handler's error, never a split header on the wire."""
    for kind in (web.Response, DirectResponse):
        response = kind(body=b"x", headers={"X-Bad": "a\r\nInjected: 1"})
        app = web.Application()

        async def handler(request: web.Request, response: web.Response = response) -> web.Response:
            return response

        app.router.add_get("/", handler)
        server = TestServer(app)
        await server.start_server()
        try:
            got = await exchange(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        finally:
            await server.close()
        assert b"Injected: 1" not in got
        assert got.startswith(b"HTTP/1.1 500") or got == b""
