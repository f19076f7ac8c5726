"""Python bytecodes per request of one hot route, by function: bench/inproc.py's app and driver, WARMUP requests
(300), then N (1,000) under `sys.settrace` with opcode events, counted per code object; then the same for the
bare handler. Deterministic where CPU time is not (the counts do not move with the machine's load), but it
counts bytecodes, not their cost: a C call is one bytecode here whatever it does (AES-GCM, a header look-up).
Not part of `make bench`.

    ROUTE=caddy-spread SPREAD=1 WARMUP=1430 .venv/bin/python bench/inproc_opcodes.py [--top 40]

ROUTE is one of inproc.py's routes; `--without TOGGLE` (inproc.py's toggles) counts with one switched off.
The bench driver's own functions (bench/inproc.py: Driver, FakeTransport) are counted apart.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inproc
import uvloop

N = int(os.environ.get("N", "1000"))
WARMUP = int(os.environ.get("WARMUP", "300"))
_apps: list[Any] = []
_run = inproc.Driver.run
_create_app = inproc.create_app
_counts: dict[str, collections.Counter[tuple[str, str]]] = {}
_options: argparse.Namespace


ROOT = str(Path(__file__).resolve().parents[1]) + "/"


def _where(code: Any) -> tuple[str, str]:
    name = code.co_filename
    if name.startswith(ROOT):
        name = name[len(ROOT) :]  # bench/..., gatewaycerts/...
    elif "site-packages/" in name:
        name = name.split("site-packages/", 1)[1]
    return name, code.co_qualname


def _counted(counts: collections.Counter[tuple[str, str]]) -> Any:
    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            counts[_where(frame.f_code)] += 1
        return local

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    return tracer


def _created(*args: Any, **kwargs: Any) -> Any:
    app = _create_app(*args, **kwargs)
    _apps.append(app)
    return app


async def _measured(self: Any, raws: list[bytes], n: int) -> tuple[float, float]:
    service = self.proto is inproc._PROTOCOLS[0]
    side = "service" if service else "bare"
    if side in _counts:
        return await _run(self, raws, n)
    await _run(self, raws, WARMUP)
    if service:
        for toggle in _options.without:
            inproc.TOGGLES[toggle](_apps[0], False)
    counts = _counts[side] = collections.Counter()
    sys.settrace(_counted(counts))
    try:
        await _run(self, raws, N)
    finally:
        sys.settrace(None)
    if not service:  # the bare side runs first in inproc.main's rounds: the service's count follows
        return 0.0, 0.0
    _report()
    sys.stdout.flush()
    os._exit(0)


def _report() -> None:
    for side in ("bare", "service"):
        counts = _counts.get(side, collections.Counter())
        driver = sum(v for (f, _), v in counts.items() if f.startswith("bench/"))
        total = sum(counts.values())
        print(f"{side}: {total / N:,.0f} bytecodes a request ({driver / N:,.0f} of them the bench driver's)")
    without = f", without {', '.join(_options.without)}" if _options.without else ""
    print(f"\nthe service's largest ({_options.route}{without}):")
    for (filename, name), v in _counts["service"].most_common(_options.top):
        print(f"{v / N:8.1f}  {name}  ({filename})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--without", action="append", default=[], choices=sorted(inproc.TOGGLES))
    _options = parser.parse_args()
    _options.route = os.environ.get("ROUTE", "caddy")
    inproc.Driver.run = _measured  # type: ignore[method-assign]
    inproc.create_app = _created
    args = argparse.Namespace(
        requests=N,
        rounds=1,
        only=[_options.route],
        without=[],
        profile=False,
        log_level="INFO",
        spread=os.environ.get("SPREAD") == "1",
    )
    uvloop.run(inproc.main(args))
