"""OpenStack's own Barbican client (python-barbicanclient, unchanged) against the running service: version
discovery, key and asymmetric orders through their whole life, secrets and payloads, containers, CAs, and a
certificate order in the exact body the client's historical CertificateOrder sent (the current client no
longer has that class; it still reads the certificate container)."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from barbicanclient import client as barbican
from barbicanclient import exceptions as barbican_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from keystoneauth1 import session as ks_session
from keystoneauth1.token_endpoint import Token

from tests.e2e.test_cli_serve import Server, _cli, dev_env
from tests.mongo_server import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning", "ignore::DeprecationWarning")


def wait_active(fetch, deadline: float = 30.0):
    """Poll an order until the service's worker has finished it (the API is asynchronous by design)."""
    end = time.monotonic() + deadline
    while True:
        order = fetch()
        if order.status != "PENDING" or time.monotonic() > end:
            return order
        time.sleep(0.05)


def test_python_barbicanclient_works_unchanged(tmp_path: Path):
    port = free_port()
    env = {**dev_env(tmp_path / "state", port), "GATEWAYCERTS_PUBLIC_URL": f"http://127.0.0.1:{port}"}
    env["GATEWAYCERTS_ORDER_POLL_MS"] = "50"
    token = _cli("token", "--project", "demo", "--role", "admin", env=env).stdout.strip()
    endpoint = f"http://127.0.0.1:{port}"
    with Server(env):
        sess = ks_session.Session(auth=Token(endpoint, token))
        bc = barbican.Client(session=sess, endpoint=endpoint, project_id="demo")

        # a symmetric key
        key_order = bc.orders.create_key(
            name="app-key", algorithm="aes", bit_length=256, mode="cbc", payload_content_type="application/octet-stream"
        )
        key_ref = key_order.submit()
        key_order = wait_active(lambda: bc.orders.get(key_ref))
        assert key_order.status == "ACTIVE" and key_order.name == "app-key" and key_order.bit_length == 256
        secret = bc.secrets.get(key_order.secret_ref)
        assert secret.algorithm == "aes" and secret.bit_length == 256 and secret.secret_type == "symmetric"
        assert isinstance(secret.payload, bytes) and len(secret.payload) == 32

        # a key pair with a pass phrase
        pair_ref = bc.orders.create_asymmetric(
            name="app-pair", algorithm="rsa", bit_length=2048, pass_phrase="correct horse"
        ).submit()
        pair_order = wait_active(lambda: bc.orders.get(pair_ref))
        assert pair_order.status == "ACTIVE" and pair_order.pass_phrase is None  # never echoed
        pair = bc.containers.get(pair_order.container_ref)
        assert type(pair).__name__ == "RSAContainer"
        private = serialization.load_pem_private_key(
            pair.private_key.payload.encode(), password=pair.private_key_passphrase.payload.encode()
        )
        assert (
            private.public_key().public_numbers()
            == serialization.load_pem_public_key(pair.public_key.payload.encode()).public_numbers()
        )

        listed = bc.orders.list()
        assert {o.order_ref for o in listed} == {key_ref, pair_ref}

        # a CA of the project (created through the CCM dialect) and a certificate for the stored key
        req = urllib.request.Request(
            f"{endpoint}/v1/private-certificate-authorities",
            method="POST",
            data=json.dumps(
                {
                    "type": "ROOT",
                    "key_algorithm": "EC256",
                    "distinguished_name": {"common_name": "Client Test CA"},
                    "validity": {"type": "YEAR", "value": 2},
                }
            ).encode(),
            headers={"X-Auth-Token": token, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            ca_id = json.loads(resp.read())["ca_id"]
        (ca,) = bc.cas.list()
        assert ca.ca_ref.endswith(ca_id) and ca.name == "Client Test CA" and ca.status == "ACTIVE"
        meta = {
            "name": "app-cert",
            "request_type": "stored-key",
            "subject_dn": "cn=app.demo.test,o=Demo",
            "container_ref": pair_order.container_ref,
            "ca_id": ca_id,
        }
        cert_ref = bc.client.post("orders", json={"type": "certificate", "meta": meta})["order_ref"]
        status = wait_active(lambda: type("O", (), bc.client.get(f"orders/{cert_ref.rsplit('/', 1)[1]}"))())
        assert status.status == "ACTIVE"
        cert_container = bc.containers.get(status.container_ref)
        assert type(cert_container).__name__ == "CertificateContainer"
        leaf = x509.load_pem_x509_certificate(cert_container.certificate.payload.encode())
        assert leaf.public_key().public_numbers() == private.public_key().public_numbers()
        assert cert_container.private_key.secret_ref == pair.private_key.secret_ref

        # deletes
        bc.orders.get(key_ref).delete()
        with pytest.raises(barbican_errors.HTTPClientError):
            bc.orders.get(key_ref)
        bc.secrets.delete(key_order.secret_ref)
        bc.containers.delete(pair_order.container_ref)
        with pytest.raises(barbican_errors.HTTPClientError):
            bc.containers.get(pair_order.container_ref)
