"""ACME nonces (RFC 8555 7.2): single use across every worker and replica.

A nonce is issued without a write: 8 bytes of expiry time and 12 random bytes, MACed with a key every
replica shares (kept in the store). Checking it verifies the MAC and the expiry, then records it as used
in the store with an insert whose key is the nonce: only the first use anywhere succeeds. The MAC key
grants nothing beyond minting nonces (each is still single use); it is not a credential."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from datetime import UTC, datetime

from gatewaycerts.domain.acme import AcmeProblem
from gatewaycerts.pki.jws import JoseError, b64d, b64e
from gatewaycerts.store.interfaces import AcmeStore

NONCE_SECONDS = 3600
_MAC_BYTES = 12


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
        return b64e(body + hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES])

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
        if len(body) != 20 or not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES], mac):
            raise AcmeProblem("badNonce", "the nonce was not issued by this server")
        expires = int.from_bytes(body[:8], "big")
        if expires < time.time():
            raise AcmeProblem("badNonce", "the nonce has expired; get a new one")
        if not await self._store.use_nonce(nonce, datetime.fromtimestamp(expires, UTC)):
            raise AcmeProblem("badNonce", "the nonce has been used already")
