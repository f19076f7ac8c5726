"""Instructions per request of one hot route, in process, for callgrind: bench/inproc.py's app and driver, 300
warm-up requests (WARMUP), then N more with the named toggles switched off, then exit. Run it twice per variant and take
the difference, so that the start-up cancels out:

    PYTHONHASHSEED=0 N=200 ROUTE=304 OFF=delivery valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/inproc_icount.py      # then N=1200: (Ir(1200) - Ir(200)) / 1000 per request

ROUTE is one of inproc.py's routes (caddy, caddy-paths, 304, ...); OFF a comma-separated list of its toggles.
Work the service does by wall time (the delivery watcher, the access log's flush timer) lands in the counts too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import inproc
import uvloop

N = int(os.environ.get("N", "1000"))
# caddy-paths has 1,430 distinct paths: WARMUP=1430 sends each once before the count (what a path kept by a
# memo costs the second time)
WARMUP = int(os.environ.get("WARMUP", "300"))
OFF = [t for t in os.environ.get("OFF", "").split(",") if t]
_apps: list[Any] = []
_run = inproc.Driver.run
_create_app = inproc.create_app


def _created(*args: Any, **kwargs: Any) -> Any:
    app = _create_app(*args, **kwargs)
    _apps.append(app)
    return app


async def _measured(self: Any, raws: list[bytes], n: int) -> tuple[float, float]:
    if self.proto is inproc._PROTOCOLS[0]:  # the service's first call: its warm-up (WARMUP)
        await _run(self, raws, WARMUP)
        for toggle in OFF:
            inproc.TOGGLES[toggle](_apps[0], False)
        await _run(self, raws, N)
        sys.stdout.flush()
        os._exit(0)
    return await _run(self, raws, n)


if __name__ == "__main__":
    inproc.Driver.run = _measured  # type: ignore[method-assign]
    inproc.create_app = _created
    args = argparse.Namespace(
        requests=N,
        rounds=1,
        only=[os.environ.get("ROUTE", "caddy")],
        without=[],
        profile=False,
        log_level="INFO",
        spread=os.environ.get("SPREAD") == "1",
    )
    uvloop.run(inproc.main(args))
