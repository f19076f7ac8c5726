"""Huawei's official ROMA Connect SDK (huaweicloudsdkroma) drives the APIC certificate API unchanged.

The real server runs as a subprocess; the client is built the way Huawei documents it: BasicCredentials(ak, sk,
project_id) with an access key made by `gatewaycerts access-key create`, and an explicit endpoint (so no IAM or
region lookup). The SDK signs every request (SDK-HMAC-SHA256) and nothing is added to it. A second client sends a
JWT through the core's HttpHandler request hook instead, to show tokens still work beside keys. Only SDK
request/response models are used. Besides the SDK's own
deserialisation, every JSON body is checked against the SDK model's ``openapi_types``, because the SDK silently
coerces mismatched primitives (``str(123)``) and drops unknown keys.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from pathlib import Path

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler
from huaweicloudsdkroma.v2 import (
    AttachOrDetachDomainInfo,
    AttachOrDetachDomainsReqBody,
    BatchAssociateDomainsV2Request,
    BatchDisassociateDomainsV2Request,
    CertificateForm,
    CreateCertificateV2Request,
    DeleteCertificateV2Request,
    ListAttachedDomainsV2Request,
    ListCertificatesV2Request,
    RomaClient,
    ShowDetailsOfCertificateV2Request,
    UpdateCertificateV2Request,
)
from huaweicloudsdkroma.v2 import model as roma_model

from tests.e2e.sdk_wire import ISO_Z, model_problems
from tests.e2e.test_cli_serve import Server, _cli, dev_env
from tests.factories import ec_chain, rsa_chain
from tests.mongo_server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PROJECT = uuid.uuid4().hex  # Huawei project ids are 32 hex characters


def _wire(response) -> dict:
    """The raw JSON body, after asserting it maps onto the SDK response model field by field."""
    data = json.loads(response.raw_content)
    problems = model_problems(data, type(response), roma_model)
    assert not problems, "APIC response does not match the ROMA SDK model:\n" + "\n".join(problems)
    return data


def _fields(model) -> dict:
    """An SDK model's deserialised attributes (to_dict() is deprecated in the SDK)."""
    return {attr: getattr(model, attr) for attr in model.openapi_types}


