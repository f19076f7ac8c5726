"""CPU per APIC upload, in process, without sockets: the real app (SQLite, JSON access log at INFO to a file,
metrics on) driven through aiohttp's own HTTP protocol on a fake transport (bench/inproc.py's driver), against
the upload's own validation (`validate_bundle`, the limit of bench/run.py) in the same process, interleaved in
rounds. CPU is the process's (every thread: the event loop, the executor that validates, the SQLite writer).

    .venv/bin/python bench/inproc_upload.py --requests 1000 --rounds 3 [--key rsa] [--profile]

`--profile` runs cProfile on the event loop's thread for one round instead (the executor's validation is not
in it). Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from aiohttp.test_utils import TestClient, TestServer

from bench.inproc import BENCH, Driver
from gatewaycerts.app import create_app
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.pki.bundle import validate_bundle
from gatewaycerts.settings import Settings
from gatewaycerts.web.logs import configure_logging
from tests.factories import ec_chain, rsa_chain

PATH = "/v2/bench/apic/certificates"


def raw_post(path: str, headers: dict[str, str], body: dict) -> bytes:
    data = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by thread name."""
    import os
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), f"tid {task.name}")
        name = re.sub(r"_\d+$", "", name)
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def limit_us(bundle: str, key: str, n: int) -> float:
    now = dt.datetime.now(dt.UTC)
    c0 = time.process_time()
    for _ in range(n):
        validate_bundle(bundle, key, None, now=now)
    return (time.process_time() - c0) * 1e6 / n


async def drive(factory: object, raws: list[bytes], concurrency: int) -> float:
    """CPU µs per upload (the whole process) of `raws` sent over `concurrency` connections at once."""
    drivers = [Driver(factory) for _ in range(concurrency)]

    async def conn(d: Driver, mine: list[bytes]) -> None:
        for raw in mine:
            await d.one(raw)

    c0 = time.process_time()
    await asyncio.gather(*(conn(d, raws[i::concurrency]) for i, d in enumerate(drivers)))
    return (time.process_time() - c0) * 1e6 / len(raws)


async def main(args: argparse.Namespace) -> None:
    state = Path(tempfile.mkdtemp(prefix="gc-inproc-upload-"))
    log_file = (state / "access.log").open("w")
    configure_logging("INFO", "json")
    logging.getLogger().handlers[0].stream = log_file
    app = create_app(Settings(state_dir=state), order_worker=False, renewal_worker=False, notification_worker=False)
    server = TestServer(app)
    await server.start_server(access_log=None)
    client = TestClient(server)
    await client.start_server()
    key = load_or_create_dev_key(state)
    admin = {"X-Auth-Token": mint_token(key, subject="a", projects=["bench"], roles=["admin"], ttl=7200)}
    chain = rsa_chain() if args.key == "rsa" else ec_chain()
    bundle, key_pem = chain.bundle(), chain.leaf.key_pem()
    counter = iter(range(10**9))

    def raws(n: int) -> list[bytes]:
        return [
            raw_post(PATH, admin, {"name": f"up_{next(counter):07d}", "cert_content": bundle, "private_key": key_pem})
            for _ in range(n)
        ]

    factory = client.server.runner.server
    service = Driver(factory)
    answer = await service.one(raws(1)[0])
    status = answer.split(b" ")[1].decode()
    print(f"upload ({args.key}): status {status}, {len(answer)} response bytes", flush=True)
    assert status == "200", answer[:400]
    await service.run(raws(100), 100)
    limit_us(bundle, key_pem, 100)
    if args.profile:
        sys.path.remove(BENCH)
        import cProfile
        import pstats

        batch = raws(args.requests)
        prof = cProfile.Profile(time.thread_time)  # CPU of the event loop thread, not waits for the GIL
        prof.enable()
        await drive(factory, batch, args.concurrency)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(70)
    else:
        rows = []
        for _ in range(args.rounds):
            lim = limit_us(bundle, key_pem, args.requests)
            batch = raws(args.requests)
            t0 = thread_cpu()
            svc = await drive(factory, batch, args.concurrency)
            t1 = thread_cpu()
            rows.append((svc, lim))
            split = ", ".join(
                f"{k} {(t1[k] - t0.get(k, 0.0)) * 1e6 / args.requests:.0f}"
                for k in sorted(t1)
                if t1[k] > t0.get(k, 0.0)
            )
            print(f"  by thread (µs/upload, 10 ms ticks): {split}", flush=True)
            print(f"  service {svc:.0f} µs/upload, validation alone {lim:.0f} µs, ratio {lim / svc:.2f}", flush=True)
        print(
            f"median: service {statistics.median(r[0] for r in rows):.0f} µs, validation "
            f"{statistics.median(r[1] for r in rows):.0f} µs, ratio {statistics.median(r[1] / r[0] for r in rows):.2f}"
        )
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--key", choices=("ec", "rsa"), default="ec")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", action="store_true")
    uvloop.run(main(parser.parse_args()))
