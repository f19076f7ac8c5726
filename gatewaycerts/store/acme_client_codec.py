"""ACME client records <-> plain documents (both stores use the same shape; dates are aware UTC datetimes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from gatewaycerts.domain.acme_client import AcmeAccount, ChallengeToken, DnsUpdateConfig
from gatewaycerts.keyvault import envelope_kek_id

# The indexed KEK labels every write stores beside the document (EnvelopeStore): the KEK id each envelope
# names, "" without one (an account registered without EAB).
ACCOUNT_KEY_LABEL = "kek_id"  # AcmeAccount.key_envelope
ACCOUNT_EAB_LABEL = "eab_kek_id"  # AcmeAccount.eab_hmac_envelope
DNS_CONFIG_LABEL = "kek_id"  # DnsUpdateConfig.tsig_secret_envelope


def account_labels(a: AcmeAccount) -> dict[str, str]:
    return {
        ACCOUNT_KEY_LABEL: envelope_kek_id(a.key_envelope),
        ACCOUNT_EAB_LABEL: envelope_kek_id(a.eab_hmac_envelope),
    }


def dns_config_labels(c: DnsUpdateConfig) -> dict[str, str]:
    return {DNS_CONFIG_LABEL: envelope_kek_id(c.tsig_secret_envelope)}


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def account_to_doc(a: AcmeAccount) -> dict[str, Any]:
    return {
        "_id": a.id,
        "project_id": a.project_id,
        "directory_url": a.directory_url,
        "contact": list(a.contact),
        "terms_agreed": a.terms_agreed,
        "eab_kid": a.eab_kid,
        "eab_hmac_envelope": a.eab_hmac_envelope,
        "key_envelope": a.key_envelope,
        "account_url": a.account_url,
        "create_time": a.create_time,
        "revision": a.revision,
    }


def account_from_doc(d: dict[str, Any]) -> AcmeAccount:
    return AcmeAccount(
        id=d["_id"],
        project_id=d["project_id"],
        directory_url=d["directory_url"],
        contact=tuple(d["contact"]),
        terms_agreed=bool(d["terms_agreed"]),
        eab_kid=d.get("eab_kid"),
        eab_hmac_envelope=None if d.get("eab_hmac_envelope") is None else bytes(d["eab_hmac_envelope"]),
        key_envelope=bytes(d["key_envelope"]),
        account_url=d["account_url"],
        create_time=_utc(d["create_time"]),
        revision=int(d["revision"]),
    )


def dns_config_to_doc(c: DnsUpdateConfig) -> dict[str, Any]:
    return {
        "_id": c.id,
        "project_id": c.project_id,
        "server": c.server,
        "port": c.port,
        "zone": c.zone,
        "tsig_key_name": c.tsig_key_name,
        "tsig_algorithm": c.tsig_algorithm,
        "tsig_secret_envelope": c.tsig_secret_envelope,
        "create_time": c.create_time,
        "revision": c.revision,
    }


def dns_config_from_doc(d: dict[str, Any]) -> DnsUpdateConfig:
    return DnsUpdateConfig(
        id=d["_id"],
        project_id=d["project_id"],
        server=d["server"],
        port=int(d["port"]),
        zone=d["zone"],
        tsig_key_name=d["tsig_key_name"],
        tsig_algorithm=d["tsig_algorithm"],
        tsig_secret_envelope=bytes(d["tsig_secret_envelope"]),
        create_time=_utc(d["create_time"]),
        revision=int(d["revision"]),
    )


def token_to_doc(t: ChallengeToken) -> dict[str, Any]:
    return {
        "_id": f"{t.project_id}|{t.token}",
        "project_id": t.project_id,
        "token": t.token,
        "key_authorization": t.key_authorization,
        "expire_time": t.expire_time,
    }


def token_from_doc(d: dict[str, Any]) -> ChallengeToken:
    return ChallengeToken(
        project_id=d["project_id"],
        token=d["token"],
        key_authorization=d["key_authorization"],
        expire_time=_utc(d["expire_time"]),
    )
