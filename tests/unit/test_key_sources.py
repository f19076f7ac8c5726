"""Token key sources wired by the composition root: a PEM public key file and a JWKS URL (served on loopback)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gatewaycerts.app import build_verifier
from gatewaycerts.auth.tokens import mint_token
from gatewaycerts.domain.errors import AuthenticationError
from gatewaycerts.settings import Settings
from tests.factories import rsa_key


def test_public_key_file_verifies_rs256(tmp_path):
    key = rsa_key(2048, 1)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "jwt.pub").write_bytes(pem)
    settings = Settings.from_env(
        {"GATEWAYCERTS_JWT_PUBLIC_KEY_FILE": str(tmp_path / "jwt.pub"), "GATEWAYCERTS_JWT_ISSUER": "https://idp"}
    )
    verifier = build_verifier(settings)
    token = mint_token(
        key, subject="u", projects=["p"], roles=["viewer"], ttl=60, algorithm="RS256", issuer="https://idp"
    )
    import asyncio

    principal = asyncio.run(verifier.verify(token))
    assert principal.projects == {"p"}
    assert not (tmp_path / "state").exists(), "a real key source must not create the dev key"


@pytest.fixture
def jwks_server():
    keys: dict[str, rsa.RSAPrivateKey] = {"k1": rsa_key(2048, 1)}
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            body = json.dumps(
                {
                    "keys": [
                        {
                            **json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                            "kid": kid,
                            "use": "sig",
                            "alg": "RS256",
                        }
                        for kid, k in keys.items()
                    ]
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json", keys, hits
    server.shutdown()
    server.server_close()


async def test_jwks_url_verifies_by_kid(jwks_server):
    url, keys, hits = jwks_server
    verifier = build_verifier(Settings.from_env({"GATEWAYCERTS_JWT_JWKS_URL": url}))
    good = jwt.encode(
        {"sub": "u", "project_id": "p", "roles": ["admin"], "exp": 2**31},
        keys["k1"],
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    assert (await verifier.verify(good)).projects == {"p"}
    assert hits == ["/jwks.json"]
    unknown = jwt.encode({"sub": "u", "exp": 2**31}, rsa_key(2048, 2), algorithm="RS256", headers={"kid": "k9"})
    with pytest.raises(AuthenticationError):
        await verifier.verify(unknown)
    wrong_key = jwt.encode({"sub": "u", "exp": 2**31}, rsa_key(2048, 2), algorithm="RS256", headers={"kid": "k1"})
    with pytest.raises(AuthenticationError):
        await verifier.verify(wrong_key)
