"""`serve --workers N`: a supervisor process that starts N server processes on one port and watches them.

Each worker is a fresh interpreter (`gatewaycerts serve --worker-ready-fd FD`, never a fork of this process)
that binds its own listening socket with SO_REUSEPORT, so the kernel spreads new connections over them, and
writes one line to FD once it listens. The supervisor forwards SIGTERM/SIGINT to every worker (each drains as
a single process does), waits for all of them and exits 0. A worker that dies on its own (non-zero exit or a
signal) makes the supervisor stop the others and exit 1: Kubernetes restarts the pod rather than letting it
run at part capacity.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gatewaycerts.web.server import ListenError

log = logging.getLogger("gatewaycerts.supervisor")

READY_LINE = b"listening\n"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def check_port_free(host: str, port: int) -> int:
    """Bind `host:port` as the workers will, but without SO_REUSEPORT, and let go again: a port that another
    process listens on (another `serve`, with or without workers) is refused here instead of shared with it
    in silence. Returns the port, the one the OS chose when `port` is 0."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise ListenError.of(host, port, exc) from None
    bound: list[socket.socket] = []
    chosen = port
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            bound.append(sock)
            # As asyncio does: connections of a previous run in TIME_WAIT do not make the port busy.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], chosen, *address[2:]))
            chosen = sock.getsockname()[1]
    except OSError as exc:
        raise ListenError.of(host, port, exc) from None
    finally:
        for sock in bound:
            sock.close()
    return chosen


# -- the worker's side -----------------------------------------------------------------------------------------


