"""Where the APIC show's own CPU goes (issue #22 target 1), part by part, in process: the store read, the
store's metric wrapper, the presenter and the response object, each before (store get: summary, heavy JSON and
key envelope decoded every time; cert_detail + orjson + strftime per date) and after the branch `show`
(get_summary from the decoded-summary memo; the kept body), interleaved in rounds on one event loop.
Nothing asserts. What is not here (aiohttp's protocol, the middlewares, token, access line, metrics) is the
rest of bench/inproc.py's figure for the show.

    .venv/bin/python bench/bench_show_parts.py --calls 20000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
import uvloop
from aiohttp import web

from gatewaycerts.facades.apic.presenters import DetailBodies, _iso_utc, cert_detail
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from gatewaycerts.web.metrics import Metrics, TimedStore
from gatewaycerts.web.requests import entity_tag
from tests.contract.test_certificate_store import make


def _present_anew(c: Any) -> bytes:
    _iso_utc.cache_clear()  # every date formatted by strftime, as before
    return orjson.dumps(cert_detail(c))


async def main(args: argparse.Namespace) -> None:
    store = SqliteCertificateStore(Path(tempfile.mkdtemp(prefix="gc-show-parts-")) / "db.sqlite")
    await store.ensure_schema()
    await store.insert(make("c1"))
    timed = TimedStore(store, "certificates", Metrics())
    summary = await store.get_summary("p1", "c1")
    full = await store.get("p1", "c1")
    bodies = DetailBodies()

    def sync(fn: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
        async def call() -> Any:
            return fn()

        return call

    parts: dict[str, Callable[[], Awaitable[Any]]] = {
        "store get (before)": lambda: store.get("p1", "c1"),
        "store get_summary (after)": lambda: store.get_summary("p1", "c1"),
        "TimedStore get_summary (the store metric's wrapper around it)": lambda: timed.get_summary("p1", "c1"),
        "nothing (an awaited no-op coroutine: the loop's own cost)": sync(lambda: None),
        "present anew: cert_detail + orjson + 4 strftime (before)": sync(lambda: _present_anew(full)),
        "present, kept body (after)": sync(lambda: bodies(summary)),
        "web.Response(body, content_type, ETag)": sync(
            lambda: web.Response(
                body=b"{}", content_type="application/json", headers={"ETag": entity_tag(summary.revision)}
            )
        ),
    }
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for name, fn in parts.items():
            for _ in range(200):
                await fn()
            c0 = time.process_time()
            for _ in range(args.calls):
                await fn()
            results.setdefault(name, []).append((time.process_time() - c0) * 1e6 / args.calls)
    await store.close()
    print("| part | CPU µs per call, median (rounds) |\n|---|---|")
    for name, rows in results.items():
        print(f"| {name} | {statistics.median(rows):.1f} ({', '.join(f'{r:.1f}' for r in rows)}) |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    uvloop.run(main(parser.parse_args()))
