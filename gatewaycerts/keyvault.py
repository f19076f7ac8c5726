"""Envelope encryption of private keys at rest: AES-256-GCM data keys wrapped by versioned KEKs.

Each secret gets a fresh 256-bit data key; the data key is wrapped with the active key-encryption key
(KEK). The record's identity (e.g. project and certificate id) is bound as associated data, so a
ciphertext copied onto another record does not decrypt. Every configured KEK can unwrap, the last one
listed wraps: adding a new KEK at the end rotates without breaking old records.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_KEK_ID = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
FORMAT_VERSION = 1


class KeyVaultError(Exception):
    """Misconfigured KEKs, or a ciphertext that cannot be decrypted with them."""


@dataclass(frozen=True, slots=True)
class KeyEncryptionKey:
    kek_id: str
    key: bytes = b""

    def __repr__(self) -> str:  # never print key bytes
        return f"KeyEncryptionKey(kek_id={self.kek_id!r})"


def parse_keks(spec: str) -> list[KeyEncryptionKey]:
    """Parse `id:base64key` entries separated by commas or newlines; '#' starts a comment line."""
    keks: list[KeyEncryptionKey] = []
    for raw in re.split(r"[,\n]", spec):
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        kek_id, sep, b64 = entry.partition(":")
        if not sep or not _KEK_ID.match(kek_id):
            raise KeyVaultError("each KEK must be written as ID:BASE64 with ID of 1-32 letters, digits, _ . -")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise KeyVaultError(f"KEK {kek_id!r} is not valid base64") from None
        if len(key) != 32:
            raise KeyVaultError(f"KEK {kek_id!r} must be 32 bytes (AES-256), got {len(key)}")
        if any(k.kek_id == kek_id for k in keks):
            raise KeyVaultError(f"KEK id {kek_id!r} is listed twice")
        keks.append(KeyEncryptionKey(kek_id, key))
    if not keks:
        raise KeyVaultError("no key-encryption key configured")
    return keks


def new_kek_line(kek_id: str) -> str:
    return f"{kek_id}:{base64.b64encode(os.urandom(32)).decode('ascii')}"


# How encrypt() begins every envelope (json.dumps of its dict, in order, compact), up to the end of the KEK id.
_ENVELOPE_HEAD = re.compile(rb'\{"v":1,"alg":"AES-256-GCM","kek":"([A-Za-z0-9_.-]{1,32})",')


def envelope_kek_id(blob: bytes | None) -> str:
    """The KEK id an envelope names, or "" for no blob or one that is not an envelope (stores index this)."""
    if not blob:
        return ""
    # Every write labels its record with this, right after encrypt() made the envelope: read the id from the
    # head encrypt() writes instead of decoding the whole envelope (~1 against ~15 µs). Only when the answer is
    # json.loads's for every envelope encrypt() writes: no escapes anywhere (so no key is spelt differently) and
    # the "kek" key only once. (A damaged blob with an intact head and tail is labelled with its head's id.)
    head = _ENVELOPE_HEAD.match(blob)
    if head is not None and blob.endswith(b'"}') and b"\\" not in blob and blob.count(b'"kek"') == 1:
        return head.group(1).decode("ascii")
    try:
        kek_id = json.loads(blob)["kek"]
    except (ValueError, KeyError, TypeError):
        return ""
    return kek_id if isinstance(kek_id, str) else ""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class ParsedEnvelope(NamedTuple):
    kek_id: str
    wrap_nonce: bytes
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


class KeyVault:
    def __init__(self, keks: list[KeyEncryptionKey]) -> None:
        if not keks:
            raise KeyVaultError("no key-encryption key configured")
        self._keks = {k.kek_id: k for k in keks}
        self._active = keks[-1]
        # One AES-GCM cipher per KEK, set up once (its key schedule is most of the cost of a DEK unwrap); the
        # DEKs are unwrapped per call and never kept.
        self._unwrappers = {k.kek_id: AESGCM(k.key) for k in keks}

    @property
    def active_kek_id(self) -> str:
        return self._active.kek_id

    @property
    def kek_ids(self) -> tuple[str, ...]:
        """The configured KEK ids, oldest first (the last one wraps)."""
        return tuple(self._keks)

    def encrypt(self, plaintext: bytes, *, context: str) -> bytes:
        aad = context.encode("utf-8")
        dek = AESGCM.generate_key(bit_length=256)
        data_nonce, wrap_nonce = os.urandom(12), os.urandom(12)
        ciphertext = AESGCM(dek).encrypt(data_nonce, plaintext, aad)
        wrapped = self._unwrappers[self._active.kek_id].encrypt(wrap_nonce, dek, aad)
        if _KEK_ID.match(self._active.kek_id):
            # json.dumps's own text for these values (base64 and a KEK id of [A-Za-z0-9_.-] need no escape),
            # written directly: ~2 against ~15 µs for the dict's JSON (tests/unit/test_keyvault.py checks both)
            return (
                f'{{"v":{FORMAT_VERSION},"alg":"AES-256-GCM","kek":"{self._active.kek_id}",'
                f'"wn":"{_b64(wrap_nonce)}","wk":"{_b64(wrapped)}","n":"{_b64(data_nonce)}","ct":"{_b64(ciphertext)}"}}'
            ).encode("ascii")
        envelope = {
            "v": FORMAT_VERSION,
            "alg": "AES-256-GCM",
            "kek": self._active.kek_id,
            "wn": _b64(wrap_nonce),
            "wk": _b64(wrapped),
            "n": _b64(data_nonce),
            "ct": _b64(ciphertext),
        }
        return json.dumps(envelope, separators=(",", ":")).encode("ascii")

    def kek_id_of(self, blob: bytes) -> str:
        try:
            return str(json.loads(blob)["kek"])
        except (ValueError, KeyError, TypeError):
            raise KeyVaultError("not an envelope of this key vault") from None

    def decrypt(self, blob: bytes, *, context: str) -> bytes:
        return self.open(self.parse(blob), context=context)

    @staticmethod
    def parse(blob: bytes) -> ParsedEnvelope:
        """The envelope's fields, decoded (still encrypted: parsing reveals nothing), for a caller that opens
        the same envelope often (delivery to gateways) and would otherwise parse it every time."""
        try:
            env = json.loads(blob)
            if env.get("v") != FORMAT_VERSION:
                raise KeyVaultError(f"unknown envelope version {env.get('v')!r}")
            return ParsedEnvelope(
                str(env["kek"]),
                base64.b64decode(env["wn"]),
                base64.b64decode(env["wk"]),
                base64.b64decode(env["n"]),
                base64.b64decode(env["ct"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise KeyVaultError("malformed envelope") from None

    def open(self, env: ParsedEnvelope, *, context: str) -> bytes:
        """The plaintext of a parsed envelope."""
        aad = context.encode("utf-8")
        unwrapper = self._unwrappers.get(env.kek_id)
        if unwrapper is None:
            raise KeyVaultError(f"key-encryption key {env.kek_id!r} is not configured")
        try:
            dek = unwrapper.decrypt(env.wrap_nonce, env.wrapped_key, aad)
            return AESGCM(dek).decrypt(env.nonce, env.ciphertext, aad)
        except InvalidTag:
            raise KeyVaultError("envelope does not decrypt (wrong key or wrong record)") from None
        except (ValueError, TypeError):
            raise KeyVaultError("malformed envelope") from None

    def rewrap(self, blob: bytes, *, context: str) -> bytes:
        """Re-encrypt under the active KEK (for rotation)."""
        return self.encrypt(self.decrypt(blob, context=context), context=context)


@lru_cache(maxsize=256)
def parse_envelope(blob: bytes) -> ParsedEnvelope:
    """KeyVault.parse, kept per envelope text, for an envelope opened at every use (a CA's key, at each signature:
    the parse is ~11 of an open's ~15 us). A parsed envelope is still ciphertext; the key is opened per call and
    never kept. Keyed by the text itself, so a rewrapped envelope is parsed anew."""
    return KeyVault.parse(blob)
