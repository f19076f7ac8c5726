"""CPU per APIC upload, in process, without sockets: the real app (SQLite, JSON access log at INFO to a file,
metrics on) driven through aiohttp's own HTTP protocol on a fake transport (bench/inproc.py's driver), against
the upload's own validation (`validate_bundle`, the limit of bench/run.py) in the same process, interleaved in
rounds. CPU is the process's (every thread: the event loop, the executor that validates, the SQLite writer).

    .venv/bin/python bench/inproc_upload.py --requests 1000 --rounds 3 [--key rsa] [--profile]
        [--without NAME ...] [--show-p99]

`--without NAME` runs each round again with one change switched off (TOGGLES below), interleaved, so one run
measures what each is worth. `--show-p99` also runs, per configuration, the uploads beside one connection
that shows a certificate in a loop, and prints the show's wall-clock p50/p99 (what the event loop's own
work for uploads does to a concurrent read).

`--profile` runs cProfile on the event loop's thread for one round instead (the executor's validation is not
in it). Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import re
import statistics
import sys
import tempfile
import time
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvloop
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bench.inproc import BENCH, Driver
from bench.pem_scan import pem_scan
from gatewaycerts import keyvault
from gatewaycerts.app import create_app
from gatewaycerts.appkeys import CERTIFICATE_SERVICE
from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token
from gatewaycerts.pki.bundle import validate_bundle
from gatewaycerts.settings import Settings
from gatewaycerts.store import codec
from gatewaycerts.web.logs import configure_logging
from tests.factories import ec_chain, rsa_chain

PATH = "/v2/bench/apic/certificates"


# -- changes that can be switched off for a round (`--without NAME`) -----------------------------------------
class InlineExecutor(Executor):
    """Runs what is submitted at once, on the submitting thread (the event loop): validation without the pool."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, as the pool would
            future.set_exception(exc)
        return future


_pool: list[Any] = []


def _validation_pool(app: web.Application, on: bool) -> None:
    """An experiment of stop 28 (not a change): off validates each upload inline on the event loop."""
    service = app[CERTIFICATE_SERVICE]
    if on:
        service._executor = _pool.pop()
    else:
        _pool.append(service._executor)
        service._executor = InlineExecutor()


def _kek_label_head(app: web.Application, on: bool) -> None:
    """Stop 28: keyvault writes the envelope's JSON text itself and reads its KEK label from the head."""
    if on:
        codec.envelope_kek_id, keyvault.KeyVault.encrypt = _kek_saved
    else:
        _kek_saved[:] = [codec.envelope_kek_id, keyvault.KeyVault.encrypt]
        codec.envelope_kek_id = _json_kek_id
        keyvault.KeyVault.encrypt = _json_encrypt  # type: ignore[method-assign]


_kek_saved: list[Any] = []


def _json_kek_id(blob: bytes | None) -> str:
    """envelope_kek_id as it was before stop 28: json.loads of the whole envelope."""
    if not blob:
        return ""
    try:
        kek_id = json.loads(blob)["kek"]
    except (ValueError, KeyError, TypeError):
        return ""
    return kek_id if isinstance(kek_id, str) else ""


def _json_encrypt(self: keyvault.KeyVault, plaintext: bytes, *, context: str) -> bytes:
    """KeyVault.encrypt as it was before stop 28: a new AES-GCM key schedule for the KEK, json.dumps."""
    aad = context.encode("utf-8")
    dek = AESGCM.generate_key(bit_length=256)
    data_nonce, wrap_nonce = os.urandom(12), os.urandom(12)
    ciphertext = AESGCM(dek).encrypt(data_nonce, plaintext, aad)
    kek = self._active
    wrapped = AESGCM(kek.key).encrypt(wrap_nonce, dek, aad)
    envelope = {
        "v": keyvault.FORMAT_VERSION,
        "alg": "AES-256-GCM",
        "kek": kek.kek_id,
        "wn": keyvault._b64(wrap_nonce),
        "wk": keyvault._b64(wrapped),
        "n": keyvault._b64(data_nonce),
        "ct": keyvault._b64(ciphertext),
    }
    return json.dumps(envelope, separators=(",", ":")).encode("ascii")


