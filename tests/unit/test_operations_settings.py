"""Operational settings, the production refusal of development keys, JSON logs, the SQLite expiry migration."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import subprocess
import sys

import pytest

from gatewaycerts.app import create_app
from gatewaycerts.keyvault import new_kek_line
from gatewaycerts.settings import Settings, SettingsError
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.web.logs import JsonFormatter, RequestIdFilter, configure_logging, request_id_var
from tests.contract.test_certificate_store import T0, make


def test_operational_settings_parse_and_refuse_bad_values():
    s = Settings.from_env(
        {
            "GATEWAYCERTS_LOG_FORMAT": "JSON",
            "GATEWAYCERTS_LOG_LEVEL": "warning",
            "GATEWAYCERTS_ALLOW_DEV_KEYS": "false",
            "GATEWAYCERTS_METRICS_ENABLED": "no",
            "GATEWAYCERTS_SHUTDOWN_TIMEOUT": "40",
            "GATEWAYCERTS_RSA_KEY_CHECK": "OpenSSL",
        }
    )
    assert s.rsa_key_check == "openssl" and Settings.from_env({}).rsa_key_check == "arithmetic"
    assert (s.log_format, s.log_level, s.allow_dev_keys, s.metrics_enabled, s.shutdown_timeout) == (
        "json",
        "WARNING",
        False,
        False,
        40,
    )
    defaults = Settings.from_env({})
    assert (defaults.log_format, defaults.allow_dev_keys, defaults.metrics_enabled, defaults.shutdown_timeout) == (
        "text",
        True,
        True,
        25,
    )
    for env, variable in (
        ({"GATEWAYCERTS_LOG_FORMAT": "yaml"}, "GATEWAYCERTS_LOG_FORMAT"),
        ({"GATEWAYCERTS_LOG_LEVEL": "LOUD"}, "GATEWAYCERTS_LOG_LEVEL"),
        ({"GATEWAYCERTS_ALLOW_DEV_KEYS": "maybe"}, "GATEWAYCERTS_ALLOW_DEV_KEYS"),
        ({"GATEWAYCERTS_METRICS_ENABLED": "2"}, "GATEWAYCERTS_METRICS_ENABLED"),
        ({"GATEWAYCERTS_SHUTDOWN_TIMEOUT": "-1"}, "GATEWAYCERTS_SHUTDOWN_TIMEOUT"),
        ({"GATEWAYCERTS_RSA_KEY_CHECK": "none"}, "GATEWAYCERTS_RSA_KEY_CHECK"),
        ({"GATEWAYCERTS_EVENT_LOOP": "trio"}, "GATEWAYCERTS_EVENT_LOOP"),
    ):
        with pytest.raises(SettingsError, match=variable):
            Settings.from_env(env)


def test_production_mode_refuses_development_keys(tmp_path):
    kek = new_kek_line("k1")
    strict = Settings(state_dir=tmp_path / "state", allow_dev_keys=False)
    with pytest.raises(SettingsError, match="GATEWAYCERTS_KEK_FILE"):
        create_app(strict)
    with pytest.raises(SettingsError, match="GATEWAYCERTS_JWT_JWKS_URL"):
        create_app(Settings(state_dir=tmp_path / "state", allow_dev_keys=False, kek=kek))
    # nothing was generated in the state dir
    assert not (tmp_path / "state" / "dev-kek").exists()
    assert not list((tmp_path / "state").glob("dev-jwt*"))


def test_serve_refuses_development_keys_with_a_one_line_message(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "GATEWAYCERTS_STATE_DIR": str(tmp_path),
        "GATEWAYCERTS_ALLOW_DEV_KEYS": "false",
        "GATEWAYCERTS_KEK": new_kek_line("k1"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "serve"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 1
    assert "gatewaycerts: no JWT key source" in out.stderr and "Traceback" not in out.stderr
    assert env["GATEWAYCERTS_KEK"].split(":")[1] not in out.stderr


def test_json_log_lines_carry_request_id_and_extra_fields():
    record = logging.makeLogRecord(
        {"name": "gatewaycerts.access", "levelno": 20, "levelname": "INFO", "msg": "GET %s", "args": ("/x",)}
    )
    record.status = 200
    token = request_id_var.set("req-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "GET /x" and line["request_id"] == "req-1" and line["status"] == 200
    assert line["level"] == "INFO" and line["logger"] == "gatewaycerts.access" and line["time"].endswith("Z")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.makeLogRecord({"msg": "failed", "levelname": "ERROR", "exc_info": sys.exc_info()})
    line = json.loads(JsonFormatter().format(record))
    assert "request_id" not in line and "ValueError: boom" in line["exception"]


def test_configure_logging_writes_json_to_stderr(capsys):
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging("INFO", "json")
        logging.getLogger("gatewaycerts.test").info("hello %s", "world", extra={"project_id": "p1"})
        logging.getLogger("gatewaycerts.test").debug("not shown")
        lines = capsys.readouterr().err.strip().splitlines()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert [json.loads(x)["message"] for x in lines] == ["hello world"]
    assert json.loads(lines[0])["project_id"] == "p1"


def test_sqlite_store_from_before_expiry_metrics_is_migrated(tmp_path):
    async def scenario() -> dict:
        path = tmp_path / "old.db"
        store = SqliteCertificateStore(path)
        await store.ensure_schema()
        await store.insert(make("c1"))  # not_after = T0 + 90 days
        await store._run(
            lambda conn: conn.executescript(
                "DROP INDEX certificates_expiry; DROP INDEX certificates_by_expiry; "
                "ALTER TABLE certificates DROP COLUMN not_after;"
            )
        )
        await store.close()
        reopened = SqliteCertificateStore(path)
        await reopened.ensure_schema()
        try:
            return await reopened.count_expiring([T0 + dt.timedelta(days=89), T0 + dt.timedelta(days=91)])
        finally:
            await reopened.close()

    assert asyncio.run(scenario()) == {"p1": (0, 1)}


def test_unparsable_client_requests_are_logged_as_one_warning_line():
    """aiohttp answers 400 itself and logs the parser's exception with a traceback; we keep one line."""
    import logging

    from aiohttp.http_exceptions import BadHttpMessage

    from gatewaycerts.web.logs import ClientProtocolErrorFilter, TextFormatter

    try:
        raise BadHttpMessage("Invalid header value char:\n\n  b'X-Probe: \\x00'")
    except BadHttpMessage:
        import sys

        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, "p", 1, "Error handling request", (), sys.exc_info()
        )
    assert ClientProtocolErrorFilter().filter(record)
    line = TextFormatter().format(record)
    assert (
        record.levelname == "WARNING"
        and "Traceback" not in line
        and "bad HTTP request: Invalid header value char" in line
    )
    server_bug = logging.LogRecord(
        "aiohttp.server", logging.ERROR, "p", 1, "boom", (), (RuntimeError, RuntimeError("x"), None)
    )
    assert ClientProtocolErrorFilter().filter(server_bug) and server_bug.levelname == "ERROR" and server_bug.exc_info


def test_the_event_loop_is_uvloop_unless_asyncio_is_asked_for():
    import asyncio

    import uvloop

    from gatewaycerts.cli import _loop_factory

    assert Settings.from_env({}).event_loop == "auto"
    assert _loop_factory("asyncio") is None
    for choice in ("auto", "uvloop"):
        factory = _loop_factory(choice)
        assert factory is uvloop.new_event_loop
        loop = factory()
        try:
            assert isinstance(loop, asyncio.AbstractEventLoop) and type(loop).__module__.startswith("uvloop")
        finally:
            loop.close()