def die_with_supervisor() -> None:
    """Ask Linux to send this worker SIGTERM (a graceful stop) when the supervisor dies, even by SIGKILL, so no
    worker is left serving the port on its own. Elsewhere a no-op: the ready pipe still catches an early death."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def ready_notifier(fd: int) -> Callable[[], None]:
    """The worker's `on_started`: tell the supervisor this process listens. If the supervisor is gone already
    (it died before `die_with_supervisor` took effect), stop this worker the graceful way."""

    def notify() -> None:
        try:
            os.write(fd, READY_LINE)
        except OSError as exc:
            if exc.errno != errno.EPIPE:
                raise
            log.error("the supervisor process is gone: stopping")
            os.kill(os.getpid(), signal.SIGTERM)
        finally:
            os.close(fd)

    return notify


# -- the supervisor ------------------------------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    ready_fd: int | None
    listening: bool = False
    exit_code: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Supervisor:
    """Runs `argv` plus `ready_flag FD` `count` times and supervises the processes until they have all ended.

    `stop_timeout`: how long the workers get after SIGTERM before they are killed (their own shutdown timeout
    bounds their drain; this is the backstop for a wedged one). `metrics_dir`: create a fresh directory for
    prometheus_client's multiprocess mode and give it to the workers as PROMETHEUS_MULTIPROC_DIR.
    """

    argv: Sequence[str]
    ready_flag: str
    env: dict[str, str]
    count: int
    stop_timeout: float
    on_ready: Callable[[], None]
    metrics_dir: bool = False
    workers: list[_Worker] = field(default_factory=list)

    def run(self) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        # Signals only write their number to the wake-up pipe; the loop below acts on them, so nothing runs
        # inside a signal handler and no signal arriving between two checks is lost.
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, _ignore) for sig in (*_STOP_SIGNALS, signal.SIGCHLD)}
        metrics = _new_metrics_dir() if self.metrics_dir else None
        try:
            env = dict(self.env)
            if metrics is not None:
                env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics)
            return self._supervise(wake_r, env, metrics)
        finally:
            for worker in self.workers:
                if worker.exit_code is None:  # only when this process itself failed: never leave one behind
                    worker.proc.kill()
                    worker.proc.wait()
                if worker.ready_fd is not None:
                    os.close(worker.ready_fd)
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)
            if metrics is not None:
                shutil.rmtree(metrics, ignore_errors=True)

    def _supervise(self, wake_r: int, env: dict[str, str], metrics: Path | None) -> int:
        selector = selectors.DefaultSelector()
        selector.register(wake_r, selectors.EVENT_READ, None)
        failed = False
        stopping = False
        deadline: float | None = None

        def stop(reason: str) -> None:
            nonlocal stopping, deadline
            if not stopping:
                stopping = True
                deadline = time.monotonic() + self.stop_timeout
                log.info("%s: stopping %d worker(s)", reason, sum(w.exit_code is None for w in self.workers))
            for worker in self.workers:
                if worker.exit_code is None:
                    with contextlib.suppress(ProcessLookupError):
                        worker.proc.send_signal(signal.SIGTERM)

        for index in range(self.count):
            read_fd, write_fd = os.pipe()
            try:
                proc = subprocess.Popen(  # noqa: S603 - our own interpreter and command line
                    [*self.argv, self.ready_flag, str(write_fd)],
                    env=env,
                    stdin=subprocess.DEVNULL,
                    pass_fds=(write_fd,),
                )
            except OSError as exc:
                os.close(read_fd)
                log.error("cannot start worker %d: %s", index + 1, exc)
                failed = True
                stop("a worker could not be started")
                break
            finally:
                os.close(write_fd)
            worker = _Worker(index + 1, proc, read_fd)
            self.workers.append(worker)
            selector.register(read_fd, selectors.EVENT_READ, worker)
            log.debug("worker %d started: pid %d", worker.index, worker.pid)

        while any(w.exit_code is None for w in self.workers):
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            for key, _ in selector.select(timeout):
                if key.data is None:
                    for signum in _drain(wake_r):
                        if signum in _STOP_SIGNALS:
                            stop(signal.Signals(signum).name)
                    continue
                worker = key.data
                assert worker.ready_fd is not None
                worker.listening = os.read(worker.ready_fd, len(READY_LINE)) == READY_LINE
                selector.unregister(worker.ready_fd)
                os.close(worker.ready_fd)
                worker.ready_fd = None
                if not stopping and all(w.listening for w in self.workers) and len(self.workers) == self.count:
                    log.info("%d workers listen (pids %s)", self.count, ", ".join(str(w.pid) for w in self.workers))
                    self.on_ready()
            for worker in self.workers:
                if worker.exit_code is not None or (code := worker.proc.poll()) is None:
                    continue
                worker.exit_code = code
                if metrics is not None:
                    _mark_process_dead(worker.pid, metrics)
                graceful = code == 0 or (stopping and -code in _STOP_SIGNALS)
                if graceful:
                    log.info("worker %d (pid %d) stopped", worker.index, worker.pid)
                    if not stopping:  # it was signalled on its own (e.g. the whole process group was)
                        stop(f"worker {worker.index} (pid {worker.pid}) stopped")
                else:
                    failed = True
                    log.error("worker %d (pid %d) died: %s", worker.index, worker.pid, describe_exit(code))
                    stop(f"worker {worker.index} died")
            if deadline is not None and time.monotonic() >= deadline:
                for worker in self.workers:
                    if worker.exit_code is None:
                        log.error("worker %d (pid %d) did not stop in time: killed", worker.index, worker.pid)
                        worker.proc.kill()
                        worker.exit_code = worker.proc.wait()
                        failed = True
        selector.close()
        return 1 if failed else 0


def _ignore(signum: int, frame: object) -> None:
    """A Python-level handler, so the signal reaches the wake-up pipe (SIG_IGN would not, nor reap children)."""


def _drain(fd: int) -> bytes:
    data = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 512):
            data += chunk
    return data


METRICS_DIR_PREFIX = "gatewaycerts-metrics-"


def _new_metrics_dir() -> Path:
    """A fresh directory for this run's metric files (prometheus_client wants it empty at start), named after
    this process, after removing the ones that supervisors killed with SIGKILL left behind."""
    for old in Path(tempfile.gettempdir()).glob(METRICS_DIR_PREFIX + "*-*"):
        owner = old.name[len(METRICS_DIR_PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(old, ignore_errors=True)  # another user's: not ours to remove, and we cannot
    return Path(tempfile.mkdtemp(prefix=f"{METRICS_DIR_PREFIX}{os.getpid()}-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _mark_process_dead(pid: int, directory: Path) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(directory))
