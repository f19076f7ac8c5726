"""Log configuration: readable text or one JSON object per line, each record tagged with the request id.

The request id lives in a context variable (`core.context`, so that the audit trail reads it too) that the
request-id middleware sets, so every record logged while a request is handled (by any module, on the event
loop) carries it without being passed around.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from gatewaycerts.core.context import request_id_var

# Attributes every LogRecord has; anything else was passed with `extra=` and goes into the JSON object.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "request_id"}


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class ClientProtocolErrorFilter(logging.Filter):
    """aiohttp logs a request it cannot parse (a NUL byte in a header, a broken request line) as an ERROR with
    a traceback, after answering 400 itself. That is the client's mistake, not a failure of ours: keep one
    WARNING line with aiohttp's reason, no traceback, so that real errors stand out."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= (exc.code or 400) < 500:
            record.msg, record.args = "bad HTTP request: %s", (str(exc.message).strip().splitlines()[0],)
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonFormatter(logging.Formatter):
    """`{"time", "level", "logger", "pid", "message", "request_id", ...extra fields, "exception"?}` per line.

    `pid` tells the processes of `serve --workers N` apart (they write to one stream)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_millis(record.created),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return _ENCODER.encode(entry)


# json.dumps(entry, ensure_ascii=False, default=str) builds an encoder per call; one does for every line.
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=str)


_last_second: list[Any] = [None, ""]


def _utc_millis(created: float) -> str:
    """`2026-12-07T04:32:48.123Z`; the part up to the second is formatted once per second."""
    micros = round(created * 1_000_000)  # as datetime.fromtimestamp rounds
    second, millis = micros // 1_000_000, micros // 1000 % 1000
    if _last_second[0] != second:
        _last_second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _last_second[0] = second
    return f"{_last_second[1]}.{millis:03d}Z"


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} request_id={request_id}" if request_id else line


# This process's id for the access lines (LogRecord asks the kernel on every record); a forked child updates it.
_pid = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _pid.__setitem__(0, os.getpid()))

# The handler configure_logging installed when it writes JSON, and its filters (see AccessLog).
_json_handler: list[logging.StreamHandler | None] = [None]
_json_filters: list[Any] = []


class AccessLog:
    """The access line of a request: `"%s %s %s %.1f ms"` (method, path, status, milliseconds) with the fields
    method, path, route, status and duration_ms, on the logger `gatewaycerts.access`.

    While logging is exactly as `configure_logging(..., "json")` left it (its one JSON handler on the root, the
    access logger with no handler or filter of its own, the level letting the line through), the line is built
    and written directly: the same JSON object, key for key and in the same order, as JsonFormatter makes of
    the LogRecord, one `write` and `flush` under the handler's lock as StreamHandler does, without building a
    LogRecord and running the generic formatter over it (a quarter of a small request's CPU went there). Under
    any other configuration (text format, a test's capturing handler, a handler added by an operator) the line
    goes through `logging` as any record does; the same if the direct write fails, so that logging's own
    error handling reports it."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def _direct(self, level: int) -> logging.StreamHandler | None:
        handler = _json_handler[0]
        logger = self.logger
        if (
            handler is None
            or logger.handlers
            or logger.filters
            or not logger.propagate
            or logger.disabled
            or not logger.isEnabledFor(level)
            or level < handler.level
            or handler.filters != _json_filters
            or type(handler.formatter) is not JsonFormatter
        ):
            return None
        parent = logger.parent
        while parent is not None and parent is not logging.root:  # e.g. "gatewaycerts": no handler, propagating
            if parent.handlers or not parent.propagate:
                return None
            parent = parent.parent
        handlers = logging.root.handlers
        return handler if len(handlers) == 1 and handlers[0] is handler else None

    def log(self, level: int, method: str, path: str, route: str, status: int, seconds: float) -> None:
        millis = seconds * 1000
        handler = self._direct(level)
        if handler is not None:
            request_id = request_id_var.get()
            entry: dict[str, Any] = {
                "time": _utc_millis(time.time()),
                "level": logging.getLevelName(level),
                "logger": self.logger.name,
                "pid": _pid[0],
                "message": f"{method} {path} {status} {millis:.1f} ms",  # what "%s %s %s %.1f ms" % (...) gives
            }
            if request_id:
                entry["request_id"] = request_id
            entry["method"], entry["path"], entry["route"] = method, path, route
            entry["status"], entry["duration_ms"] = status, round(millis, 2)
            try:
                line = _ENCODER.encode(entry) + handler.terminator
                with handler.lock:  # type: ignore[union-attr]
                    handler.stream.write(line)
                    handler.flush()
                return
            except Exception:  # noqa: BLE001, S110 - logging's own path below reports it (handleError)
                pass
        self.logger.log(
            level,
            "%s %s %s %.1f ms",
            method,
            path,
            status,
            millis,
            extra={"method": method, "path": path, "route": route, "status": status, "duration_ms": round(millis, 2)},
        )


def configure_logging(level: str, fmt: str) -> None:
    """Replace the root logger's handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(ClientProtocolErrorFilter())
    _json_handler[0] = handler if fmt == "json" else None
    _json_filters[:] = handler.filters
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # No formatter of ours prints where a call was made from, or the thread or process name: skip
    # collecting them for every record (the logging HOWTO's "Optimization"; the pid stays).
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logMultiprocessing = False
