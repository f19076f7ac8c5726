"""`gatewaycerts rotate-kek` as an operator runs it, against a SQLite state dir: dry run, an interrupted run
(--limit), the run that finishes, and `serve` refusing to start once the KEK that wraps the keys is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gatewaycerts.app import build_vault
from gatewaycerts.domain.envelopes import EnvelopeKind
from tests.e2e.test_cli_serve import Server
from tests.e2e.test_kek_rotation import (
    KEK_A,
    KEK_B,
    WRONG_B,
    Deployment,
    Records,
    assert_everything_serves,
    make_records,
)
from tests.mongo_server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def cli(*args: str, keks: tuple[str, ...], state: Path, port: int | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
    env |= {"GATEWAYCERTS_STATE_DIR": str(state), "GATEWAYCERTS_KEK": ",".join(keks)}
    if port is not None:
        env["GATEWAYCERTS_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, "-m", "gatewaycerts", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def summary(out: str) -> dict[str, tuple[int, ...]]:
    """The per-kind rows of the final table: kind -> (re-wrapped, changed, deleted, failed, remaining)."""
    rows = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0] in {k.value for k in EnvelopeKind}:
            rows[parts[0]] = tuple(int(p) for p in parts[1:6])
    return rows


async def test_rotate_kek_command(settings, aiohttp_client, auth, tmp_path: Path):
    state = settings.state_dir
    deployment = Deployment(settings, aiohttp_client)  # the state dir's SQLite file, as `serve` uses it
    client = await deployment.serve(KEK_A)
    records = await make_records(client, auth, Records())
    await client.close()
    total = len(EnvelopeKind)  # one record of each kind (access keys included)

    dry = cli("rotate-kek", "--dry-run", keks=(KEK_A, KEK_B), state=state)
    assert dry.returncode == 1, dry.stderr
    assert f"{total} stored keys are not under 'B' yet (dry run: nothing changed)" in dry.stdout, dry.stdout
    assert all(row[0] == 0 and row[4] == 1 for row in summary(dry.stdout).values()), dry.stdout
    assert all(counts == {"A": 1} for counts in (await deployment.labels()).values())  # changed nothing
    assert {"acme-account", "acme-account-eab", "dns-update-tsig", "acme-eab"} <= set(summary(dry.stdout))

    partial = cli("rotate-kek", "--batch-size", "1", "--limit", "2", keks=(KEK_A, KEK_B), state=state)
    assert partial.returncode == 1, partial.stderr
    assert "stopped after --limit 2: run rotate-kek again to continue" in partial.stdout
    rows = summary(partial.stdout)
    assert sum(r[0] for r in rows.values()) == 2 and sum(r[4] for r in rows.values()) == total - 2

    done = cli("rotate-kek", "--batch-size", "1", keks=(KEK_A, KEK_B), state=state)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: every stored key is wrapped by 'B'; older KEKs may be removed" in done.stdout
    rows = summary(done.stdout)
    assert sum(r[0] for r in rows.values()) == total - 2 and all(r[4] == 0 for r in rows.values())
    assert "  pca-certificate: 1 re-wrapped" in done.stdout  # progress after every batch
    assert rows["access-key"][4] == 0 and "  access-key: 1 re-wrapped" in done.stdout  # a key's secret too
    for kind in ("acme-account", "acme-account-eab", "dns-update-tsig", "acme-eab"):  # the ACME secrets too
        assert rows[kind][4] == 0 and f"  {kind}: 1 re-wrapped" in done.stdout, done.stdout
    again = cli("rotate-kek", keks=(KEK_A, KEK_B), state=state)
    assert again.returncode == 0 and all(r[0] == 0 for r in summary(again.stdout).values()), again.stdout
    for out in (dry, partial, done, again):
        assert "BEGIN" not in out.stdout + out.stderr and KEK_A.split(":")[1] not in out.stdout + out.stderr

    # A is gone from the keys, so serving without B must fail at start with one line naming B.
    refused = cli("serve", keks=(KEK_A,), state=state, port=free_port())
    assert refused.returncode != 0
    assert "stored keys are wrapped by KEK 'B', which is not configured" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    # one line of its own (the others are the log's warnings about the development JWT key)
    assert refused.stderr.strip().splitlines()[-1].startswith("gatewaycerts: stored keys are wrapped by KEK 'B'")
    wrong = cli("serve", keks=(KEK_A, WRONG_B), state=state, port=free_port())
    assert wrong.returncode != 0 and "KEK 'B' does not decrypt" in wrong.stderr and "Traceback" not in wrong.stderr
    assert WRONG_B.split(":")[1] not in wrong.stderr
    cannot = cli("rotate-kek", keks=(KEK_A,), state=state)
    assert cannot.returncode == 2 and "KEK 'B', which is not configured" in cannot.stderr, cannot.stderr

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
    env |= {"GATEWAYCERTS_STATE_DIR": str(state), "GATEWAYCERTS_KEK": KEK_B, "GATEWAYCERTS_PORT": str(port)}
    with Server(env) as proc:  # B alone serves
        assert proc.poll() is None
    # and every key the command re-wrapped opens under B alone (the ACME account key through the ACME client)
    client = await deployment.serve(KEK_B)
    await assert_everything_serves(deployment, client, auth, records, build_vault(deployment.with_keks(KEK_B)))
    await client.close()
