"""Orders across real `gatewaycerts serve` processes: an order left PENDING by a stopped service completes
after a restart (SQLite), and two services on one MongoDB process 200 orders between them, each exactly once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from tests.e2e.test_cli_serve import _cli, dev_env
from tests.mongo_server import free_port, wait_for_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
AES = {"algorithm": "aes", "bit_length": 256, "mode": "cbc"}


class Service:
    """`gatewaycerts serve` with its output in a file (a pipe nobody reads would stall it)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.port = int(env["GATEWAYCERTS_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Service:
        self.out = self.log.open("a")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gatewaycerts", "serve"], env=self.env, stdout=self.out, stderr=subprocess.STDOUT
        )
        wait_for_port(self.port, self.proc)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0, self.log.read_text()[-2000:]
        self.out.close()


async def create_orders(url: str, token: str, n: int, type_: str = "key", meta: dict | None = None) -> list[str]:
    async with aiohttp.ClientSession(headers={"X-Auth-Token": token}) as http:

        async def one() -> str:
            async with http.post(f"{url}/v1/orders", json={"type": type_, "meta": meta or AES}) as resp:
                assert resp.status == 202, await resp.text()
                return (await resp.json())["order_ref"].rsplit("/", 1)[1]

        return list(await asyncio.gather(*(one() for _ in range(n))))


async def statuses(url: str, token: str, ids: list[str]) -> dict[str, str]:
    """The status of each of `ids`, read through the list endpoint (pages of 100)."""
    found: dict[str, str] = {}
    async with aiohttp.ClientSession(headers={"X-Auth-Token": token}) as http:
        offset = 0
        while True:
            async with http.get(f"{url}/v1/orders", params={"limit": "100", "offset": str(offset)}) as resp:
                assert resp.status == 200, await resp.text()
                page = await resp.json()
            found.update({o["order_ref"].rsplit("/", 1)[1]: o["status"] for o in page["orders"]})
            if "next" not in page:
                break
            offset += 100
    return {i: found[i] for i in ids}


async def wait_all_done(url: str, token: str, ids: list[str], deadline: float = 120.0) -> dict[str, str]:
    """Poll until no order is PENDING (the API is asynchronous by design; the deadline bounds the wait)."""
    end = time.monotonic() + deadline
    while True:
        found = await statuses(url, token, ids)
        if "PENDING" not in found.values() or time.monotonic() > end:
            return found
        await asyncio.sleep(0.2)


@pytest.mark.parametrize("kind", ["sqlite", "mongo"])
async def test_a_pending_order_completes_after_restart(tmp_path: Path, request: pytest.FixtureRequest, kind: str):
    env = {**dev_env(tmp_path / "state", free_port()), "GATEWAYCERTS_ORDER_WORKER": "false"}
    if kind == "mongo":
        uri = request.getfixturevalue("mongodb_uri")
        env["GATEWAYCERTS_DATABASE_URL"] = uri.rstrip("/") + "/" + request.getfixturevalue("mongo_database")
    token = _cli("token", "--project", "demo", "--role", "editor", env=env).stdout.strip()
    try:
        with Service(env, tmp_path / "serve.log") as first:
            ids = await create_orders(first.url, token, 3)
            ids += await create_orders(first.url, token, 1, "asymmetric", {"algorithm": "ec", "bit_length": 256})
            assert set((await statuses(first.url, token, ids)).values()) == {"PENDING"}
        env = {**env, "GATEWAYCERTS_ORDER_WORKER": "true"}
        with Service(env, tmp_path / "serve.log") as second:
            assert set((await wait_all_done(second.url, token, ids)).values()) == {"ACTIVE"}
    finally:
        if kind == "mongo":
            mongo: AsyncMongoClient = AsyncMongoClient(request.getfixturevalue("mongodb_uri"))
            await mongo.drop_database(request.getfixturevalue("mongo_database"))
            await mongo.close()


async def test_two_services_on_one_mongodb_process_each_order_once(
    tmp_path: Path, mongodb_uri: str, mongo_database: str
):
    url = mongodb_uri.rstrip("/") + "/" + mongo_database
    envs = []
    for name in ("a", "b"):
        env = dev_env(tmp_path / "state", free_port())  # one state dir: the same dev JWT key and KEK
        env.update(GATEWAYCERTS_DATABASE_URL=url, GATEWAYCERTS_ORDER_POLL_MS="50", GATEWAYCERTS_LOG_LEVEL="WARNING")
        envs.append((env, tmp_path / f"serve-{name}.log"))
    _cli("token", "--project", "demo", env=envs[0][0])  # creates the shared dev keys before both start
    token = _cli("token", "--project", "demo", "--role", "editor", env=envs[0][0]).stdout.strip()
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri, tz_aware=True)
    try:
        with Service(*envs[0]) as a, Service(*envs[1]) as b:
            ids_a, ids_b = await asyncio.gather(create_orders(a.url, token, 100), create_orders(b.url, token, 100))
            ids = ids_a + ids_b
            assert set((await wait_all_done(a.url, token, ids)).values()) == {"ACTIVE"}
        db = mongo[mongo_database]
        orders = await db["orders"].find({}, {"attempts": 1, "claimed_by": 1, "secret_id": 1}).to_list(None)
        assert len(orders) == 200
        assert {o["attempts"] for o in orders} == {1}, "an order was claimed more than once"
        workers = {o["claimed_by"] for o in orders}
        assert len(workers) == 2 and all(w.split(":")[1].isdigit() for w in workers)  # both processes worked
        secrets = await db["secrets"].distinct("_id")
        assert sorted(secrets) == sorted(o["secret_id"] for o in orders)  # one secret each, nothing orphaned
    finally:
        await mongo.drop_database(mongo_database)
        await mongo.close()