def _iso(value) -> str:
    """SDK datetime fields: a datetime when python-dateutil is installed, else the original string."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value


# --- fixtures -----------------------------------------------------------------------------------------------------


def access_key(env: dict, project: str, role: str = "admin") -> tuple[str, str]:
    """`gatewaycerts access-key create`: (access, secret) as it prints them."""
    out = _cli("access-key", "create", "--project", project, "--role", role, "--description", "sdk test", env=env)
    assert out.returncode == 0, out.stderr
    printed = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    assert len(printed["access"]) == 20 and len(printed["secret"]) == 40
    return printed["access"], printed["secret"]


def roma_client(port: int, credentials: BasicCredentials, handler: HttpHandler | None = None) -> RomaClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 30)
    builder = (
        RomaClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoint(f"http://127.0.0.1:{port}")
    )
    if handler is not None:
        builder = builder.with_http_handler(handler)
    return builder.build()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, monkeypatch_module_env):
    port = free_port()
    env = dev_env(Path(tmp_path_factory.mktemp("roma")) / "state", port)
    with Server(env):
        yield env, port


@pytest.fixture(scope="module")
def roma(server):
    """The SDK as Huawei documents it: an access key and its secret, nothing else."""
    env, port = server
    ak, sk = access_key(env, PROJECT)
    client = roma_client(port, BasicCredentials(ak, sk, PROJECT))
    yield client
    client.get_http_client().close()


@pytest.fixture(scope="module")
def roma_jwt(server):
    """A JWT in X-Auth-Token through the SDK's request hook (the signature of unknown dummy keys is ignored:
    a token, when sent, is what authenticates)."""
    env, port = server
    out = _cli("token", "--project", PROJECT, "--role", "admin", env=env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()

    def add_token(**kwargs) -> None:  # HttpHandler request hook: called with request=SdkRequest, logger=...
        kwargs["request"].header_params["X-Auth-Token"] = token

    credentials = BasicCredentials("DUMMYAK0000000000000", "dummy-sk", PROJECT)
    client = roma_client(port, credentials, HttpHandler().add_request_handler(add_token))
    yield client
    client.get_http_client().close()


@pytest.fixture(scope="module")
def monkeypatch_module_env():
    """requests honours HTTP(S)_PROXY from the environment; never send 127.0.0.1 through a CI proxy."""
    mp = pytest.MonkeyPatch()
    for key in ("no_proxy", "NO_PROXY"):
        mp.setenv(key, ",".join(filter(None, [os.environ.get(key, ""), "127.0.0.1", "localhost"])))
    yield
    mp.undo()


def _form(name: str, key_pem: str | None = None) -> CertificateForm:
    chain = rsa_chain()
    return CertificateForm(name=name, cert_content=chain.bundle(), private_key=key_pem or chain.leaf.key_pem())


# --- tests --------------------------------------------------------------------------------------------------------


def test_certificate_lifecycle_through_the_official_sdk(roma: RomaClient):
    leaf = rsa_chain().leaf.cert

    created = roma.create_certificate_v2(CreateCertificateV2Request(body=_form("roma_sdk_cert")))
    assert created.status_code == 200
    wire = _wire(created)
    cert_id = created.id
    assert cert_id and created.name == "roma_sdk_cert"
    assert created.common_name == "www.example.com"
    assert created.san == ["www.example.com", "*.api.example.com"]
    assert created.signature_algorithm == "SHA256-RSA"
    assert created.algorithm_type == "RSA"
    assert created.type == "global" and created.instance_id == "common"
    assert created.project_id == PROJECT and created.is_has_trusted_root_ca is False
    assert isinstance(created.serial_number, str) and created.serial_number.isdigit()
    assert int(created.serial_number) == leaf.serial_number
    assert ISO_Z.match(wire["not_after"])
    assert wire["not_after"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert _iso(created.not_after) == wire["not_after"] and _iso(created.not_before) == wire["not_before"]
    assert created.version == 3 and created.organization == ["Example Corp"] and created.country == ["CN"]

    listed = roma.list_certificates_v2(ListCertificatesV2Request(name="roma_sdk", limit=10))
    _wire(listed)
    assert listed.total == 1 and listed.size == 1
    assert listed.certs[0].id == cert_id and listed.certs[0].common_name == "www.example.com"

    shown = roma.show_details_of_certificate_v2(ShowDetailsOfCertificateV2Request(certificate_id=cert_id))
    assert _wire(shown) == wire
    assert _fields(shown) == _fields(created)

    updated = roma.update_certificate_v2(
        UpdateCertificateV2Request(certificate_id=cert_id, body=_form("roma_sdk_renamed"))
    )
    _wire(updated)
    assert updated.id == cert_id and updated.name == "roma_sdk_renamed"
    assert _iso(updated.create_time) == wire["create_time"]

    domains = AttachOrDetachDomainsReqBody(domains=[AttachOrDetachDomainInfo(domain="www.example.com")])
    attached = roma.batch_associate_domains_v2(BatchAssociateDomainsV2Request(certificate_id=cert_id, body=domains))
    assert attached.status_code == 204

    bound = roma.list_attached_domains_v2(ListAttachedDomainsV2Request(certificate_id=cert_id))
    _wire(bound)
    assert bound.total == 1 and bound.size == 1
    ref = bound.bound_domains[0]
    assert ref.url_domain == "www.example.com" and ref.ssl_id == cert_id and ref.ssl_name == "roma_sdk_renamed"
    assert ref.status == 3 and ref.verified_client_certificate_enabled is False

    detached = roma.batch_disassociate_domains_v2(
        BatchDisassociateDomainsV2Request(certificate_id=cert_id, body=domains)
    )
    assert detached.status_code == 204
    assert roma.list_attached_domains_v2(ListAttachedDomainsV2Request(certificate_id=cert_id)).total == 0

    deleted = roma.delete_certificate_v2(DeleteCertificateV2Request(certificate_id=cert_id))
    assert deleted.status_code == 204

    with pytest.raises(ClientRequestException) as err:
        roma.show_details_of_certificate_v2(ShowDetailsOfCertificateV2Request(certificate_id=cert_id))
    assert err.value.status_code == 404 and err.value.error_code == "APIG.3021"
    assert err.value.error_msg and err.value.request_id


def test_mismatched_key_is_an_sdk_client_error(roma: RomaClient):
    body = _form("roma_sdk_bad_key", key_pem=ec_chain().leaf.key_pem())
    with pytest.raises(ClientRequestException) as err:
        roma.create_certificate_v2(CreateCertificateV2Request(body=body))
    assert err.value.status_code == 400 and err.value.error_code == "APIG.2101"
    assert err.value.error_msg and "BEGIN" not in err.value.error_msg
    assert roma.list_certificates_v2(ListCertificatesV2Request(name="roma_sdk_bad_key")).total == 0


def test_a_jwt_still_works_beside_access_keys(roma_jwt: RomaClient, roma: RomaClient):
    created = roma_jwt.create_certificate_v2(CreateCertificateV2Request(body=_form("roma_sdk_jwt")))
    assert created.status_code == 200 and created.project_id == PROJECT
    # the same project, seen through the access key
    listed = roma.list_certificates_v2(ListCertificatesV2Request(name="roma_sdk_jwt"))
    assert listed.total == 1 and listed.certs[0].id == created.id
    assert roma_jwt.delete_certificate_v2(DeleteCertificateV2Request(certificate_id=created.id)).status_code == 204


def test_a_wrong_secret_is_refused_with_apig_401(server):
    env, port = server
    ak, _ = access_key(env, PROJECT, "viewer")
    client = roma_client(port, BasicCredentials(ak, "x" * 40, PROJECT))
    try:
        with pytest.raises(ClientRequestException) as err:
            client.list_certificates_v2(ListCertificatesV2Request())
    finally:
        client.get_http_client().close()
    assert err.value.status_code == 401 and err.value.error_code == "APIG.1002"
    assert "x" * 40 not in (err.value.error_msg or "")


def test_a_managed_certificate_is_listed_and_shown_by_the_sdk_with_todays_fields(server, roma: RomaClient):
    """A certificate the service issues and renews itself (docs/renewal.md) is, to the ROMA SDK, an ordinary
    APIC certificate: listed and shown with the CertBase/CertDetail fields, the same id after a renewal."""
    import time

    import requests

    env, port = server
    out = _cli("token", "--project", PROJECT, "--role", "admin", env=env)
    assert out.returncode == 0, out.stderr
    base, headers = f"http://127.0.0.1:{port}", {"X-Auth-Token": out.stdout.strip()}
    session = requests.Session()
    session.trust_env = False
    root = {
        "type": "ROOT",
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "SDK Managed Root"},
        "validity": {"type": "YEAR", "value": 2},
    }
    resp = session.post(f"{base}/v1/private-certificate-authorities", json=root, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    body = {
        "name": "roma_sdk_managed",
        "domains": ["managed.example.com"],
        "source": "private_ca",
        "private_ca": {"ca_id": resp.json()["ca_id"], "validity_days": 30},
    }
    resp = session.post(f"{base}/v2/{PROJECT}/apic/managed-certificates", json=body, headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    cert_id = resp.json()["id"]
    renewal_url = f"{base}/v2/{PROJECT}/apic/certificates/{cert_id}/renewal"

    def renewals() -> int:
        state = session.get(renewal_url, headers=headers, timeout=30).json()
        return state["renewals"] if state["state"] == "active" else 0

    deadline = time.monotonic() + 60  # the server's own renewal loop issues it (woken by the create)
    while renewals() < 1:
        assert time.monotonic() < deadline, "the managed certificate was not issued"
        time.sleep(0.1)

    listed = roma.list_certificates_v2(ListCertificatesV2Request(name="roma_sdk_managed", limit=10))
    _wire(listed)
    assert listed.total == 1 and listed.certs[0].id == cert_id
    assert listed.certs[0].common_name == "managed.example.com" and listed.certs[0].algorithm_type == "ECC"
    shown = roma.show_details_of_certificate_v2(ShowDetailsOfCertificateV2Request(certificate_id=cert_id))
    wire = _wire(shown)
    assert shown.id == cert_id and shown.san == ["managed.example.com"] and wire["issuer"] == ["SDK Managed Root"]

    resp = session.post(f"{renewal_url}/actions/renew", headers=headers, timeout=30)
    assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + 60
    while renewals() < 2:
        assert time.monotonic() < deadline, "the managed certificate was not renewed"
        time.sleep(0.1)
    renewed = roma.show_details_of_certificate_v2(ShowDetailsOfCertificateV2Request(certificate_id=cert_id))
    _wire(renewed)
    assert renewed.id == cert_id and renewed.serial_number != shown.serial_number
    assert roma.delete_certificate_v2(DeleteCertificateV2Request(certificate_id=cert_id)).status_code == 204
    assert session.get(renewal_url, headers=headers, timeout=30).status_code == 404