def _writer_temp_store(app: web.Application, on: bool) -> None:
    """Stop 28: the write connections keep a statement's journal in memory (off: SQLite's default, a file)."""
    db = app[CERTIFICATE_SERVICE]._store._db
    for conn in (db._conn, db._inline_writer):
        if conn is not None:
            conn.execute("PRAGMA temp_store=" + ("MEMORY" if on else "DEFAULT"))


TOGGLES = {
    "validation-pool": _validation_pool,
    "kek-label-head": _kek_label_head,
    "writer-temp-store": _writer_temp_store,
    "pem-scan": pem_scan,  # stop 29 (bench/pem_scan.py)
}


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


async def show_latencies(factory: object, raws: list[bytes], concurrency: int, show: bytes) -> list[float]:
    """Wall-clock ms of each show sent, one after another on one more connection, while `raws` upload."""
    reader = Driver(factory)
    out: list[float] = []
    uploads = asyncio.ensure_future(drive(factory, raws, concurrency))
    while not uploads.done():
        t0 = time.perf_counter()
        await reader.one(show)
        out.append((time.perf_counter() - t0) * 1e3)
    await uploads
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


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
    cert_id = json.loads(answer.partition(b"\r\n\r\n")[2])["id"]
    lines = [f"GET {PATH}/{cert_id} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in admin.items())]
    show = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if args.profile:
        sys.path.remove(BENCH)
        import cProfile
        import pstats

        for toggle in args.without:  # profiled with these switched off
            TOGGLES[toggle](app, False)
        batch = raws(args.requests)
        prof = cProfile.Profile(time.thread_time)  # CPU of the event loop thread, not waits for the GIL
        prof.enable()
        await drive(factory, batch, args.concurrency)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(40)
        pstats.Stats(prof).sort_stats("cumulative").print_stats(70)
    else:
        results: dict[str, list[tuple[float, float]]] = {}
        shows: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            lim = limit_us(bundle, key_pem, args.requests)
            for toggle in [None, *args.without]:
                label = "service" if toggle is None else f"without {toggle}"
                if toggle is not None:
                    TOGGLES[toggle](app, False)
                batch = raws(args.requests)
                t0 = thread_cpu()
                svc = await drive(factory, batch, args.concurrency)
                t1 = thread_cpu()
                if args.show_p99:
                    shows.setdefault(label, []).extend(
                        await show_latencies(factory, raws(args.requests), args.concurrency, show)
                    )
                if toggle is not None:
                    TOGGLES[toggle](app, True)
                results.setdefault(label, []).append((svc, lim))
                split = ", ".join(
                    f"{k} {(t1[k] - t0.get(k, 0.0)) * 1e6 / args.requests:.0f}"
                    for k in sorted(t1)
                    if t1[k] > t0.get(k, 0.0)
                )
                print(f"  {label} by thread (µs/upload, 10 ms ticks): {split}", flush=True)
                print(
                    f"  {label} {svc:.0f} µs/upload, validation alone {lim:.0f} µs, ratio {lim / svc:.2f}", flush=True
                )
        for label, rows in results.items():
            print(
                f"median {label}: {statistics.median(r[0] for r in rows):.0f} µs, validation "
                f"{statistics.median(r[1] for r in rows):.0f} µs, ratio "
                f"{statistics.median(r[1] / r[0] for r in rows):.2f}"
            )
        for label, lat in shows.items():
            print(
                f"show beside uploads, {label}: {len(lat)} shows, "
                f"p50 {pct(lat, 0.5):.2f} ms, p99 {pct(lat, 0.99):.2f} ms"
            )
    await client.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--key", choices=("ec", "rsa"), default="ec")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--without", action="append", default=[], choices=sorted(TOGGLES))
    parser.add_argument("--show-p99", action="store_true")
    uvloop.run(main(parser.parse_args()))
