"""Stored key envelopes as the KEK rotation and the start-up KEK check see them: which record, which blob."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The label a store keeps for a record without a readable envelope (no key held, or not an envelope).
NO_ENVELOPE = ""


class EnvelopeKind(enum.StrEnum):
    """Every kind of record that holds a KeyVault envelope (the value is the prefix of its AAD context)."""

    APIC_CERTIFICATE = "apic-certificate"  # Certificate.encrypted_private_key
    AUTHORITY = "pca-authority"  # Authority.encrypted_key
    ISSUED_CERTIFICATE = "pca-certificate"  # IssuedCertificate.encrypted_key (None when issued from a CSR)
    SECRET = "secret"  # Secret.encrypted_payload
    ORDER = "order"  # Order.encrypted_params (None unless the order carried a pass phrase)
    ACCESS_KEY = "access-key"  # AccessKey.encrypted_secret (the SK of an AK/SK pair)
    WEBHOOK_SECRET = "webhook"  # Webhook.encrypted_secret (the whsec_ signing secret)
    ACME_ACCOUNT_KEY = "acme-account"  # AcmeAccount.key_envelope (the ACME client's account key)
    ACME_ACCOUNT_EAB = "acme-account-eab"  # AcmeAccount.eab_hmac_envelope (None without EAB)
    DNS_UPDATE_TSIG = "dns-update-tsig"  # DnsUpdateConfig.tsig_secret_envelope (the TSIG secret)
    ACME_EAB_KEY = "acme-eab"  # EabKey.encrypted_hmac_key (the ACME server's EAB HMAC key; scope: its CA)


@dataclass(frozen=True, slots=True)
class StoredEnvelope:
    """One record's envelope as read from the store.

    `kek_id` is the store's indexed label (None: the record was written before labels existed and has not
    been re-wrapped since). `revision` is the record's revision when read, where the store keeps one for it
    (the MongoDB adapter needs it to claim the record); a rewrap compares the envelope itself. `scope` is the
    parent id the envelope's context names beside the record's own (an ACME server EAB key's CA), else None.
    """

    kind: EnvelopeKind
    project_id: str
    record_id: str
    envelope: bytes
    kek_id: str | None
    revision: int | None = None
    scope: str | None = None


class RewrapOutcome(enum.StrEnum):
    REWRAPPED = "rewrapped"
    CHANGED = "changed"  # the stored envelope is no longer the one read (re-encrypted or being changed)
    GONE = "gone"  # the record was deleted meanwhile; it stays deleted
