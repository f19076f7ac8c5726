"""The overview of a project with 10,000 certificates renders in the test browser in under 2 s (the bound the
issue names). The certificates are real records of one validated upload, written through the SQLite
adapter's own row mapping in bulk (fast), with expiries spread over the past month and the next 13."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from gatewaycerts.app import build_vault
from gatewaycerts.core.certificates import apic_key_context
from gatewaycerts.domain.models import AlgorithmType, Certificate, CertificateScope
from gatewaycerts.pki.bundle import validate_bundle
from gatewaycerts.settings import Settings
from gatewaycerts.store.sqlite.certificates import SqliteCertificateStore
from tests.console.conftest import go, screenshot, service_env, sign_in, start_service, stop_service
from tests.factories import ec_chain

PROJECT = "fleet"
COUNT = 10_000
BOUND_SECONDS = 2.0


def _seed(state_dir: Path) -> None:
    settings = Settings(state_dir=state_dir)
    subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "init-db"], env=service_env(state_dir), check=True, timeout=60
    )
    vault = build_vault(settings)  # the dev KEK the service will use: its start-up check decrypts a sample
    chain = ec_chain()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    bundle = validate_bundle(chain.bundle(), chain.leaf.key_pem(), None, now=now)
    rows = []
    for i in range(COUNT):
        cert_id = uuid.uuid4().hex
        info = dataclasses.replace(
            bundle.info,
            common_name=f"svc{i}.example.com",
            algorithm_type=AlgorithmType.ECC if i % 3 else AlgorithmType.RSA,
            not_after=now + dt.timedelta(hours=(i * 37) % (13 * 30 * 24) - 30 * 24),
        )
        cert = Certificate(
            id=cert_id,
            project_id=PROJECT,
            name=f"cert_{i:05d}",
            scope=CertificateScope.INSTANCE if i % 7 == 0 else CertificateScope.GLOBAL,
            instance_id=f"inst{i % 3}" if i % 7 == 0 else "common",
            info=info,
            chain_pem=bundle.chain_pem,
            encrypted_private_key=vault.encrypt(bundle.private_key_pem, context=apic_key_context(PROJECT, cert_id)),
            trusted_root_ca_pem=None,
            has_trusted_root_ca=False,
            create_time=now - dt.timedelta(seconds=COUNT - i),
            update_time=now,
        )
        rows.append(SqliteCertificateStore._row(cert))
    conn = sqlite3.connect(settings.sqlite_path)
    columns = list(rows[0])
    with conn:
        conn.executemany(
            f"INSERT INTO certificates ({', '.join(columns)}) VALUES ({', '.join(':' + c for c in columns)})", rows
        )
    conn.close()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("fleet") / "state"
    _seed(state)
    svc = start_service(state)
    yield svc
    stop_service(svc)


def test_the_overview_of_10000_certificates_renders_in_under_2_seconds(fleet, watched):
    page = watched.page
    sign_in(page, fleet, project=PROJECT)  # the first overview (warms the token cache and the store)
    go(page, "#/certificates")
    elapsed = page.evaluate(
        """() => new Promise((resolve) => {
            const t0 = performance.now();
            new MutationObserver((_, observer) => {
                if (document.querySelector('.page[data-ready=true] #waiting')) {
                    observer.disconnect();
                    resolve((performance.now() - t0) / 1000);
                }
            }).observe(document.body, {subtree: true, childList: true, attributes: true});
            location.hash = '#/overview';
        })"""
    )
    caption = page.locator("#expiry-chart").get_attribute("aria-label")
    screenshot(page, "overview-10000")
    # every certificate is on the chart: the expired, the next 53 weeks and the later ones add up to 10,000
    counts = [int(n) for n in re.findall(r"(\d+) (?:expired|expire within a year|later)", caption)]
    assert sum(counts) == COUNT, caption
    assert counts[0] > 0  # some are expired
    assert elapsed < BOUND_SECONDS, f"the overview took {elapsed:.2f} s"
