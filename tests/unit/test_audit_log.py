"""The audit log's pure parts: details are bounded non-secret facts; markers round-trip and refuse forgeries."""

from __future__ import annotations

import datetime as dt

import pytest

from gatewaycerts.core.audit import MAX_DETAIL_TEXT, decode_marker, encode_marker, facts
from gatewaycerts.domain.audit import AuditMarker
from gatewaycerts.domain.errors import InvalidInputError
from gatewaycerts.domain.pca import CaStatus
from tests.factories import ec_chain


def test_details_keep_facts_and_never_a_pem_block():
    key = ec_chain().leaf.key_pem()
    got = facts(
        {
            "status": CaStatus.DISABLED,
            "serial_number": 2**158 + 1,  # a 159-bit serial: beyond what BSON and JSON readers keep as numbers
            "pending_days": 7,
            "compressed": False,
            "domains": ("a.example.com", "b.example.com"),
            "not_after": dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
            "left_out": None,
            "oops": f"a key slipped in: {key}",
            "long": "x" * 5000,
        }
    )
    assert got == {
        "status": "DISABLED",
        "serial_number": str(2**158 + 1),
        "pending_days": 7,
        "compressed": False,
        "domains": ["a.example.com", "b.example.com"],
        "not_after": "2030-01-02T03:04:05Z",
        "oops": "[redacted]",
        "long": "x" * MAX_DETAIL_TEXT,
    }


def test_a_marker_round_trips_to_the_microsecond():
    marker = AuditMarker(dt.datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC), "0123456789abcdef" * 2)
    assert decode_marker(encode_marker(marker)) == marker


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not base64!",
        "MTIz",
        encode_marker(AuditMarker(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "0" * 32))[:-2],
        "x" * 97,
    ],
)
def test_a_bad_marker_is_a_400_naming_next(text):
    with pytest.raises(InvalidInputError) as caught:
        decode_marker(text)
    assert caught.value.field == "next"
