"""ACME records <-> stored documents (shared by the SQLite and MongoDB adapters).

Each record is stored as (kind, id, ca_id, lookup, status, claim_until, sort, revision, doc): the columns
that queries use, and the whole record as a document."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, NamedTuple

from gatewaycerts.domain.acme import (
    PROCESSING,
    Account,
    AcmeCertificate,
    AcmeOrder,
    AcmePolicy,
    Authorization,
    Challenge,
    EabKey,
    Identifier,
)
from gatewaycerts.keyvault import envelope_kek_id

POLICY, EAB, ACCOUNT, ACCOUNT_KEY, ORDER, AUTHZ, CERT, REPLACED, NONCE, SECRET = (
    "policy",
    "eab",
    "account",
    "account-key",
    "order",
    "authz",
    "cert",
    "replaced",
    "nonce",
    "secret",
)


class Row(NamedTuple):
    kind: str
    id: str
    ca_id: str
    lookup: str | None
    status: str | None
    claim_until: datetime | None
    sort: str
    revision: int
    doc: dict[str, Any]


def _plain(record: Any) -> dict[str, Any]:
    doc = asdict(record)
    for key, value in list(doc.items()):
        if isinstance(value, tuple):
            doc[key] = list(value)
    return doc


def policy_row(p: AcmePolicy) -> Row:
    return Row(POLICY, p.ca_id, p.ca_id, p.project_id, None, None, "", p.revision, _plain(p))


def policy_from(doc: dict[str, Any]) -> AcmePolicy:
    return AcmePolicy(
        **{
            **doc,
            "allowed_domains": tuple(doc["allowed_domains"]),
            "challenge_types": tuple(doc["challenge_types"]),
        }
    )


def eab_row(k: EabKey) -> Row:
    return Row(EAB, k.kid, k.ca_id, k.ca_id, k.status, None, k.create_time.isoformat(), k.revision, _plain(k))


def kek_label(row: Row) -> str | None:
    """The indexed KEK label stored beside a row (EnvelopeStore): the KEK id an EAB key's HMAC key envelope
    names; None for the other kinds, which hold no envelope."""
    return envelope_kek_id(row.doc["encrypted_hmac_key"]) if row.kind == EAB else None


def eab_from(doc: dict[str, Any]) -> EabKey:
    return EabKey(**{**doc, "encrypted_hmac_key": bytes(doc["encrypted_hmac_key"])})


def account_row(a: Account) -> Row:
    return Row(ACCOUNT, a.id, a.ca_id, a.thumbprint, a.status, None, a.create_time.isoformat(), a.revision, _plain(a))


def account_from(doc: dict[str, Any]) -> Account:
    return Account(**{**doc, "contact": tuple(doc["contact"])})


def account_key_row(ca_id: str, thumbprint: str, account_id: str) -> Row:
    return Row(ACCOUNT_KEY, f"{ca_id}:{thumbprint}", ca_id, account_id, None, None, "", 0, {"account_id": account_id})


def order_row(o: AcmeOrder) -> Row:
    doc = _plain(o)
    doc["identifiers"] = [asdict(i) for i in o.identifiers]
    return Row(ORDER, o.id, o.ca_id, o.account_id, o.status, o.claim_until, o.id, o.revision, doc)


def order_from(doc: dict[str, Any]) -> AcmeOrder:
    return AcmeOrder(
        **{
            **doc,
            "identifiers": tuple(Identifier(**i) for i in doc["identifiers"]),
            "authorization_ids": tuple(doc["authorization_ids"]),
        }
    )


def authz_row(a: Authorization) -> Row:
    doc = _plain(a)
    doc["identifier"] = asdict(a.identifier)
    doc["challenges"] = [asdict(c) for c in a.challenges]
    working = any(c.status == PROCESSING for c in a.challenges)
    status = PROCESSING if working else a.status
    return Row(AUTHZ, a.id, a.ca_id, a.order_id, status, a.claim_until, a.create_time.isoformat(), a.revision, doc)


def authz_from(doc: dict[str, Any]) -> Authorization:
    return Authorization(
        **{
            **doc,
            "identifier": Identifier(**doc["identifier"]),
            "challenges": tuple(Challenge(**c) for c in doc["challenges"]),
        }
    )


def cert_row(c: AcmeCertificate) -> Row:
    return Row(CERT, f"{c.ca_id}:{c.serial_number}", c.ca_id, c.certificate_id, None, None, "", 0, _plain(c))


def cert_from(doc: dict[str, Any]) -> AcmeCertificate:
    names = {f.name for f in fields(AcmeCertificate)}
    return AcmeCertificate(**{k: v for k, v in doc.items() if k in names})
