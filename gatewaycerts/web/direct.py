"""A complete small response written in one go: the hot routes' answers (Caddy's PEM, the snapshot's 304, an
OCSP answer, the APIC show) without aiohttp's general response machinery.

For every response aiohttp's `RequestHandler` awaits `prepare` and then `write_eof`, and between them runs a
chain of coroutines and checks that a complete in-memory body answered over keep-alive HTTP/1.1 does not need:
`Response._start` → `StreamResponse._start` → `_prepare_headers` (cookies, compression, chunking, the length
check, HTTP/1.0's Connection header) → `request._prepare_hook` (the `on_response_prepare` signals) →
`_write_headers` → `StreamWriter.write_headers`, then `Response.write_eof` → `StreamResponse.write_eof` →
`StreamWriter.write_eof` → `_send_headers_with_payload` → `drain` (~6 µs of a bare handler's ~25 µs in process,
docs/performance.md, "Stop 30").

`DirectResponse` is a `web.Response` (made the same way, with the same headers) whose `prepare` writes the
status line, the headers and the body in one transport write, as aiohttp would write them: the response's own
headers in their order, then `Content-Length` (none on a 304), a default `Content-Type` for a non-empty body
without one, `Date` and `Server` unless set, serialised by aiohttp's own `_serialize_headers` (which refuses
control characters in names and values, as on aiohttp's path). Then `write_eof` has nothing left to do.

It takes that path only when aiohttp's would add nothing more: a keep-alive HTTP/1.1 GET or POST, a body of
bytes, no cookies, no compression, no chunking, no `on_response_prepare` receiver in the request's
applications, no headers-sent or body-write hook on the writer, a status of 200 to 299 (not 204) or 304.
Anything else (and an aiohttp whose internals moved: `supported()`) goes through `web.Response.prepare` as
before, so the bytes on the wire are the same either way
(tests/unit/test_direct_response.py compares them).
"""

from __future__ import annotations

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.http_writer import StreamWriter, _serialize_headers

_CONTENT_LENGTH, _CONTENT_TYPE, _DATE, _SERVER = hdrs.CONTENT_LENGTH, hdrs.CONTENT_TYPE, hdrs.DATE, hdrs.SERVER


def supported() -> bool:
    """Are the internals `DirectResponse.prepare` reads where aiohttp 3.14 keeps them?"""
    response_slots = {
        "_body",
        "_body_length",
        "_chunked",
        "_compression",
        "_cookies",
        "_eof_sent",
        "_headers",
        "_keep_alive",
        "_must_be_empty_body",
        "_payload_writer",
        "_reason",
        "_req",
        "_status",
    }
    probe = web.Response(body=b"")
    writer = StreamWriter(None, None)  # type: ignore[arg-type]  # only its attributes are read
    writer_attrs = ("_protocol", "_on_headers_sent", "on_body_write", "_writelines", "_write", "chunked", "_compress")
    return (
        all(hasattr(probe, name) for name in response_slots)
        and all(hasattr(writer, name) for name in writer_attrs)
        and hasattr(writer, "output_size")
        and callable(getattr(web.BaseRequest, "_prepare_hook", None))
    )


_SUPPORTED = supported()


def _prepare_receivers(request: web.BaseRequest) -> bool:
    """Would `request._prepare_hook` send `on_response_prepare` to anyone (web.Request._prepare_hook)?"""
    match_info = getattr(request, "_match_info", None)  # web.Request's (a BaseRequest has none: no signals)
    if match_info is not None:
        for app in match_info._apps:  # a loop, not any() over a generator: this runs for every answer
            if app.on_response_prepare:
                return True
    return False


class DirectResponse(web.Response):
    """`web.Response`, written in one go when aiohttp's own path would add nothing (the module's docstring)."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent or self._payload_writer is not None or not _SUPPORTED:
            return await super().prepare(request)
        writer = request._payload_writer
        keep_alive = self._keep_alive
        if keep_alive is None:
            keep_alive = request.keep_alive
        body = self._body
        if body is None:
            body = b""  # no body given: aiohttp sends Content-Length: 0 (none on a 304)
        status = self._status
        method = request.method
        if (
            not keep_alive
            or (method != "GET" and method != "POST")
            or request.version != HttpVersion11
            or not (200 <= status < 300 or status == 304)
            or type(writer) is not StreamWriter
            or writer._on_headers_sent is not None
            or writer.on_body_write is not None
            or writer.chunked
            or writer._compress is not None
            or not isinstance(body, bytes)
            or self._cookies
            or self._compression
            or self._chunked
            or status == 204
            or _prepare_receivers(request)
        ):
            return await super().prepare(request)
        headers = self._headers
        not_modified = status == 304
        if not_modified:
            if body:
                return await super().prepare(request)
            headers.popall(_CONTENT_LENGTH, None)  # aiohttp sends none on a 304 (RFC 9110 §8.6)
        else:
            headers[_CONTENT_LENGTH] = str(len(body))
            if body and _CONTENT_TYPE not in headers:
                headers[_CONTENT_TYPE] = "application/octet-stream"
        if _DATE not in headers:
            headers[_DATE] = rfc822_formatted_time()
        if _SERVER not in headers:
            headers[_SERVER] = SERVER_SOFTWARE
        head = _serialize_headers(f"HTTP/1.1 {status} {self._reason}", headers)
        self._keep_alive = True
        self._must_be_empty_body = not_modified
        self._req = None
        if body and not not_modified:
            writer._writelines((head, body))
        else:
            writer._write(head)
        self._eof_sent = True
        self._body_length = writer.output_size  # as StreamResponse.write_eof counts it: the headers too
        if writer._protocol._paused:
            await writer.drain()
        return None
