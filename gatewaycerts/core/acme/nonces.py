"""ACME nonces (RFC 8555 7.2): single use across every worker and replica.

A nonce is issued without a write: 8 bytes of expiry time and 12 random bytes, MACed with a key every
replica shares (kept in the store). Checking it verifies the MAC and the expiry, then records it as used
in the store with an insert whose key is the nonce's body (expiry first, so keys sort by expiry): only the
first use anywhere succeeds. The MAC key grants nothing beyond minting nonces (each is still single use);
it is not a credential.

The MAC covers a version label before the body: nonces of the earlier format (whose used ones were kept
under their text, elsewhere) fail it, so one used before an upgrade cannot be used again after it."""

from __future__ import annotations

import hmac
import os
import time

from gatewaycerts.domain.acme import AcmeProblem
from gatewaycerts.pki.jws import JoseError, b64d, b64e
from gatewaycerts.store.interfaces import AcmeStore

NONCE_SECONDS = 3600
_MAC_BYTES = 12
_BODY_BYTES = 20
_LABEL = b"gatewaycerts acme nonce v2:"
# hmac.digest: the same HMAC-SHA256 in one call (OpenSSL's one-shot), without the HMAC object hmac.new builds
# (4 against 10-15 µs here, on every ACME response and every signed request).


class NonceService:
    def __init__(self, store: AcmeStore, *, lifetime_seconds: int = NONCE_SECONDS) -> None:
        self._store = store
        self._key: bytes | None = None
        self._lifetime = lifetime_seconds

    async def _mac_key(self) -> bytes:
        if self._key is None:
            self._key = await self._store.nonce_key(os.urandom(32))
        return self._key

    async def new(self) -> str:
        key = await self._mac_key()
        body = int(time.time() + self._lifetime).to_bytes(8, "big") + os.urandom(12)
        return b64e(body + hmac.digest(key, _LABEL + body, "sha256")[:_MAC_BYTES])

    async def use(self, nonce: object) -> None:
        """Accept `nonce` once; AcmeProblem badNonce otherwise."""
        if not isinstance(nonce, str) or not nonce:
            raise AcmeProblem("badNonce", "the JWS protected header has no nonce")
        try:
            raw = b64d(nonce, "nonce")
        except JoseError:
            raise AcmeProblem("badNonce", "the nonce was not issued by this server") from None
        key = await self._mac_key()
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(body) != _BODY_BYTES or not hmac.compare_digest(
            hmac.digest(key, _LABEL + body, "sha256")[:_MAC_BYTES], mac
        ):
            raise AcmeProblem("badNonce", "the nonce was not issued by this server")
        expires = int.from_bytes(body[:8], "big")
        if expires < time.time():
            raise AcmeProblem("badNonce", "the nonce has expired; get a new one")
        if not await self._store.use_nonce(body):
            raise AcmeProblem("badNonce", "the nonce has been used already")
