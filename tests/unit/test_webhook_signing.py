"""Standard Webhooks signing as the specification states it, the secret format, and the pure rules of
core/notifications (URL checks with the real address guard, expiry thresholds, the event body)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import pytest

from gatewaycerts.connectors.addresses import AddressPolicy, parse_networks
from gatewaycerts.connectors.webhooks import secret_key, signature, signed_headers
from gatewaycerts.core.notifications import check_url, event_body, expiry_threshold, new_secret
from gatewaycerts.domain.errors import WebhookUrlError

# The example of the Standard Webhooks specification and its reference libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID, TIMESTAMP, BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'


def test_signature_is_the_specifications_example():
    assert signature(SECRET, MSG_ID, TIMESTAMP, BODY) == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_by_hand_per_the_specification():
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    mac = hmac.new(key, f"{MSG_ID}.{TIMESTAMP}.".encode() + BODY, hashlib.sha256).digest()
    assert signature(SECRET, MSG_ID, TIMESTAMP, BODY) == "v1," + base64.b64encode(mac).decode()
    headers = signed_headers(SECRET, MSG_ID, TIMESTAMP, BODY)
    assert headers["webhook-id"] == MSG_ID and headers["webhook-timestamp"] == "1614265330"
    assert headers["webhook-signature"].startswith("v1,") and headers["Content-Type"] == "application/json"


def test_new_secrets_are_whsec_and_24_or_more_random_bytes():
    a, b = new_secret(), new_secret()
    assert a != b and a.startswith("whsec_") and len(secret_key(a)) >= 24
    with pytest.raises(ValueError):
        secret_key("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/h",
        "http://10.0.0.1/h",
        "http://192.168.1.1:8080/h",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/h",
        "http://[fe80::1]/h",
        "http://[::ffff:127.0.0.1]/h",
        "http://0.0.0.0/h",
        "http://100.64.0.1/h",
    ],
)
def test_ip_literals_in_forbidden_ranges_are_refused_at_creation(url):
    with pytest.raises(WebhookUrlError):
        check_url(url, AddressPolicy())


def test_the_operator_setting_allows_cidrs_and_names_are_checked_later():
    allowed = AddressPolicy(parse_networks("127.0.0.0/8"))
    assert check_url("http://127.0.0.1:8080/h", allowed) == "http://127.0.0.1:8080/h"
    assert check_url("https://internal.example/h", AddressPolicy()) == "https://internal.example/h"
    assert check_url("https://93.184.215.14/h", AddressPolicy())


@pytest.mark.parametrize(
    "url",
    [
        "",
        "ftp://a.example/",
        "https://user:pw@a.example/",
        "https://@a.example/",
        "https:///p",
        "https://a.example/#f",
        "https://a.example/\nx",
        "javascript:alert(1)",
        "https://a.example:0/",
        "https://a.example:65536/",
    ],
)
def test_malformed_urls_are_refused(url):
    with pytest.raises(WebhookUrlError):
        check_url(url, AddressPolicy())


def test_expiry_thresholds():
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    days = dt.timedelta(days=1)
    assert expiry_threshold(now + 31 * days, now) is None
    assert expiry_threshold(now + 30 * days, now) == 30
    assert expiry_threshold(now + 8 * days, now) == 30
    assert expiry_threshold(now + 7 * days, now) == 7
    assert expiry_threshold(now + days, now) == 1
    assert expiry_threshold(now, now) == 0 and expiry_threshold(now - days, now) == 0


def test_event_body_is_type_timestamp_data():
    at = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    body = json.loads(event_body("certificate.expired", at, {"not_after": at, "name": "é"}))
    assert body == {
        "type": "certificate.expired",
        "timestamp": "2026-01-02T03:04:05.000000Z",
        "data": {"not_after": "2026-01-02T03:04:05.000000Z", "name": "é"},
    }


def test_webhook_settings_are_parsed_and_checked():
    from gatewaycerts.settings import Settings, SettingsError

    default = Settings.from_env({})
    assert default.webhook_allowed_targets == () and len(default.webhook_retry_schedule) == 7
    assert sum(default.webhook_retry_schedule) > 24 * 3600  # 8 attempts over about a day
    custom = Settings.from_env(
        {"GATEWAYCERTS_WEBHOOK_ALLOWED_TARGETS": "127.0.0.1/8, ::1/128", "GATEWAYCERTS_WEBHOOK_RETRY_SCHEDULE": "0,1.5"}
    )
    assert custom.webhook_allowed_targets == ("127.0.0.0/8", "::1/128")
    assert custom.webhook_retry_schedule == (0.0, 1.5)
    for env, value in (
        ("GATEWAYCERTS_WEBHOOK_ALLOWED_TARGETS", "10.0.0.0/8,nope"),
        ("GATEWAYCERTS_WEBHOOK_RETRY_SCHEDULE", "5,x"),
        ("GATEWAYCERTS_WEBHOOK_RETRY_SCHEDULE", "-1"),
        ("GATEWAYCERTS_WEBHOOK_TIMEOUT", "0"),
    ):
        with pytest.raises(SettingsError, match=env):
            Settings.from_env({env: value})


def test_the_example_in_docs_webhooks_md_is_correctly_signed():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    example = doc.split("POST /your/path HTTP/1.1\n", 1)[1].split("```", 1)[0]
    head, body = example.split("\n\n", 1)
    headers = dict(line.split(": ", 1) for line in head.splitlines())
    got = signature(SECRET, headers["webhook-id"], int(headers["webhook-timestamp"]), body.strip("\n").encode())
    assert got == headers["webhook-signature"] and SECRET in doc
