"""The ACME server on a real port (both stores), a private CA with ACME switched on, and helpers for
certbot's `acme` library (synchronous: run in a thread)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import josepy as jose
import requests
from acme import client, crypto_util, messages
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gatewaycerts.core.acme.validation import ChallengeToValidate
from tests.conftest import app_on

CAS = "/v1/private-certificate-authorities"
ROOT_CA = {
    "type": "ROOT",
    "key_algorithm": "EC256",
    "distinguished_name": {"common_name": "ACME Test Root", "organization": "Gatewaycerts Tests", "country": "DE"},
    "validity": {"type": "YEAR", "value": 2},
    "crl_configuration": {"enabled": True, "crl_name": "acme-test", "valid_days": 7},
}
POLICY = {"enabled": True, "allowed_domains": ["example.test"], "allow_wildcards": True, "allow_ip": True}


class RecordingValidator:
    """Says yes to every challenge, and remembers what it was asked (the key authorization's shape is
    checked by the tests). Stands in for connectors/validators.py where a test pins the protocol, not the
    probes; the bench injects the same kind through the app factory."""

    def __init__(self, fail: Callable[[ChallengeToValidate], tuple[str, str] | None] | None = None) -> None:
        self.seen: list[ChallengeToValidate] = []
        self._fail = fail

    async def validate(self, challenge: ChallengeToValidate) -> None:
        from gatewaycerts.core.acme.validation import ValidationFailed

        self.seen.append(challenge)
        if self._fail is not None and (problem := self._fail(challenge)) is not None:
            raise ValidationFailed(*problem)


@dataclass
class AcmeServer:
    http: Any  # aiohttp TestClient (for the admin API)
    base: str  # http://127.0.0.1:PORT
    ca_id: str
    admin: dict[str, str]
    validator: RecordingValidator | str
    app: Any

    @property
    def directory_url(self) -> str:
        return f"{self.base}/acme/{self.ca_id}/directory"

    async def admin_json(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        resp = await self.http.request(method, path, json=body, headers=self.admin)
        text = await resp.text()
        return resp.status, (json.loads(text) if text else None)

    async def eab(self) -> tuple[str, str]:
        status, body = await self.admin_json("POST", f"{CAS}/{self.ca_id}/acme/eab-keys", {})
        assert status == 201, body
        return body["kid"], body["hmac_key"]


async def start_server(aiohttp_client, settings, every_store, auth, policy: dict | None = None, **kw) -> AcmeServer:
    validator = kw.pop("validator", None)
    kw.setdefault("acme_worker", True)
    if validator == "real":  # connectors/validators.py as app.py wires it, from the settings
        app = app_on(settings, every_store, **kw)
    else:
        validator = validator or RecordingValidator()
        app = app_on(settings, every_store, challenge_validator=validator, **kw)
    http = await aiohttp_client(app)
    admin = auth()
    resp = await http.post(CAS, json=ROOT_CA, headers=admin)
    assert resp.status == 200, await resp.text()
    ca_id = (await resp.json())["ca_id"]
    resp = await http.put(f"{CAS}/{ca_id}/acme", json=policy or POLICY, headers=admin)
    assert resp.status == 200, await resp.text()
    base = str(http.make_url("")).rstrip("/")
    return AcmeServer(http, base, ca_id, admin, validator, app)


def rsa_key() -> jose.JWKRSA:
    return jose.JWKRSA(key=rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(curve: ec.EllipticCurve | None = None) -> jose.JWKEC:
    return jose.JWKEC(key=ec.generate_private_key(curve or ec.SECP256R1()))


def acme_client(directory_url: str, key: jose.JWK, alg: Any = jose.RS256) -> client.ClientV2:
    net = client.ClientNetwork(key, alg=alg, user_agent="gatewaycerts-tests")
    directory = messages.Directory.from_json(net.get(directory_url).json())
    return client.ClientV2(directory, net)


def register(acme: client.ClientV2, eab: tuple[str, str] | None = None) -> messages.RegistrationResource:
    binding = None
    if eab is not None:
        binding = messages.ExternalAccountBinding.from_data(
            account_public_key=acme.net.key.public_key(), kid=eab[0], hmac_key=eab[1], directory=acme.directory
        )
    return acme.new_account(
        messages.NewRegistration.from_data(terms_of_service_agreed=True, external_account_binding=binding)
    )


def csr_for(*names: str, ips: list | None = None) -> tuple[bytes, bytes]:
    """(key PEM, CSR PEM) for `names` (and IP addresses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, crypto_util.make_csr(key_pem, list(names) or None, ipaddrs=ips)


def answer_all(acme: client.ClientV2, order: messages.OrderResource, kind: str = "http-01") -> None:
    for authz in order.authorizations:
        chall = next(c for c in authz.body.challenges if c.chall.typ == kind)
        acme.answer_challenge(chall, chall.response(acme.net.key))


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def fresh_nonce(server_base: str, ca_id: str) -> str:
    return requests.head(f"{server_base}/acme/{ca_id}/new-nonce", timeout=10).headers["Replay-Nonce"]


def sign(key: jose.JWK, alg: str, signing_input: bytes) -> bytes:
    """A JWS signature by hand (so tests can send what the library never would)."""
    private = key.key
    if alg == "RS256":
        return private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    if alg in ("ES256", "ES384"):
        der = private.sign(signing_input, ec.ECDSA(hashes.SHA256() if alg == "ES256" else hashes.SHA384()))
        r, s = decode_dss_signature(der)
        size = (private.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    if alg.startswith("HS"):
        return hmac.new(b"secret", signing_input, hashlib.sha256).digest()
    if alg == "none":
        return b""
    raise ValueError(alg)


def post_jws_body(url: str, payload: Any, key: jose.JWK, alg: str = "RS256", **protected: Any) -> dict[str, str]:
    """A flattened JWS object with `jwk` (the inner JWS of keyChange), no nonce."""
    header = {"alg": alg, "url": url, "jwk": key.public_key().to_partial_json(), **protected}
    p = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return {"protected": p, "payload": body, "signature": b64(sign(key, alg, f"{p}.{body}".encode()))}


def post_jws(
    url: str,
    payload: Any,
    key: jose.JWK,
    *,
    alg: str = "RS256",
    kid: str | None = None,
    nonce: str | None = None,
    header: dict | None = None,
    raw_body: Any = None,
) -> requests.Response:
    """POST a flattened JWS; `header` overrides protected members (None values are dropped)."""
    protected: dict[str, Any] = {"alg": alg, "url": url}
    if nonce is not None:
        protected["nonce"] = nonce
    if kid is not None:
        protected["kid"] = kid
    else:
        protected["jwk"] = key.public_key().to_partial_json()
    for k, v in (header or {}).items():
        if v is None:
            protected.pop(k, None)
        else:
            protected[k] = v
    p = b64(json.dumps(protected).encode())
    body = "" if payload is None else b64(json.dumps(payload).encode())
    sig = b64(sign(key, alg, f"{p}.{body}".encode()))
    jws = raw_body if raw_body is not None else {"protected": p, "payload": body, "signature": sig}
    data = jws if isinstance(jws, (bytes, str)) else json.dumps(jws)
    return requests.post(url, data=data, headers={"Content-Type": "application/jose+json"}, timeout=30)
