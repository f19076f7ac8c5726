"""The access line written directly (web/logs.AccessLog) is the line logging's own path writes, and any other
logging configuration still gets every line as a LogRecord."""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator

from gatewaycerts.core.context import request_id_var
from gatewaycerts.web import logs
from gatewaycerts.web.logs import AccessLog, configure_logging

ROUTE = "/gateway/v1/{project_id}/instances/{instance_id}/caddy"


@contextlib.contextmanager
def configured(fmt: str) -> Iterator[io.StringIO]:
    """Logging as `serve` configures it (pytest's own capturing handlers set aside meanwhile), into a string."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logs._json_handler[0], logs._json_filters[:])
    configure_logging("INFO", fmt)
    stream = io.StringIO()
    root.handlers[0].stream = stream
    try:
        yield stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logs._json_handler[0], logs._json_filters[:] = saved[2], saved[3]


def _write_both(access: AccessLog, stream: io.StringIO) -> tuple[str, str]:
    token = request_id_var.set("req-7")
    try:
        access.log(logging.INFO, "GET", "/gateway/v1/p1/instances/gw1/caddy", ROUTE, 200, 0.0123456)
        direct = stream.getvalue()
        stream.seek(0), stream.truncate()
        handler, logs._json_handler[0] = logs._json_handler[0], None  # logging's own path
        try:
            access.log(logging.INFO, "GET", "/gateway/v1/p1/instances/gw1/caddy", ROUTE, 200, 0.0123456)
        finally:
            logs._json_handler[0] = handler
        return direct, stream.getvalue()
    finally:
        request_id_var.reset(token)


def test_the_direct_line_is_the_line_logging_writes():
    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    with configured("json") as stream:
        assert access._direct(logging.INFO) is not None  # configured as `serve` does: the direct write is taken
        direct, through_logging = _write_both(access, stream)
    assert direct.endswith("\n") and through_logging.endswith("\n") and direct.count("\n") == 1
    a, b = json.loads(direct), json.loads(through_logging)
    assert list(a) == list(b)  # the same keys in the same order
    a.pop("time"), b.pop("time")
    assert a == b
    assert a["message"] == "GET /gateway/v1/p1/instances/gw1/caddy 200 12.3 ms"
    assert a["request_id"] == "req-7" and a["route"] == ROUTE and a["duration_ms"] == 12.35


def test_another_handler_gets_every_line_as_a_record():
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    with configured("json") as stream:
        logging.getLogger().addHandler(Collect())
        assert access._direct(logging.INFO) is None
        access.log(logging.INFO, "GET", "/x", "/x", 404, 0.001)
    assert [(r.name, r.status, r.route, r.path) for r in seen] == [("gatewaycerts.access", 404, "/x", "/x")]
    assert json.loads(stream.getvalue())["status"] == 404  # and the JSON handler wrote it, once


def test_levels_and_text_format_are_honoured():
    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    with configured("json") as stream:
        access.log(logging.DEBUG, "GET", "/healthz", "/healthz", 200, 0.001)  # below INFO: not written
        access.log(logging.INFO, "GET", "/x", "/x", 200, 0.001)
    assert [json.loads(line)["path"] for line in stream.getvalue().splitlines()] == ["/x"]
    with configured("text") as text:
        assert access._direct(logging.INFO) is None
        access.log(logging.INFO, "GET", "/x", "/x", 200, 0.001)
    assert " INFO gatewaycerts.access GET /x 200 1.0 ms" in text.getvalue()


# -- the buffer of JsonStreamHandler (web/logs.py): at most ACCESS_FLUSH_SECONDS, in order, whole lines --------


def _poll(condition, within: float = 5.0):
    import time

    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not within the deadline"
        yield


def test_in_an_event_loop_lines_wait_for_the_timer_then_come_out_whole_and_in_order():
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))

    async def scenario(stream: io.StringIO) -> tuple[str, str]:
        for i in range(3):
            access.log(logging.INFO, "GET", f"/x/{i}", "/x/{i}", 200, 0.001)
        before = stream.getvalue()
        for _ in _poll(lambda: stream.getvalue().count("\n") == 3):
            await asyncio.sleep(0.01)  # yields to the loop so that its timer can run; the poll has a deadline
        return before, stream.getvalue()

    with configured("json") as stream:
        handler = logs._json_handler[0]
        assert isinstance(handler, logs.JsonStreamHandler) and handler.flush_seconds == logs.ACCESS_FLUSH_SECONDS
        before, after = asyncio.run(scenario(stream))
    assert before == ""  # buffered: nothing written yet when the requests were logged
    assert [json.loads(line)["path"] for line in after.splitlines()] == ["/x/0", "/x/1", "/x/2"]


def test_another_record_and_a_flush_write_the_buffered_lines_first():
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))

    async def scenario(stream: io.StringIO) -> list[str]:
        access.log(logging.INFO, "GET", "/first", "/first", 200, 0.001)
        logging.getLogger("gatewaycerts.test").warning("second")
        access.log(logging.INFO, "GET", "/third", "/third", 200, 0.001)
        logs._json_handler[0].flush()  # what logging.shutdown does at exit, and serve after its cleanup
        return [json.loads(line)["message"] for line in stream.getvalue().splitlines()]

    with configured("json") as stream:
        logs._json_handler[0].flush_seconds = 3600.0  # only the record and the flush can write them
        lines = asyncio.run(scenario(stream))
    assert lines == ["GET /first 200 1.0 ms", "second", "GET /third 200 1.0 ms"]


class _Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


def test_a_full_buffer_is_written_at_once_in_writes_of_at_most_pipe_buf_bytes():
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))

    async def scenario(stream: _Writes, n: int) -> tuple[int, int]:
        written_at = None
        for i in range(n):
            access.log(logging.INFO, "GET", f"/x/{i}/" + "é" * 40, "/x", 200, 0.001)
            if written_at is None and stream.writes:
                written_at = i + 1
        return written_at or 0, len(stream.getvalue().splitlines())

    with configured("json"):
        handler = logs._json_handler[0]
        stream = handler.stream = _Writes()
        handler.flush_seconds = 3600.0
        written_at, lines = asyncio.run(scenario(stream, 400))
    assert 0 < written_at < 400 and lines >= written_at  # the size bound wrote them, not a timer
    assert all(len(w.encode()) <= logs._ATOMIC_WRITE and w.endswith("\n") for w in stream.writes)
    assert len(stream.writes) < lines  # several lines per write


def test_without_a_flush_interval_or_outside_a_loop_every_line_is_written_at_once():
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))

    async def scenario(stream: io.StringIO) -> str:
        access.log(logging.INFO, "GET", "/now", "/now", 200, 0.001)
        return stream.getvalue()

    with configured("json") as stream:
        logs._json_handler[0].flush_seconds = 0
        assert json.loads(asyncio.run(scenario(stream)))["path"] == "/now"
    with configured("json") as stream:
        access.log(logging.INFO, "GET", "/sync", "/sync", 200, 0.001)  # no running loop: no timer to wait for
        assert json.loads(stream.getvalue())["path"] == "/sync"


def test_the_line_is_the_encoders_text_character_for_character():
    """AccessLog.line writes the JSON text itself: it must be exactly what the encoder makes of the entry, for
    every kind of value a request can bring (quotes, backslashes, control characters, non-ASCII, no id)."""
    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    paths = ["/x", '/a"b\\c', "/tab\there", "/nl\nx\x00\x1f\x7f", "/é/漢字/😀", "/\u2028\ud800"]
    ids = ["req-7", None, "", 'id"\\']
    cases = [
        (level, method, path, route, status, millis)
        for level in (logging.INFO, logging.DEBUG, 25)
        for method in ("GET", "PÖST")
        for path in paths
        for route in ("/gateway/v1/{project_id}/instances/{instance_id}/caddy", "unmatched")
        for status in (200, 499, 500)
        for millis in (0.0, 0.0123456, 12.345, 1e-7, 123456789.987, float("inf"), float("nan"))
    ]
    checked = 0
    for request_id in ids:
        token = request_id_var.set(request_id)
        try:
            for case in cases:
                line = access.line(*case)
                entry = access.entry(*case)
                if json.loads(line)["time"] != entry["time"]:
                    continue  # the millisecond turned between the two calls
                assert line == logs._ENCODER.encode(entry), case
                checked += 1
        finally:
            request_id_var.reset(token)
    assert checked > len(cases) * len(ids) * 0.9


def test_while_a_timer_is_pending_no_line_asks_for_the_running_loop_and_a_timer_on_a_gone_loop_holds_nothing(
    monkeypatch,
):
    """Lines logged while the first one's timer is pending on the running loop leave it to that timer, without
    asyncio._get_running_loop() (a getpid() system call per line on Python 3.11); a timer left on a loop that
    has since closed does not hold the lines of the next loop."""
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    asked: list[int] = []
    running_loop = asyncio._get_running_loop

    def counted() -> asyncio.AbstractEventLoop | None:
        asked.append(1)
        return running_loop()

    monkeypatch.setattr(logs.asyncio, "_get_running_loop", counted)

    async def log_lines(prefix: str, n: int) -> None:
        for i in range(n):
            access.log(logging.INFO, "GET", f"/{prefix}/{i}", "/x", 200, 0.001)

    async def then_wait(stream: io.StringIO) -> None:
        await log_lines("b", 2)
        for _ in _poll(lambda: stream.getvalue().count("\n") == 7):
            await asyncio.sleep(0.01)  # yields to the loop so that its timer can run; the poll has a deadline

    with configured("json") as stream:
        handler = logs._json_handler[0]
        handler.flush_seconds = 3600.0  # the first loop's timer never fires: that loop closes with it pending
        asyncio.run(log_lines("a", 5))
        assert asked == [1] and stream.getvalue() == ""  # one look-up, for the first line only
        handler.flush_seconds = 0.01
        asyncio.run(then_wait(stream))
    assert len(asked) == 2  # the second loop's first line looked again (the first loop is gone), then no more
    assert [json.loads(line)["path"] for line in stream.getvalue().splitlines()] == [
        *(f"/a/{i}" for i in range(5)),
        "/b/0",
        "/b/1",
    ]


# -- the line made when the buffer is written (AccessLog.made, JsonStreamHandler.write_access) -----------------


def test_a_buffered_line_carries_the_time_and_request_id_of_its_request_not_of_the_write(monkeypatch):
    """In an event loop the line's fields wait in the buffer and the line is made when the buffer is written:
    its time and request id must still be the request's."""
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    logged_at = 1_800_000_000.25  # 2027-01-15T08:00:00.250Z
    clock = [logged_at]
    monkeypatch.setattr(logs.time, "time", lambda: clock[0])

    async def scenario() -> None:
        token = request_id_var.set("req-then")
        try:
            access.log(logging.INFO, "GET", "/x", "/x", 200, 0.001)
        finally:
            request_id_var.reset(token)
        clock[0] = logged_at + 3600  # an hour later, another request id: the buffer is written now
        token = request_id_var.set("req-now")
        try:
            logs._json_handler[0].flush()
        finally:
            request_id_var.reset(token)

    with configured("json") as stream:
        logs._json_handler[0].flush_seconds = 3600.0
        asyncio.run(scenario())
    entry = json.loads(stream.getvalue())
    assert entry["time"] == "2027-01-15T08:00:00.250Z" and entry["request_id"] == "req-then"


