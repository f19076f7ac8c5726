"""An app closes every store it opened: no SQLite writer or reader thread outlives it (the test process used to end
with thousands of them), also when a caller gives some stores and the app builds the rest."""

import threading

from gatewaycerts.app import create_app
from gatewaycerts.settings import Settings
from gatewaycerts.store.sqlite.base import SqliteDatabase
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore


def _sqlite_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("sqlite-")}


async def _run_and_close(aiohttp_client, app) -> None:
    client = await aiohttp_client(app)
    resp = await client.get("/readyz")  # the lifecycle ran: schemas written, the writer and readers started
    assert resp.status == 200
    await client.close()


async def test_an_app_on_its_own_stores_leaves_no_sqlite_thread(aiohttp_client, tmp_path):
    before = _sqlite_threads()
    app = create_app(Settings(state_dir=tmp_path / "state"))
    await _run_and_close(aiohttp_client, app)
    assert _sqlite_threads() - before == set()


async def test_stores_built_beside_a_given_one_are_closed_too(aiohttp_client, tmp_path):
    given = SqliteCertificateStore(SqliteDatabase(tmp_path / "given.db"))
    await given.ensure_schema()
    before = _sqlite_threads()
    app = create_app(Settings(state_dir=tmp_path / "state"), store=given)  # builds the PCA, order, audit stores
    await _run_and_close(aiohttp_client, app)
    assert _sqlite_threads() - before == set()
    await given.close()
