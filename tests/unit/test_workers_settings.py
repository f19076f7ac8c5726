"""The worker count of `serve --workers N` / GATEWAYCERTS_WORKERS, and the supervisor's port check."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile

import pytest

from gatewaycerts.settings import MAX_WORKERS, Settings, SettingsError, parse_workers, usable_cpus
from gatewaycerts.web import workers
from gatewaycerts.web.server import ListenError
from gatewaycerts.web.workers import check_port_free, describe_exit


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("3", 3), (" 4 ", 4), (str(MAX_WORKERS), MAX_WORKERS), ("0", None), ("auto", None), ("AUTO", None)],
    ids=["one", "three", "spaces", "the maximum", "zero is auto", "auto", "auto in capitals"],
)
def test_worker_counts_parse(value: str, expected: int | None):
    count = Settings.from_env({"GATEWAYCERTS_WORKERS": value}).workers
    assert count == (expected if expected is not None else min(usable_cpus(), MAX_WORKERS))
    assert count >= 1


def test_the_default_is_one_process():
    assert Settings.from_env({}).workers == 1 == Settings().workers


@pytest.mark.parametrize("value", ["-1", str(MAX_WORKERS + 1), "two", "1.5", ""])
def test_bad_worker_counts_name_the_variable(value: str):
    with pytest.raises(SettingsError, match="GATEWAYCERTS_WORKERS"):
        Settings.from_env({"GATEWAYCERTS_WORKERS": value})
    with pytest.raises(SettingsError, match="--workers"):
        parse_workers(value, "--workers")


def test_usable_cpus_is_what_this_process_may_run_on():
    assert usable_cpus() == len(os.sched_getaffinity(0)) >= 1


def test_a_busy_port_is_refused_even_when_its_listener_allows_port_sharing():
    with socket.socket() as other:
        # another `serve --workers` would have set SO_REUSEPORT: the check must not join it
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(ListenError) as caught:
            check_port_free("127.0.0.1", port)
    assert caught.value.strerror == (
        f"cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another process listens there: is gatewaycerts already running?)"
    )


def test_a_free_port_passes_and_port_0_gets_a_real_one():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert check_port_free("127.0.0.1", port) == port
    chosen = check_port_free("127.0.0.1", 0)
    assert chosen > 0
    # the check let go of the port: the workers can bind it
    with socket.socket() as worker:
        worker.bind(("127.0.0.1", chosen))


def test_an_address_that_is_not_ours_is_refused_in_one_line():
    with pytest.raises(ListenError) as caught:
        check_port_free("203.0.113.9", 8080)
    assert caught.value.strerror == "cannot listen on 203.0.113.9:8080: Cannot assign requested address"


def test_exit_descriptions():
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"


def test_a_new_metrics_dir_replaces_the_ones_of_dead_supervisors_only(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"gatewaycerts-metrics-{int(finished.stdout)}-abc"
    live = tmp_path / f"gatewaycerts-metrics-{os.getppid()}-def"  # pytest's parent: running
    unrelated = tmp_path / "gatewaycerts-metrics-notes"
    for d in (dead, live, unrelated):
        d.mkdir()
        (d / "counter_1.db").write_bytes(b"x")
    fresh = workers._new_metrics_dir()
    assert fresh.name.startswith(f"gatewaycerts-metrics-{os.getpid()}-") and list(fresh.iterdir()) == []
    assert not dead.exists() and live.exists() and unrelated.exists()
