"""Property-based fuzzing of every committed OpenAPI document with schemathesis, against the running service
with a valid admin token: no 5xx, and every response's status code, content type and body conform to the
document. Bounded (examples per operation, fixed seed) so that it runs in CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli_serve import _cli, dev_env
from tests.e2e.test_orders_processes import Service
from tests.mongo_server import free_port

DOCS = ("apic", "ccm", "notary", "barbican", "audit", "gateway")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("fuzz")
    env = {**dev_env(state / "state", free_port()), "GATEWAYCERTS_LOG_LEVEL": "WARNING"}
    token = _cli("token", "--project", "fuzz", "--role", "admin", env=env).stdout.strip()
    with Service(env, state / "serve.log") as svc:
        yield svc, token, state / "serve.log"


@pytest.mark.parametrize("doc", DOCS)
def test_fuzzing_finds_no_server_error_and_no_nonconforming_response(service, doc, tmp_path):
    svc, token, log = service
    run = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{svc.url}/openapi/{doc}.json",
            "--url",
            svc.url,
            "-H",
            f"X-Auth-Token: {token}",
            "--checks",
            CHECKS,
            "--max-examples",
            "15",
            "--seed",
            "20261124",
            "--no-color",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    summary = run.stdout[-3000:]
    assert run.returncode == 0 and "failure" not in run.stdout.splitlines()[-1], summary
    assert "generated" in run.stdout, summary  # it did run cases
    assert "Traceback" not in log.read_text()  # and the service logged no unhandled error
