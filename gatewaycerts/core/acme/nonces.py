"""ACME nonces (RFC 8555 7.2): single use across every worker and replica.

A nonce is issued without a write: 8 bytes of expiry time and 12 random bytes, MACed with a key every
replica shares (kept in the store). Checking it verifies the MAC and the expiry, then records it as used
in the store with an insert whose key is the nonce's body (expiry first, so keys sort by expiry): only the
first use anywhere succeeds. The MAC key grants nothing beyond minting nonces (each is still single use);
it is not a credential.

The MAC covers a version label before the body: nonces of the earlier format (whose used ones were kept
under their text, elsewhere) fail it, so one used before an upgrade cannot be used again after it.

The MAC is HMAC-SHA256 (RFC 2104) computed from the key's inner and outer SHA-256 states, made once per
process (the label is folded into the inner one): per nonce, two state copies and two one-block hashes.
`hmac.digest` computed the same value but, in OpenSSL 3, fetched the HMAC and SHA-256 implementations by
name and built a MAC context on every call, and let go of the GIL while doing it (other threads took it):
4-6 us in a loop, 35-41 us per call during an ACME run (profile in docs/performance.md, "Stop 28: nonce").
The states are CPython's own SHA-256 (`_sha2` since 3.12, `_sha256` in 3.11; hashlib's OpenSSL one where
neither exists): the same speed in a loop, half the CPU during an ACME run (3.5 against 6.9 us per MAC, with
OpenSSL's digest dispatch no longer in the caches; docs/performance.md, "Stop 30").

A nonce's 12 random bytes come from `os.urandom`, read for RANDOM_POOL nonces at once and handed out in turn
(`random_part`): one getrandom system call per RANDOM_POOL nonces instead of one each (1.9 against 9.4 us a
nonce during an ACME run). A forked child starts with no pool of its own (`os.register_at_fork`), so
`serve --workers N` never hands out a parent's bytes twice. The pool holds at most RANDOM_POOL nonces' random
parts in the process's memory, which also holds the MAC key: nothing more is exposed."""

from __future__ import annotations

import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

from gatewaycerts.domain.acme import AcmeProblem
from gatewaycerts.store.interfaces import AcmeStore

NONCE_SECONDS = 3600
_MAC_BYTES = 12
_BODY_BYTES = 20
_LABEL = b"gatewaycerts acme nonce v2:"
_BLOCK = 64  # SHA-256's block size
_TEXT_CHARS = 43  # base64url of the 32 bytes (body + MAC) without padding: every nonce this server issues
# base64url <-> base64 in one bytes.translate; "+" and "/" (not base64url) become "!", which strict decoding refuses.
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_+/", b"+/!!")

try:  # CPython's own SHA-256 (the module docstring says why)
    from _sha2 import sha256 as _sha256  # CPython 3.12+ (HACL*)
except ImportError:
    try:
        from _sha256 import sha256 as _sha256  # CPython 3.11
    except ImportError:
        _sha256 = hashlib.sha256
SHA256_STATES: Callable[[bytes], Any] = _sha256

_RANDOM_BYTES = 12
RANDOM_POOL = 341  # nonces' random parts per os.urandom call (4,092 bytes)
_pool: list[Iterator[bytes]] = [iter(())]


def _no_pool_in_child() -> None:
    _pool[0] = iter(())


os.register_at_fork(after_in_child=_no_pool_in_child)


def random_part() -> bytes:
    """12 bytes from the OS's CSPRNG, each handed out once: the next of the pool's parts, a new pool when it is
    spent. A list iterator gives each element once, also to threads calling at the same moment (two threads
    that both find the pool spent each make one; the parts left in the one replaced are never handed out)."""
    part = next(_pool[0], None)
    if part is None:
        block = os.urandom(_RANDOM_BYTES * RANDOM_POOL)
        pool = iter([block[i : i + _RANDOM_BYTES] for i in range(0, len(block), _RANDOM_BYTES)])
        _pool[0] = pool
        part = next(pool)
    return part


def random_part_per_call() -> bytes:
    """One os.urandom call per nonce: what bench_acme's `--without nonce-random` puts back."""
    return os.urandom(_RANDOM_BYTES)


def nonce_mac(key: bytes, sha256: Callable[[bytes], Any] = SHA256_STATES) -> Callable[[bytes], bytes]:
    """body -> HMAC-SHA256(key, _LABEL + body) truncated to _MAC_BYTES, equal to `hmac.digest`'s (tested), from
    the precomputed inner and outer states of `sha256` (CPython's own by default)."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(bytes(b ^ 0x36 for b in key) + _LABEL)
    outer = sha256(bytes(b ^ 0x5C for b in key))

    def mac(body: bytes) -> bytes:
        h = inner.copy()
        h.update(body)
        o = outer.copy()
        o.update(h.digest())
        return o.digest()[:_MAC_BYTES]

    return mac


def nonce_mac_openssl(key: bytes) -> Callable[[bytes], bytes]:
    """The same MAC from hashlib's (OpenSSL's) SHA-256 states: what bench_acme's `--without nonce-sha` puts back."""
    return nonce_mac(key, hashlib.sha256)


def nonce_mac_one_shot(key: bytes) -> Callable[[bytes], bytes]:
    """The same MAC by `hmac.digest` (OpenSSL's one-shot HMAC): what bench_acme's `--without nonce-mac` puts back."""
    return lambda body: hmac.digest(key, _LABEL + body, "sha256")[:_MAC_BYTES]


class NonceService:
    def __init__(self, store: AcmeStore, *, lifetime_seconds: int = NONCE_SECONDS) -> None:
        self._store = store
        self._mac: Callable[[bytes], bytes] | None = None
        self._lifetime = lifetime_seconds
        self.mac_from_key = nonce_mac  # bench_acme swaps these two to measure the changes
        self.random_part = random_part

    async def _load_mac(self) -> Callable[[bytes], bytes]:
        if self._mac is None:
            self._mac = self.mac_from_key(await self._store.nonce_key(os.urandom(32)))
        return self._mac

    async def new(self) -> str:
        mac = self._mac or await self._load_mac()
        body = int(time.time() + self._lifetime).to_bytes(8, "big") + self.random_part()
        # pki.jws.b64e's result, without base64's two Python layers (on every ACME response)
        return binascii.b2a_base64(body + mac(body), newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()

    async def use(self, nonce: object) -> None:
        """Accept `nonce` once; AcmeProblem badNonce otherwise."""
        if not isinstance(nonce, str) or not nonce:
            raise AcmeProblem("badNonce", "the JWS protected header has no nonce")
        try:  # strict base64url without padding, as pki.jws.b64d, of the one length a nonce of ours has
            if len(nonce) != _TEXT_CHARS:
                raise ValueError
            raw = binascii.a2b_base64(nonce.encode("ascii").translate(_FROM_URLSAFE) + b"=", strict_mode=True)
        except (ValueError, binascii.Error):  # UnicodeEncodeError is a ValueError
            raise AcmeProblem("badNonce", "the nonce was not issued by this server") from None
        mac = self._mac or await self._load_mac()
        body = raw[:-_MAC_BYTES]
        if len(body) != _BODY_BYTES or not hmac.compare_digest(mac(body), raw[-_MAC_BYTES:]):
            raise AcmeProblem("badNonce", "the nonce was not issued by this server")
        expires = int.from_bytes(body[:8], "big")
        if expires < time.time():
            raise AcmeProblem("badNonce", "the nonce has expired; get a new one")
        if not await self._store.use_nonce(body):
            raise AcmeProblem("badNonce", "the nonce has been used already")
