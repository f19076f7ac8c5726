"""SQLite adapters of delivery to gateways: change counters kept by triggers, binding keys, delivery marks,
and gateway keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.models import Certificate
from gatewaycerts.store.sqlite.base import SqliteBase, SqliteDatabase, sort_key, transaction
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore

# Change-log entries kept per project (at least; a watcher further behind reloads the whole project, as on
# MongoDB), dropped TRIM_EVERY numbers at a time: a range delete at every write cost ~4 µs of a write's
# ~27 µs of SQL in bench/bench_delivery_log.py, one every 64 numbers ~0.3 µs.
KEEP = 1000
TRIM_EVERY = 64

# A write that changes what a gateway receives moves the project's counter and logs the new number with the
# certificate it names (NULL: something else delivery depends on, such as a gateway key); every TRIM_EVERY
# numbers it drops the entries KEEP numbers back and older. SQLite writes one at a time, so the numbers are
# contiguous: a hole (or an entry already dropped) tells a reader to reload the project instead.
_BUMP = (
    "INSERT INTO delivery_changes (project_id, n) VALUES ({row}.project_id, 1) "
    "ON CONFLICT (project_id) DO UPDATE SET n = n + 1; "
    "INSERT OR REPLACE INTO delivery_log (project_id, n, cert_id) "
    "SELECT project_id, n, {cert} FROM delivery_changes WHERE project_id = {row}.project_id; "
    "DELETE FROM delivery_log WHERE project_id = {row}.project_id AND n <= "
    "(SELECT n FROM delivery_changes WHERE project_id = {row}.project_id AND n % {every} = 0) - {keep};"
)

# The counters move in the same transaction as the write that changes what a gateway receives, whoever
# writes (this process, another replica, `rotate-kek`): a watcher that reads a counter then the records
# never misses a change. Writes of certificates that are bound neither before nor after move nothing.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS delivery_changes (project_id TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_log (
    project_id TEXT NOT NULL,
    n INTEGER NOT NULL,
    cert_id TEXT,
    PRIMARY KEY (project_id, n)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS delivery_marks (
    project_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    cert_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (project_id, instance_id, cert_id, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS binding_keys (
    project_id TEXT NOT NULL,
    key TEXT NOT NULL,
    cert_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (project_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gateway_keys (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    instance_id TEXT NOT NULL,
    secret_sha256 BLOB NOT NULL,
    create_time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS gateway_keys_by_instance ON gateway_keys (project_id, instance_id, create_time);
CREATE INDEX IF NOT EXISTS certificates_bound ON certificates (project_id) WHERE binding_count > 0;
"""

_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS certificates_delivery_logged_insert AFTER INSERT ON certificates "
    f"WHEN NEW.binding_count > 0 BEGIN {_BUMP.format(row='NEW', cert='NEW.id', keep=KEEP, every=TRIM_EVERY)} END",
    "CREATE TRIGGER IF NOT EXISTS certificates_delivery_logged_update AFTER UPDATE ON certificates "
    "WHEN OLD.binding_count > 0 OR NEW.binding_count > 0 "
    f"BEGIN {_BUMP.format(row='NEW', cert='NEW.id', keep=KEEP, every=TRIM_EVERY)} END",
    "CREATE TRIGGER IF NOT EXISTS certificates_delivery_logged_delete AFTER DELETE ON certificates "
    f"WHEN OLD.binding_count > 0 BEGIN {_BUMP.format(row='OLD', cert='OLD.id', keep=KEEP, every=TRIM_EVERY)} END",
    "CREATE TRIGGER IF NOT EXISTS gateway_keys_delivery_logged_insert AFTER INSERT ON gateway_keys "
    f"BEGIN {_BUMP.format(row='NEW', cert='NULL', keep=KEEP, every=TRIM_EVERY)} END",
    "CREATE TRIGGER IF NOT EXISTS gateway_keys_delivery_logged_delete AFTER DELETE ON gateway_keys "
    f"BEGIN {_BUMP.format(row='OLD', cert='NULL', keep=KEEP, every=TRIM_EVERY)} END",
)
# The triggers of the versions before the change log (a counter, no log entry). A process of such a version
# starting later creates them again beside these: the counter then moves twice per write and the log has
# holes, so watchers reload whole projects, as that version does; nothing is missed.
_UNLOGGED_TRIGGERS = (
    "certificates_delivery_insert",
    "certificates_delivery_update",
    "certificates_delivery_delete",
    "gateway_keys_delivery_insert",
    "gateway_keys_delivery_delete",
)


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(_SCHEMA)
    # One transaction: no write commits between the old triggers' removal and the new ones without moving
    # the counter.
    with transaction(conn):
        for name in _UNLOGGED_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        for sql in _TRIGGERS:
            conn.execute(sql)


_CHUNK = 500


class _Borrowing(SqliteBase):
    """A store on the certificate store's database that leaves opening and closing it to that store."""

    def __init__(self, database: SqliteDatabase) -> None:
        self._db = database
        self._closed = False

    async def close(self) -> None:
        self._closed = True


