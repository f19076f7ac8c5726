"""The request readers' pure parts: the nesting bound, and one schema instance serving every load."""

from __future__ import annotations

import pytest

from gatewaycerts.domain.errors import InvalidInputError, MissingParameterError
from gatewaycerts.facades.apic import schemas as s
from gatewaycerts.web.requests import _depth_ok, load


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("[" * 32 + "]" * 32, True),
        ("[" * 33 + "]" * 33, False),
        ('{"a":' * 32 + "1" + "}" * 32, True),
        ('{"a":' * 33 + "1" + "}" * 33, False),
        ("[]" * 10_000, True),  # wide is fine, only deep is refused
        ('{"pem": "' + "x" * 5000 + '"}', True),
    ],
)
def test_nesting_bound(text, ok):
    assert _depth_ok(text) is ok


def test_one_schema_instance_keeps_no_state_between_loads():
    good = {"name": "shop_cert", "cert_content": "PEM", "private_key": "KEY"}
    with pytest.raises(MissingParameterError) as missing:
        load(s.CertificateCreateSchema, {"name": "shop_cert"})
    assert missing.value.field == "cert_content"
    loaded = load(s.CertificateCreateSchema, good)
    assert loaded["name"] == "shop_cert" and loaded["cert_content"] == "PEM"
    with pytest.raises(InvalidInputError):
        load(s.CertificateCreateSchema, {**good, "name": 7})
    assert load(s.CertificateCreateSchema, {**good, "name": "other"})["name"] == "other"
