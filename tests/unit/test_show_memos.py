"""The show's two memos: decoded summaries by their stored text (SQLite store) and presented bodies by record
object (APIC presenters). Both must answer exactly what decoding and presenting anew would, and stay bounded."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import orjson

from gatewaycerts.facades.apic.presenters import DetailBodies, cert_detail, iso
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.store.sqlite.summaries import SummaryMemo
from tests.contract.test_certificate_store import make


def _summary_text(cert) -> str:
    return SqliteCertificateStore._row(cert)["summary"]


def test_summary_memo_decodes_each_distinct_text_once():
    decoded: list[str] = []

    def decode(text: str):
        decoded.append(text)
        return SqliteCertificateStore._from_summary(text)

    memo = SummaryMemo(decode, kept=2)
    one, renamed = make("c1"), replace(make("c1"), name="renamed", revision=2)
    first = memo(_summary_text(one))
    assert memo(_summary_text(one)) is first and len(decoded) == 1
    assert first == replace(one, chain_pem="", encrypted_private_key=b"")
    changed = memo(_summary_text(renamed))
    assert changed.name == "renamed" and changed.revision == 2 and len(decoded) == 2
    memo(_summary_text(make("c2")))  # a third text: the oldest is dropped
    assert len(memo) == 2
    assert memo(_summary_text(one)) == first and len(decoded) == 4


def test_detail_bodies_are_the_presenters_bytes_for_that_very_object():
    bodies = DetailBodies(kept=2)
    summary = replace(make("c1"), chain_pem="", encrypted_private_key=b"")
    body = bodies(summary)
    assert body == orjson.dumps(cert_detail(summary))
    assert bodies(summary) is body  # kept
    equal_but_other = replace(summary)
    assert equal_but_other is not summary and bodies(equal_but_other) == body
    later = replace(summary, name="renamed", update_time=summary.update_time + dt.timedelta(seconds=1), revision=2)
    assert orjson.loads(bodies(later))["name"] == "renamed"
    assert len(bodies) == 2  # bounded: the oldest entry was dropped


def test_detail_bodies_never_keep_a_record_with_its_key_or_chain():
    bodies = DetailBodies()
    full = make("c1")  # carries a chain and an encrypted key
    assert bodies(full) == orjson.dumps(cert_detail(full))
    assert len(bodies) == 0


def test_iso_is_strftime_for_every_zone_though_equal_instants_compare_equal():
    instant = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.UTC)
    east = instant.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert east == instant and hash(east) == hash(instant)
    assert iso(instant) == "2026-01-01T00:00:00Z"
    assert iso(east) == east.strftime("%Y-%m-%dT%H:%M:%SZ") == "2026-01-01T08:00:00Z"
    assert iso(instant) == "2026-01-01T00:00:00Z"
