"""Huawei's official CCM SDK (huaweicloudsdkccm) drives the private CA API unchanged.

The real server runs as a subprocess; the client is built as Huawei documents it: CCM is a global service, so
its SDK takes GlobalCredentials(ak, sk, domain_id) (the builder refuses BasicCredentials), here with an access
key made by `gatewaycerts access-key create` and an explicit endpoint (no IAM lookup). The SDK signs every
request (SDK-HMAC-SHA256) and nothing is added to it; the project is the key's (X-Domain-Id is not ours to
check). A second client sends a JWT through the core's HttpHandler request hook, to show tokens still work.
Only SDK request/response models are used, and every JSON body is checked against the SDK model's declared
wire types (see tests/e2e/sdk_wire.py).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from huaweicloudsdkccm.v1 import (
    CcmClient,
    CertDistinguishedName,
    CreateCertificateAuthorityRequest,
    CreateCertificateAuthorityRequestBody,
    CreateCertificateRequest,
    CreateCertificateRequestBody,
    CrlConfiguration,
    CustomizedExtension,
    DistinguishedName,
    ExportCertificateAuthorityCertificateRequest,
    ExportCertificateRequest,
    ExportCertificateRequestBody,
    ExtendedKeyUsage,
    ListCertificateAuthorityRequest,
    ListCertificateRequest,
    RevokeCertificateRequest,
    RevokeCertificateRequestBody,
    ShowCertificateAuthorityRequest,
    ShowCertificateRequest,
    SubjectAlternativeName,
    Validity,
)
from huaweicloudsdkccm.v1 import model as ccm_model
from huaweicloudsdkcore.auth.credentials import GlobalCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkcore.http.http_handler import HttpHandler

from tests.e2e.sdk_wire import model_problems
from tests.e2e.test_cli_serve import Server, _cli, dev_env
from tests.mongo_server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

PROJECT = uuid.uuid4().hex


def _wire(response) -> dict:
    data = json.loads(response.raw_content)
    problems = model_problems(data, type(response), ccm_model)
    assert not problems, "CCM response does not match the CCM SDK model:\n" + "\n".join(problems)
    return data


def ccm_client(port: int, credentials: GlobalCredentials, handler: HttpHandler | None = None) -> CcmClient:
    config = HttpConfig.get_default_config()
    config.timeout = (5, 60)
    builder = (
        CcmClient.new_builder()
        .with_http_config(config)
        .with_credentials(credentials)
        .with_endpoint(f"http://127.0.0.1:{port}")
    )
    if handler is not None:
        builder = builder.with_http_handler(handler)
    return builder.build()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    for key in ("no_proxy", "NO_PROXY"):  # requests honours HTTP(S)_PROXY; never proxy 127.0.0.1
        mp.setenv(key, ",".join(filter(None, [os.environ.get(key, ""), "127.0.0.1", "localhost"])))
    port = free_port()
    env = dev_env(Path(tmp_path_factory.mktemp("ccm")) / "state", port)
    with Server(env):
        yield env, port
    mp.undo()


@pytest.fixture(scope="module")
def ccm(server):
    env, port = server
    out = _cli("access-key", "create", "--project", PROJECT, "--role", "admin", env=env)
    assert out.returncode == 0, out.stderr
    printed = dict(line.split(": ", 1) for line in out.stdout.splitlines())
    client = ccm_client(port, GlobalCredentials(printed["access"], printed["secret"], PROJECT))
    yield client
    client.get_http_client().close()


@pytest.fixture(scope="module")
def ccm_jwt(server):
    env, port = server
    out = _cli("token", "--project", PROJECT, "--role", "admin", env=env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()

    def add_token(**kwargs) -> None:
        kwargs["request"].header_params["X-Auth-Token"] = token

    client = ccm_client(
        port,
        GlobalCredentials("DUMMYAK0000000000000", "dummy-sk", PROJECT),
        HttpHandler().add_request_handler(add_token),
    )
    yield client
    client.get_http_client().close()


def _ca_body(**kw) -> CreateCertificateAuthorityRequestBody:
    values = dict(
        type="ROOT",
        distinguished_name=DistinguishedName(
            common_name="SDK Root CA",
            country="CN",
            state="GD",
            locality="SZ",
            organization="SDK Org",
            organizational_unit="PKI",
        ),
        key_algorithm="EC384",
        signature_algorithm="SHA384",
        validity=Validity(type="YEAR", value=10),
        crl_configuration=CrlConfiguration(enabled=True, valid_days=7),
    )
    values.update(kw)
    return CreateCertificateAuthorityRequestBody(**values)


def test_private_ca_walk_through_the_official_sdk(ccm):
    client = ccm
    root = client.create_certificate_authority(CreateCertificateAuthorityRequest(body=_ca_body()))
    assert _wire(root) == {"ca_id": root.ca_id} and len(root.ca_id) == 36

    sub = client.create_certificate_authority(
        CreateCertificateAuthorityRequest(
            body=_ca_body(
                type="SUBORDINATE",
                issuer_id=root.ca_id,
                distinguished_name=DistinguishedName(common_name="SDK Issuing CA"),
                key_algorithm="EC256",
                signature_algorithm="SHA256",
                validity=Validity(type="YEAR", value=5),
                path_length=0,
            )
        )
    )
    shown = client.show_certificate_authority(ShowCertificateAuthorityRequest(ca_id=sub.ca_id))
    wire = _wire(shown)
    assert shown.status == "ACTIVED" and shown.type == "SUBORDINATE" and shown.issuer_id == root.ca_id
    assert shown.path_length == 0 and shown.issuer_name == "SDK Root CA"
    assert shown.distinguished_name.organization == "SDK Org"  # inherited from the root
    assert isinstance(wire["not_after"], int) and wire["not_after"] > wire["not_before"]
    assert shown.crl_configuration.crl_dis_point.endswith(f"/v1/private-certificate-authorities/{sub.ca_id}/crl")

    listed = client.list_certificate_authority(ListCertificateAuthorityRequest(limit=10, sort_key="common_name"))
    _wire(listed)
    assert listed.total == 2
    assert [c.distinguished_name.common_name for c in listed.certificate_authorities] == [
        "SDK Root CA",
        "SDK Issuing CA",
    ]

    exported_ca = client.export_certificate_authority_certificate(
        ExportCertificateAuthorityCertificateRequest(ca_id=sub.ca_id)
    )
    _wire(exported_ca)
    assert exported_ca.certificate.startswith("-----BEGIN CERTIFICATE-----")

    issued = client.create_certificate(
        CreateCertificateRequest(
            body=CreateCertificateRequestBody(
                issuer_id=sub.ca_id,
                key_algorithm="RSA2048",
                signature_algorithm="SHA256",
                distinguished_name=CertDistinguishedName(common_name="sdk.example.com"),
                validity=Validity(type="MONTH", value=3),
                key_usages=["digitalSignature", "keyEncipherment"],
                subject_alternative_names=[SubjectAlternativeName(type="DNS", value="sdk.example.com")],
                extended_key_usage=ExtendedKeyUsage(server_auth=True, client_auth=False),
                customized_extension=CustomizedExtension(object_identifier="1.3.6.1.4.1.2011.4.99", value="sdk"),
            )
        )
    )
    assert _wire(issued) == {"certificate_id": issued.certificate_id}

    certs = client.list_certificate(ListCertificateRequest(limit=10, status="ISSUED"))
    _wire(certs)
    assert certs.total == 1 and certs.certificates[0].certificate_id == issued.certificate_id
    cert = client.show_certificate(ShowCertificateRequest(certificate_id=issued.certificate_id))
    _wire(cert)
    assert cert.status == "ISSUED" and cert.issuer_name == "SDK Issuing CA" and cert.gen_mode == "GENERATE"

    exported = client.export_certificate(
        ExportCertificateRequest(
            certificate_id=issued.certificate_id, body=ExportCertificateRequestBody(type="NGINX", is_compressed="false")
        )
    )
    _wire(exported)
    leaf = x509.load_pem_x509_certificate(exported.certificate.encode())
    key = serialization.load_pem_private_key(exported.private_key.encode(), None)
    assert key.public_key() == leaf.public_key() and str(leaf.serial_number) == cert.serial_number

    revoked = client.revoke_certificate(
        RevokeCertificateRequest(
            certificate_id=issued.certificate_id, body=RevokeCertificateRequestBody(reason="SUPERSEDED")
        )
    )
    assert revoked.status_code == 204
    assert client.show_certificate(ShowCertificateRequest(certificate_id=issued.certificate_id)).status == "REVOKED"

    with pytest.raises(ClientRequestException) as err:
        client.create_certificate_authority(CreateCertificateAuthorityRequest(body=_ca_body(key_algorithm="SM2")))
    assert err.value.status_code == 400 and err.value.error_code == "PCA.1017" and err.value.error_msg


def test_a_jwt_still_works_beside_access_keys(ccm_jwt, ccm):
    listed = ccm_jwt.list_certificate_authority(ListCertificateAuthorityRequest(limit=10))
    _wire(listed)
    # the same project as the access key's: the walk above made two CAs in it
    assert listed.total == ccm.list_certificate_authority(ListCertificateAuthorityRequest(limit=10)).total == 2