class SqliteDeliveryStore(_Borrowing):
    async def ensure_schema(self) -> None:
        await self._run_alone(_create_schema)

    async def bound_certificates(self, project_id: str) -> list[Certificate]:
        def op(conn: sqlite3.Connection) -> list[Certificate]:
            rows = conn.execute(
                "SELECT summary, heavy, private_key FROM certificates INDEXED BY certificates_bound "
                "WHERE project_id = ? AND binding_count > 0",
                (project_id,),
            ).fetchall()
            return [SqliteCertificateStore._from_row(*row) for row in rows]

        return await self._read(op)

    async def change_counters(self, project_ids: Sequence[str]) -> dict[str, int]:
        ids = list(project_ids)

        def op(conn: sqlite3.Connection) -> dict[str, int]:
            out: dict[str, int] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                out.update(
                    conn.execute(
                        f"SELECT project_id, n FROM delivery_changes WHERE project_id IN ({marks})",  # noqa: S608
                        chunk,
                    ).fetchall()
                )
            return out

        return await self._read(op)

    async def changed_certificates(self, project_id: str, after: int, latest: int) -> list[str] | None:
        # The log, not a read of the project's bound certificates: decoding 2,000 of them took 110-130 ms of
        # a reader thread's CPU, holding the GIL, after every change (docs/performance.md, "Stop 29: prop").
        def op(conn: sqlite3.Connection) -> list[str] | None:
            rows = conn.execute(
                "SELECT n, cert_id FROM delivery_log WHERE project_id = ? AND n > ? ORDER BY n", (project_id, after)
            ).fetchall()
            names: list[str] = []
            seq = after
            for n, cert_id in rows:
                if n != seq + 1:
                    return None  # a hole: entries dropped, or written by a version without the log
                seq = n
                if cert_id is not None:
                    names.append(cert_id)
            return list(dict.fromkeys(names)) if seq >= latest else None

        return await self._read(op)

    async def certificates(self, project_id: str, cert_ids: Sequence[str]) -> list[Certificate]:
        ids = list(dict.fromkeys(cert_ids))

        def op(conn: sqlite3.Connection) -> list[Certificate]:
            out = []
            for cert_id in ids:
                row = conn.execute(
                    "SELECT summary, heavy, private_key FROM certificates WHERE id = ? AND project_id = ?",
                    (cert_id, project_id),
                ).fetchone()
                if row is not None:
                    out.append(SqliteCertificateStore._from_row(*row))
            return out

        return await self._read(op)

    async def mark_delivered(self, project_id: str, instance_id: str, cert_id: str, revision: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO delivery_marks VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (project_id, instance_id, cert_id, revision),
            )
            return cur.rowcount == 1

        return await self._run(op)

    async def claim_binding_keys(
        self, project_id: str, cert_id: str, keys: Sequence[str], at: datetime
    ) -> dict[str, str]:
        wanted = list(dict.fromkeys(keys))

        def op(conn: sqlite3.Connection) -> dict[str, str]:
            with transaction(conn):
                taken: dict[str, str] = {}
                for key in wanted:
                    row = conn.execute(
                        "SELECT cert_id FROM binding_keys WHERE project_id = ? AND key = ?", (project_id, key)
                    ).fetchone()
                    if row is not None and row[0] != cert_id:
                        taken[key] = row[0]
                if taken:
                    return taken
                conn.executemany(
                    "INSERT INTO binding_keys VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(project_id, key, cert_id, sort_key(at)) for key in wanted],
                )
                return {}

        return await self._run_point(op)

    async def release_binding_keys(self, project_id: str, cert_id: str, keys: Sequence[str]) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "DELETE FROM binding_keys WHERE project_id = ? AND key = ? AND cert_id = ?",
                [(project_id, key, cert_id) for key in dict.fromkeys(keys)],
            )

        await self._run_point(op)

    async def take_over_binding_key(
        self, project_id: str, key: str, stale_holder: str, cert_id: str, claimed_before: datetime, at: datetime
    ) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE binding_keys SET cert_id = ?, at = ? WHERE project_id = ? AND key = ? AND cert_id = ? "
                "AND at < ?",
                (cert_id, sort_key(at), project_id, key, stale_holder, sort_key(claimed_before)),
            )
            return cur.rowcount == 1

        return await self._run_point(op)


def _key_from_row(row: tuple) -> GatewayKey:
    key_id, project_id, instance_id, secret, created = row
    return GatewayKey(
        id=key_id,
        project_id=project_id,
        instance_id=instance_id,
        secret_sha256=bytes(secret),
        create_time=datetime.strptime(created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
    )


class SqliteGatewayKeyStore(_Borrowing):
    async def ensure_schema(self) -> None:
        await self._run_alone(_create_schema)

    async def insert_key(self, key: GatewayKey) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO gateway_keys VALUES (?, ?, ?, ?, ?)",
                (key.id, key.project_id, key.instance_id, key.secret_sha256, sort_key(key.create_time)),
            )

        await self._run(op)

    async def get_key(self, key_id: str) -> GatewayKey | None:
        def op(conn: sqlite3.Connection) -> GatewayKey | None:
            row = conn.execute("SELECT * FROM gateway_keys WHERE id = ?", (key_id,)).fetchone()
            return None if row is None else _key_from_row(row)

        return await self._read(op)

    async def list_keys(self, project_id: str, instance_id: str) -> list[GatewayKey]:
        def op(conn: sqlite3.Connection) -> list[GatewayKey]:
            rows = conn.execute(
                "SELECT * FROM gateway_keys WHERE project_id = ? AND instance_id = ? ORDER BY create_time, id",
                (project_id, instance_id),
            ).fetchall()
            return [_key_from_row(r) for r in rows]

        return await self._read(op)

    async def delete_key(self, project_id: str, instance_id: str, key_id: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM gateway_keys WHERE id = ? AND project_id = ? AND instance_id = ?",
                (key_id, project_id, instance_id),
            )
            return cur.rowcount == 1

        return await self._run(op)
