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
