"""`gatewaycerts serve` with the stages of each APIC write timed (not a benchmark of rates; a split of one
write's latency): run as `python bench/trace_write.py TRACE_FILE serve`, the service's own CLI after the file.

Every stage is stamped with `time.perf_counter()` (CLOCK_MONOTONIC on Linux, the same clock in every process,
so a client's stamps and these compare) and appended to TRACE_FILE as one JSON line per stage:

- `request`: the APIC attach/detach/create/update call starts in the core (after routing, auth, body parsing);
- `put`/`begin`/`end`/`resumed`: one store write handed to the SQLite database, the write starting (on the
  writer thread, or inline on the event loop), the writer done with its group (committed; not stamped for an
  inline write: `resumed` is its commit), the event loop running the caller again;
- `changed`: delivery told of the change (held long polls are answered from here);
- `view_start`/`view_end`: delivery rebuilding an instance's view (after a change, for the first read);
- `poll_answer`: a snapshot with items (a held poll's answer) built, before it is written to its client;
- `audit_start`/`audit_end`: the audit record;
- `done`: the core call returns (the response is written next);
- `gc_start`/`gc_stop`: a collection of the cyclic garbage collector (`generation`), on the thread that triggered it;
- `reload_start`/`reload_end`: the delivery watch bringing a project whose change counter moved up to date (its
  store reads included; `dropped`: a local write landed meanwhile, so it is read again at the next turn).

Used by bench_delivery.py's propagation section (`--trace`) to report where a change's latency goes.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from pathlib import Path

# GATEWAYCERTS_CODE: serve another checkout's code (bench_delivery.py --before), traced the same way
sys.path.insert(0, os.environ.get("GATEWAYCERTS_CODE") or str(Path(__file__).resolve().parents[1]))


def install(path: str) -> None:
    from gatewaycerts.core import audit as audit_mod
    from gatewaycerts.core import certificates as certs_mod
    from gatewaycerts.store.sqlite import base

    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the process's life
    lock = threading.Lock()
    seq = iter(range(1 << 62))

    def run_delay() -> float:
        """Seconds the calling thread has waited on a run queue (runnable, not running: the CPU was taken)."""
        try:
            with open("/proc/thread-self/schedstat", "rb") as f:
                return int(f.read().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return 0.0

    def stamp(stage: str, **extra: object) -> None:
        # with the stamping thread's CPU time, its run-queue wait, and the process's CPU time: a gap is the
        # thread running (cpu), runnable but waiting for a core (wait), or blocked (the rest: the GIL, a lock,
        # the disk); the process's CPU tells whether its other threads ran meanwhile
        line = json.dumps(
            {
                "t": time.perf_counter(),
                "stage": stage,
                "cpu": time.thread_time(),
                "wait": run_delay(),
                "pcpu": time.process_time(),
                "thread": threading.current_thread().name,
                **extra,
            }
        )
        with lock:
            out.write(line + "\n")

    original_write = base.SqliteDatabase.write

    async def write(self, fn, args, *, alone=False, point=False):  # type: ignore[no-untyped-def]
        n = next(seq)

        def traced(conn, *a):  # type: ignore[no-untyped-def]
            inline = threading.current_thread() is threading.main_thread()
            stamp("begin", n=n, name=getattr(fn, "__qualname__", "?"), inline=inline)
            return fn(conn, *a)

        stamp("put", n=n)
        try:
            if point:
                return await original_write(self, traced, args, alone=alone, point=True)
            return await original_write(self, traced, args, alone=alone)  # also code from before `point`
        finally:
            stamp("resumed", n=n)

    base.SqliteDatabase.write = write  # type: ignore[method-assign]

    import gc

    def collected(phase: str, info: dict) -> None:
        stamp(f"gc_{phase}", generation=info["generation"])

    gc.callbacks.append(collected)

    original_commit = base.SqliteDatabase._commit

    def commit(self, group):  # type: ignore[no-untyped-def]
        before = db_stat(self)
        try:
            return original_commit(self, group)
        finally:
            stamp("end", size=len(group), db_written=db_changed(self, before))

    base.SqliteDatabase._commit = commit  # type: ignore[method-assign]

    # WAL checkpoints: those the store asks for (the Checkpointer's thread; before it, base._checkpoint run by the
    # writer thread), and SQLite's own automatic one inside a commit (wal_autocheckpoint), seen as the database
    # file changing during a commit
    def stamped(original):  # type: ignore[no-untyped-def]
        def checkpoint(conn):  # type: ignore[no-untyped-def]
            stamp("checkpoint_start")
            try:
                return original(conn)
            finally:
                stamp("checkpoint_end")

        return checkpoint

    if hasattr(base, "_checkpoint"):
        base._checkpoint = stamped(base._checkpoint)
    else:
        from gatewaycerts.store.sqlite import checkpoints

        checkpoints.Checkpointer._checkpoint = staticmethod(stamped(checkpoints.Checkpointer._checkpoint))

    def db_changed(self, before: tuple[int, int] | None) -> bool:  # type: ignore[no-untyped-def]
        return before is not None and before != db_stat(self)

    def db_stat(self) -> tuple[int, int] | None:  # type: ignore[no-untyped-def]
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def timed(name: str, method):  # type: ignore[no-untyped-def]
        @functools.wraps(method)
        async def wrapper(*a, **kw):  # type: ignore[no-untyped-def]
            stamp("request", op=name)
            try:
                return await method(*a, **kw)
            finally:
                stamp("done", op=name)

        return wrapper

    cls = certs_mod.CertificateService
    for name in ("attach_domains", "detach_domains", "create", "update"):
        setattr(cls, name, timed(name, getattr(cls, name)))

    original_record = audit_mod.AuditLog.record

    async def record(self, *a, **kw):  # type: ignore[no-untyped-def]
        stamp("audit_start")
        try:
            return await original_record(self, *a, **kw)
        finally:
            stamp("audit_end")

    audit_mod.AuditLog.record = record  # type: ignore[method-assign]

    from gatewaycerts.core.delivery import service as delivery_mod

    original_changed = delivery_mod.DeliveryService.certificate_changed

    def changed(self, *a):  # type: ignore[no-untyped-def]
        stamp("changed")
        return original_changed(self, *a)

    delivery_mod.DeliveryService.certificate_changed = changed  # type: ignore[method-assign]

    original_view = delivery_mod._build_view

    def build_view(*a):  # type: ignore[no-untyped-def]
        stamp("view_start")
        try:
            return original_view(*a)
        finally:
            stamp("view_end")

    delivery_mod._build_view = build_view

    original_bundle = delivery_mod.DeliveryService.bundle

    async def bundle(self, *a, **kw):  # type: ignore[no-untyped-def]
        answer = await original_bundle(self, *a, **kw)
        if answer.items is not None:
            stamp("poll_answer")
        return answer

    delivery_mod.DeliveryService.bundle = bundle  # type: ignore[method-assign]

    original_reload = delivery_mod.DeliveryService._reload

    async def reload(self, project_id, project, counter):  # type: ignore[no-untyped-def]
        stamp("reload_start", counter=counter)
        try:
            return await original_reload(self, project_id, project, counter)
        finally:
            stamp("reload_end", dropped=project.dirty)

    delivery_mod.DeliveryService._reload = reload  # type: ignore[method-assign]


if __name__ == "__main__":
    install(sys.argv[1])
    from gatewaycerts.cli import main

    sys.argv = ["gatewaycerts", *sys.argv[2:]]
    raise SystemExit(main())
