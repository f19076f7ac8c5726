"""Log configuration: readable text or one JSON object per line, each record tagged with the request id.

The request id lives in a context variable (`core.context`, so that the audit trail reads it too) that the
request-id middleware sets, so every record logged while a request is handled (by any module, on the event
loop) carries it without being passed around.
"""

from __future__ import annotations

import json
import logging
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


def configure_logging(level: str, fmt: str) -> None:
    """Replace the root logger's handlers with one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(ClientProtocolErrorFilter())
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
