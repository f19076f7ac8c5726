"""The CCM issue paths with short CPU work on the event loop (a process per CPU, core/offload.py), against
both real stores: the same tests as tests/facades/test_ccm_http.py's for issuance, with the service as
`serve --workers N` (N >= CPUs) builds it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography import x509

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import PRIVATE_CERTIFICATE_SERVICE
from gatewaycerts.settings import usable_cpus
from tests.facades.test_ccm_http import (  # noqa: F401  (collected here again, on the inline service below)
    CERTS,
    create_ca,
    ok,
    test_csr_issue_parse_and_intermediate,
    test_csr_refusals,
    test_error_cases,
    test_root_subordinate_issue_chain_verifies,
    test_seed_body_issues_an_rsa_certificate,
)


@pytest.fixture
async def ccm(aiohttp_client, settings, pca_store):
    app = create_app(replace(settings, workers=usable_cpus()), pca_store=pca_store)
    assert app[PRIVATE_CERTIFICATE_SERVICE].inline_cpu
    return await aiohttp_client(app)


async def test_one_process_on_several_cpus_keeps_the_executor(settings, pca_store):
    app = create_app(replace(settings, workers=1), pca_store=pca_store)
    assert app[PRIVATE_CERTIFICATE_SERVICE].inline_cpu is (usable_cpus() == 1)


@pytest.mark.parametrize("key_algorithm", ["EC256", "EC384", "RSA2048"])
async def test_generated_keys_of_every_kind_are_issued(ccm, auth, key_algorithm):
    # EC keys are made and certified inline; an RSA key's generation still goes to the executor
    ca_id = await create_ca(ccm, auth)
    body = {
        "issuer_id": ca_id,
        "key_algorithm": key_algorithm,
        "distinguished_name": {"common_name": "inline.example.com"},
        "validity": {"type": "DAY", "value": 30},
    }
    cert_id = (await ok(await ccm.post(CERTS, json=body, headers=auth())))["certificate_id"]
    shown = await ok(await ccm.get(f"{CERTS}/{cert_id}", headers=auth()))
    assert shown["key_algorithm"] == key_algorithm
    pem = await ok(await ccm.post(f"{CERTS}/{cert_id}/export", json={"type": "OTHER"}, headers=auth()))
    cert = x509.load_pem_x509_certificate(pem["certificate"].encode())
    ca = x509.load_pem_x509_certificate(pem["certificate_chain"].encode())
    cert.verify_directly_issued_by(ca)
