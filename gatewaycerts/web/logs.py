"""Log configuration: readable text or one JSON object per line, each record tagged with the request id.

The request id lives in a context variable (`core.context`, so that the audit trail reads it too) that the
request-id middleware sets, so every record logged while a request is handled (by any module, on the event
loop) carries it without being passed around.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import select
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

from gatewaycerts.core.context import request_id_var

# An access line's fields, as AccessLog.made takes them: created (time.time()), request id, level, method, path,
# route, status, milliseconds.
AccessItem = tuple[float, str | None, int, str, str, str, int, float]

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
_esc = json.encoder.encode_basestring  # the string escape of an encoder with ensure_ascii=False


def _float_repr(value: float) -> str:
    """A float as the JSON encoder writes it (float.__repr__; NaN and infinities as JSON's extensions)."""
    if value != value:  # NaN
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


_INF = float("inf")


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

# Access lines wait in memory at most this long, and this many characters, before they are written (nginx's
# `access_log ... buffer=64k flush=100ms`): a crash (SIGKILL, OOM kill) loses at most the lines of the last
# ACCESS_FLUSH_SECONDS, and never more than ACCESS_BUFFER_CHARS of them; every other record, a flush and a
# normal exit write them first (docs/operations.md, "Access log buffering").
ACCESS_FLUSH_SECONDS = 0.1
ACCESS_BUFFER_CHARS = 64 * 1024
# One write of at most PIPE_BUF bytes to a pipe is atomic: the workers of `serve --workers N` share stderr,
# and a longer write could be interleaved with another worker's line.
_ATOMIC_WRITE = select.PIPE_BUF


class JsonStreamHandler(logging.StreamHandler):
    """The JSON handler of `configure_logging`: a StreamHandler that also takes ready-made access lines
    (`write_line`) into a buffer, written when ACCESS_FLUSH_SECONDS have passed since the first of them (a
    timer on the running event loop), when the buffer holds ACCESS_BUFFER_CHARS, before any other record
    (so the stream keeps the order in which lines were logged), and on `flush()` (which `logging.shutdown`
    calls at exit). Each write is of whole lines and at most PIPE_BUF bytes. Outside an event loop, or with
    `flush_seconds` 0, a line is written at once, as StreamHandler writes a record."""

    def __init__(
        self,
        stream: Any = None,
        *,
        flush_seconds: float = ACCESS_FLUSH_SECONDS,
        max_chars: int = ACCESS_BUFFER_CHARS,
    ) -> None:
        super().__init__(stream)
        self.flush_seconds = flush_seconds
        self.max_chars = max_chars
        self._pending: list[str] = []
        self._pending_chars = 0
        self._timer_loop: asyncio.AbstractEventLoop | None = None

    def write_line(self, line: str) -> None:
        """Write one whole line (ending in the terminator), buffered as the class says."""
        with self.lock:  # type: ignore[union-attr]
            if self.flush_seconds <= 0:
                self._write_pending()
                self.stream.write(line)
                self.stream.flush()
                return
            self._buffer(line, len(line) if line.isascii() else 4 * len(line))  # at most 4 UTF-8 bytes each

    def write_access(self, access: AccessLog, item: AccessItem) -> None:
        """The access line `access.made(item, terminator)`, buffered as the class says, and made when the buffer
        is written: the lines of a buffer are then made one after the other, instead of one in each request.
        Without a flush interval the line is made now and written as `write_line` writes it."""
        with self.lock:  # type: ignore[union-attr]
            if self.flush_seconds <= 0:
                self.write_line(access.made(item, self.terminator))  # the lock is reentrant
                return
            self._buffer((access, item), access.bound(item))

    def _buffer(self, entry: str | tuple[AccessLog, AccessItem], size: int) -> None:
        """Keep `entry` (a line, or an access line's fields) of at most `size` UTF-8 bytes (the lock is held)."""
        self._pending.append(entry)
        self._pending_chars += size
        if self._pending_chars >= self.max_chars:
            self._write_pending()
            return
        timer_loop = self._timer_loop
        if timer_loop is not None and timer_loop.is_running():
            # The timer set for the first pending line will write this one too. Asked before the running
            # loop: on Python 3.11 every asyncio._get_running_loop() is a getpid() system call.
            return
        loop = asyncio._get_running_loop()
        if loop is None:
            self._write_pending()
        elif self._timer_loop is not loop:  # no timer yet on this loop (or one on a loop now gone)
            self._timer_loop = loop
            loop.call_later(self.flush_seconds, self._timer_fired)

    def _timer_fired(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._timer_loop = None
            self._write_pending()

    def _write_pending(self) -> None:
        """Write the buffered lines in writes of at most _ATOMIC_WRITE bytes (the lock is held)."""
        pending = self._pending
        if not pending:
            return
        self._pending, self._pending_chars = [], 0
        stream, end = self.stream, self.terminator
        chunk: list[str] = []
        size = 0
        for entry in pending:
            line = entry if type(entry) is str else entry[0].made(entry[1], end)
            n = len(line) if line.isascii() else 4 * len(line)
            if chunk and size + n > _ATOMIC_WRITE:
                stream.write("".join(chunk))
                stream.flush()
                chunk, size = [], 0
            chunk.append(line)
            size += n
        stream.write("".join(chunk))
        stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        if self._pending:  # Handler.handle holds the lock
            self._write_pending()
        super().emit(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            if self._pending:
                self._write_pending()
        super().flush()

    def forget_pending(self) -> None:
        """In a forked child: the lines buffered are the parent's to write."""
        self._pending, self._pending_chars, self._timer_loop = [], 0, None


# The handler configure_logging installed when it writes JSON, and its filters (see AccessLog).
_json_handler: list[logging.StreamHandler | None] = [None]


def _before_fork() -> None:
    handler = _json_handler[0]
    if isinstance(handler, JsonStreamHandler):
        handler.flush()


def _after_fork_in_child() -> None:
    handler = _json_handler[0]
    if isinstance(handler, JsonStreamHandler):
        handler.forget_pending()


os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
_json_filters: list[Any] = []


class AccessLog:
    """The access line of a request: `"%s %s %s %.1f ms"` (method, path, status, milliseconds) with the fields
    method, path, route, status and duration_ms, on the logger `gatewaycerts.access`.

    While logging is exactly as `configure_logging(..., "json")` left it (its one JSON handler on the root, the
    access logger with no handler or filter of its own, the level letting the line through), the line is built
    and written directly: the same JSON object, key for key and in the same order, as JsonFormatter makes of
    the LogRecord, handed to the handler's `write_line` (JsonStreamHandler: buffered for at most
    ACCESS_FLUSH_SECONDS, written in order with every other record), without building a LogRecord and running
    the generic formatter over it (a quarter of a small request's CPU went there). Under
    any other configuration (text format, a test's capturing handler, a handler added by an operator) the line
    goes through `logging` as any record does; the same if the direct write fails, so that logging's own
    error handling reports it."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._heads: dict[tuple[int, int], str] = {}
        # A line's text besides its method, path, route and request id is at most this long: the keys and
        # punctuation (~120), the time (24), a level name (<= 10 for the standard ones), the pid (<= 7 digits),
        # the status twice, the milliseconds twice (<= 40 each below 1e20 ms), and the logger's name escaped.
        self._fixed = 320 + 6 * len(logger.name)

    def entry(self, level: int, method: str, path: str, route: str, status: int, millis: float) -> dict[str, Any]:
        """The line's JSON object, as JsonFormatter makes it of the access record (the reference for `line`)."""
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
        return entry

    def line(self, level: int, method: str, path: str, route: str, status: int, millis: float) -> str:
        """`_ENCODER.encode(self.entry(...))`, character for character, without building the dict and walking
        it: the fixed keys are text here, each string value is escaped by the encoder's own function
        (json.encoder.encode_basestring, as `ensure_ascii=False` uses), numbers are written by the `repr` the
        encoder uses (int.__repr__, float.__repr__). A value of another type raises TypeError (then the
        caller takes logging's own path)."""
        return self._line(level, method, path, route, status, millis, "")

    def _line(self, level: int, method: str, path: str, route: str, status: int, millis: float, end: str) -> str:
        """`line(...) + end`, of a request logged now."""
        return self.made((time.time(), request_id_var.get(), level, method, path, route, status, millis), end)

    def bound(self, item: AccessItem) -> int:
        """At least the UTF-8 length of `made(item, "\\n")`, from the fields' lengths alone (an escaped character
        is at most 6 bytes: `\\u001f`; the method and the path are written twice)."""
        _, request_id, _, method, path, route, _, _ = item
        return self._fixed + 6 * (2 * (len(method) + len(path)) + len(route) + (len(request_id) if request_id else 0))

    def made(self, item: AccessItem, end: str) -> str:
        """The line of `item` (created, request id, level, method, path, route, status, milliseconds) + `end`.
        The message is not escaped as a whole: the escape maps each character on its own, so the escaped method
        and path (without their quotes) joined by the message's spaces, digits and letters are its escape; the
        time (`_utc_millis`) and the float's repr are written out here."""
        created, request_id, level, method, path, route, status, millis = item
        pid = _pid[0]
        head = self._heads.get((level, pid))
        if head is None:
            head = self._heads[(level, pid)] = (
                f'"level": {_esc(logging.getLevelName(level))}, "logger": {_esc(self.logger.name)}, '
                f'"pid": {int.__repr__(pid)}, "message": '
            )
        esc = _esc
        m, p, code = esc(method), esc(path), int.__repr__(status)
        rid = f'"request_id": {esc(request_id)}, ' if request_id else ""
        rounded = round(millis, 2)
        duration = float.__repr__(rounded) if rounded - rounded == 0 else _float_repr(rounded)  # finite: repr
        micros = round(created * 1_000_000)  # _utc_millis, written out
        second = micros // 1_000_000
        if _last_second[0] != second:
            _last_second[1] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            _last_second[0] = second
        return (
            f'{{"time": "{_last_second[1]}.{micros // 1000 % 1000:03d}Z", {head}{m[:-1]} {p[1:-1]} {code} '
            f'{millis:.1f} ms", {rid}"method": {m}, "path": {p}, "route": {esc(route)}, "status": {code}, '
            f'"duration_ms": {duration}}}{end}'
        )

    def _direct(self, level: int) -> logging.StreamHandler | None:
        """The handler to write a line of `level` to directly, or None for logging's own path. Only for a level
        the logger is enabled for (log() asks that first)."""
        handler = _json_handler[0]
        logger = self.logger
        if (
            handler is None
            or logger.handlers
            or logger.filters
            or not logger.propagate
            or logger.disabled
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
        if not self.logger.isEnabledFor(level):
            return  # what Logger.log would decide first (e.g. GATEWAYCERTS_LOG_LEVEL=WARNING): nothing to build
        millis = seconds * 1000
        handler = self._direct(level)
        if handler is not None:
            try:
                if isinstance(handler, JsonStreamHandler):
                    request_id = request_id_var.get()
                    if (
                        type(method) is str
                        and type(path) is str
                        and type(route) is str
                        and type(status) is int
                        and type(millis) is float
                        and type(level) is int
                        and (request_id is None or type(request_id) is str)
                    ):  # values `made` writes whatever they hold: the line is made when the buffer is written
                        handler.write_access(
                            self, (time.time(), request_id, level, method, path, route, status, millis)
                        )
                    else:  # made now: a value it cannot write raises here, and logging's own path reports it
                        handler.write_line(self._line(level, method, path, route, status, millis, handler.terminator))
                else:
                    line = self._line(level, method, path, route, status, millis, handler.terminator)
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
    handler = JsonStreamHandler(sys.stderr) if fmt == "json" else logging.StreamHandler(sys.stderr)
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
