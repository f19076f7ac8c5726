"""The SQLite delivery change log: the triggers that move a project's counter also log the certificate each
number names, the log keeps the last KEEP numbers, and a database made by a version without the log gets the
logging triggers in place of the old ones (on the real SQLite file)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
from dataclasses import replace

import pytest

from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.models import DomainBinding
from gatewaycerts.store.sqlite.base import SqliteDatabase
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.store.sqlite.delivery import (
    _UNLOGGED_TRIGGERS,
    KEEP,
    TRIM_EVERY,
    SqliteDeliveryStore,
    SqliteGatewayKeyStore,
)
from tests.contract.test_certificate_store import make

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

# What the versions before the change log created (store/sqlite/delivery.py of 3f439fa), for the upgrade test.
_OLD_BUMP = (
    "INSERT INTO delivery_changes (project_id, n) VALUES ({row}.project_id, 1) "
    "ON CONFLICT (project_id) DO UPDATE SET n = n + 1;"
)
_OLD_TRIGGERS = f"""
CREATE TRIGGER IF NOT EXISTS certificates_delivery_insert AFTER INSERT ON certificates
    WHEN NEW.binding_count > 0 BEGIN {_OLD_BUMP.format(row="NEW")} END;
CREATE TRIGGER IF NOT EXISTS certificates_delivery_update AFTER UPDATE ON certificates
    WHEN OLD.binding_count > 0 OR NEW.binding_count > 0 BEGIN {_OLD_BUMP.format(row="NEW")} END;
CREATE TRIGGER IF NOT EXISTS certificates_delivery_delete AFTER DELETE ON certificates
    WHEN OLD.binding_count > 0 BEGIN {_OLD_BUMP.format(row="OLD")} END;
CREATE TRIGGER IF NOT EXISTS gateway_keys_delivery_insert AFTER INSERT ON gateway_keys
    BEGIN {_OLD_BUMP.format(row="NEW")} END;
CREATE TRIGGER IF NOT EXISTS gateway_keys_delivery_delete AFTER DELETE ON gateway_keys
    BEGIN {_OLD_BUMP.format(row="OLD")} END;
"""


@pytest.fixture
async def stores(tmp_path):
    db = SqliteDatabase(tmp_path / "gatewaycerts.db")
    certificates = SqliteCertificateStore(db)
    await certificates.ensure_schema()
    deliveries, keys = SqliteDeliveryStore(db), SqliteGatewayKeyStore(db)
    await deliveries.ensure_schema()
    await keys.ensure_schema()
    yield tmp_path / "gatewaycerts.db", certificates, deliveries, keys
    await certificates.close()


def gateway_key(n: int) -> GatewayKey:
    return GatewayKey(f"k{n}", "p1", "gw1", bytes(32), T0 + dt.timedelta(seconds=n))


def triggers(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}


async def counter(deliveries) -> int:
    return (await deliveries.change_counters(["p1"])).get("p1", 0)


async def test_the_log_keeps_the_last_numbers_and_a_reader_further_behind_reloads(stores):
    _, certificates, deliveries, keys = stores
    total = KEEP + TRIM_EVERY + 5
    for start in range(0, total, 100):  # gateway keys: each insert moves the counter and logs no certificate
        await asyncio.gather(*(keys.insert_key(gateway_key(n)) for n in range(start, min(start + 100, total))))
    latest = await counter(deliveries)
    assert latest == total
    dropped = latest // TRIM_EVERY * TRIM_EVERY - KEEP  # the last trim dropped the numbers up to this one
    assert dropped > 0
    assert await deliveries.changed_certificates("p1", latest - KEEP, latest) == []  # KEEP back: still there
    assert await deliveries.changed_certificates("p1", dropped, latest) == []
    assert await deliveries.changed_certificates("p1", dropped - 1, latest) is None  # its next one dropped: reload
    assert await deliveries.changed_certificates("p1", 0, latest) is None
    cert = make("c1")
    await certificates.insert(cert)
    binding = DomainBinding("b1", "a.example.com", ("gw1",), False, T0)
    await certificates.replace(replace(cert, bindings=(binding,)), expected_revision=1)
    assert await counter(deliveries) == latest + 1  # one write, one number
    assert await deliveries.changed_certificates("p1", latest, latest + 1) == ["c1"]
    assert await deliveries.changed_certificates("p1", latest - 1, latest + 1) == ["c1"]
    assert await deliveries.changed_certificates("p1", latest + 1, latest + 2) is None  # not written yet


async def test_a_database_of_a_version_without_the_log_gets_the_logging_triggers(stores):
    path, certificates, deliveries, keys = stores
    with sqlite3.connect(path) as conn:  # the older version's triggers, as it left the file
        conn.executescript(
            "".join(f"DROP TRIGGER {name};" for name in triggers(path)) + _OLD_TRIGGERS + "DELETE FROM delivery_log;"
        )
    assert triggers(path) == set(_UNLOGGED_TRIGGERS)
    await keys.insert_key(gateway_key(1))  # counted, not logged
    before = await counter(deliveries)
    assert before == 1
    await deliveries.ensure_schema()  # this version starts on the file
    names = triggers(path)
    assert not names & set(_UNLOGGED_TRIGGERS)
    assert len(names) == len(_UNLOGGED_TRIGGERS)
    cert = make("c1")
    await certificates.insert(cert)
    binding = DomainBinding("b1", "a.example.com", ("gw1",), False, T0)
    await certificates.replace(replace(cert, bindings=(binding,)), expected_revision=1)
    assert await counter(deliveries) == before + 1  # one write moves it once: the old triggers are gone
    assert await deliveries.changed_certificates("p1", before, before + 1) == ["c1"]
    assert await deliveries.changed_certificates("p1", before - 1, before + 1) is None  # not logged: reload
