"""Certificates issued over ACME pass pkilint like every other issuance of the CA engine (the TLS server leaf
profile: subject and extensions from the CA, not the CSR)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.acme.harness import acme_client, answer_all, csr_for, in_thread, register, rsa_key, start_server
from tests.conformance.test_pkilint import findings, pkilint  # noqa: F401 - the fixture

pytestmark = pytest.mark.parametrize("every_store", ["sqlite"], indirect=True)


async def test_acme_leaf_passes_pkilint(aiohttp_client, settings, every_store, auth, pkilint, tmp_path):  # noqa: F811
    server = await start_server(aiohttp_client, settings, every_store, auth)
    acme = await in_thread(acme_client, server.directory_url, rsa_key())
    await in_thread(register, acme, await server.eab())

    def issue():
        order = acme.new_order(csr_for("lint.example.test", "www.lint.example.test")[1])
        answer_all(acme, order)
        return acme.poll_and_finalize(order, datetime.now() + timedelta(seconds=60))

    order = await in_thread(issue)
    leaf = order.fullchain_pem.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    lint_dir = tmp_path / "lint"
    lint_dir.mkdir()
    assert findings([str(pkilint / "lint_pkix_cert"), "lint"], leaf, lint_dir) == []