def test_the_bound_of_a_buffered_line_is_never_below_its_utf8_length():
    access = AccessLog(logging.getLogger("gatewaycerts.access"))
    for path in ("/x", "\x00" * 300, "😀" * 300, '"\\' * 200, "/" + "a" * 8000):
        for request_id in (None, "req-7", "\x01" * 64):
            for millis in (0.0, 123456789.987, float("inf"), float("nan"), 1e19):
                for level in (logging.INFO, 25, logging.DEBUG):
                    item = (1_800_000_000.0, request_id, level, "GET", path, "/route/\x1f{id}", 499, millis)
                    assert access.bound(item) >= len(access.made(item, "\n").encode("utf-8", "surrogatepass"))


def test_values_of_other_types_are_made_at_once_or_go_through_logging():
    """Only str/int/float values (and a str or no request id) wait in the buffer as fields; anything else is made
    in the request, and what `made` cannot write goes through logging's own path: every line is written, and a
    value `made` cannot write never reaches the buffer, where it would fail the write of the lines beside it."""
    import asyncio

    access = AccessLog(logging.getLogger("gatewaycerts.access"))

    class Path(str):
        pass

    async def scenario() -> None:
        access.log(logging.INFO, "GET", "/before", "/b", 200, 0.001)
        access.log(logging.INFO, "GET", Path("/sub"), "/sub", 200, 0.001)
        access.log(logging.INFO, "GET", "/text-status", "/t", "200", 0.001)  # type: ignore[arg-type]
        token = request_id_var.set(7)  # type: ignore[arg-type]
        try:
            access.log(logging.INFO, "GET", "/int-id", "/i", 200, 0.001)
        finally:
            request_id_var.reset(token)
        access.log(logging.INFO, "GET", "/after", "/a", 200, 0.001)
        logs._json_handler[0].flush()

    with configured("json") as stream:
        logs._json_handler[0].flush_seconds = 3600.0
        asyncio.run(scenario())
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["path"], line["status"]) for line in lines] == [
        ("/before", 200),
        ("/sub", 200),
        ("/text-status", "200"),
        ("/int-id", 200),
        ("/after", 200),
    ]
    assert lines[3]["request_id"] == 7
