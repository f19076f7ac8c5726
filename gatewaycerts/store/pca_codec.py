"""The one mapping between CA-engine objects (Authority, IssuedCertificate) and stored documents."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gatewaycerts.domain.errors import DuplicateRequestError
from gatewaycerts.domain.pca import (
    Authority,
    CaStatus,
    CaType,
    CrlConfiguration,
    CrlState,
    DistinguishedName,
    GenMode,
    IssuedCertificate,
    IssuedKind,
    IssuedStatus,
    KeyAlgorithm,
    KeyUsage,
    OcspSigner,
    PcaQuery,
    RevocationReason,
    RevokedSerial,
    SanType,
    SerialStatus,
    SignatureHash,
    SubjectAltName,
)
from gatewaycerts.domain.requests import CertificateRequest, RequestStatus
from gatewaycerts.keyvault import envelope_kek_id
from gatewaycerts.store.codec import utc

# Not needed to present a list item; adapters leave them out of list queries.
AUTHORITY_HEAVY = ("encrypted_key", "certificate_pem", "chain_pem", "csr_pem", "crl", "ocsp_signer")
CERTIFICATE_HEAVY = ("encrypted_key", "certificate_pem", "chain_pem")

# The statuses a client can see that are derived from time rather than stored.
_CA_EXPIRABLE = (CaStatus.ACTIVED.value, CaStatus.DISABLED.value)
_CERT_EXPIRABLE = (IssuedStatus.ISSUED.value,)


def _dn_to_doc(dn: DistinguishedName) -> dict[str, Any]:
    return {
        "common_name": dn.common_name,
        "country": dn.country,
        "state": dn.state,
        "locality": dn.locality,
        "organization": dn.organization,
        "organizational_unit": dn.organizational_unit,
    }


def _dn_from_doc(d: dict[str, Any]) -> DistinguishedName:
    return DistinguishedName(**{k: d.get(k) for k in _dn_to_doc(DistinguishedName("x"))})


def _enum(value: Any) -> Any:
    return None if value is None else value.value


def authority_to_doc(ca: Authority) -> dict[str, Any]:
    crl = ca.crl
    return {
        "_id": ca.id,
        "project_id": ca.project_id,
        "type": ca.type.value,
        "status": ca.status.value,
        "distinguished_name": _dn_to_doc(ca.distinguished_name),
        "common_name": ca.distinguished_name.common_name,
        "key_algorithm": ca.key_algorithm.value,
        "signature_algorithm": ca.signature_algorithm.value,
        "issuer_id": ca.issuer_id,
        "issuer_name": ca.issuer_name,
        "path_length": ca.path_length,
        "key_usages": [u.value for u in ca.key_usages],
        "crl_configuration": {
            "enabled": ca.crl_configuration.enabled,
            "crl_name": ca.crl_configuration.crl_name,
            "valid_days": ca.crl_configuration.valid_days,
        },
        "encrypted_key": ca.encrypted_key,
        "kek_id": envelope_kek_id(ca.encrypted_key),
        "certificate_pem": ca.certificate_pem,
        "chain_pem": ca.chain_pem,
        "csr_pem": ca.csr_pem,
        "serial_number": ca.serial_number,
        "not_before": ca.not_before,
        "not_after": ca.not_after,
        "gen_mode": ca.gen_mode.value,
        "create_time": ca.create_time,
        "update_time": ca.update_time,
        "revision": ca.revision,
        "delete_time": ca.delete_time,
        "status_before_delete": _enum(ca.status_before_delete),
        "revoked_at": ca.revoked_at,
        "revocation_reason": _enum(ca.revocation_reason),
        "crl": None
        if crl is None
        else {
            "number": crl.number,
            "this_update": crl.this_update,
            "next_update": crl.next_update,
            "der": crl.der,
            "revoked_count": crl.revoked_count,
        },
        "ocsp_signer": None
        if ca.ocsp_signer is None
        else {
            "certificate_pem": ca.ocsp_signer.certificate_pem,
            "encrypted_key": ca.ocsp_signer.encrypted_key,
            "serial_number": ca.ocsp_signer.serial_number,
            "not_after": ca.ocsp_signer.not_after,
        },
    }


def authority_from_doc(d: dict[str, Any]) -> Authority:
    crl = d.get("crl")
    conf = d["crl_configuration"]
    return Authority(
        id=d["_id"],
        project_id=d["project_id"],
        type=CaType(d["type"]),
        status=CaStatus(d["status"]),
        distinguished_name=_dn_from_doc(d["distinguished_name"]),
        key_algorithm=KeyAlgorithm(d["key_algorithm"]),
        signature_algorithm=SignatureHash(d["signature_algorithm"]),
        issuer_id=d.get("issuer_id"),
        issuer_name=d.get("issuer_name"),
        path_length=d.get("path_length"),
        key_usages=tuple(KeyUsage(u) for u in d.get("key_usages", ())),
        crl_configuration=CrlConfiguration(
            enabled=bool(conf["enabled"]), crl_name=conf.get("crl_name"), valid_days=int(conf["valid_days"])
        ),
        encrypted_key=bytes(d.get("encrypted_key") or b""),
        certificate_pem=d.get("certificate_pem"),
        chain_pem=d.get("chain_pem") or "",
        csr_pem=d.get("csr_pem"),
        serial_number=d.get("serial_number"),
        not_before=utc(d.get("not_before")),
        not_after=utc(d.get("not_after")),
        gen_mode=GenMode(d["gen_mode"]),
        create_time=utc(d["create_time"]),  # type: ignore[arg-type]
        update_time=utc(d["update_time"]),  # type: ignore[arg-type]
        revision=int(d.get("revision", 0)),
        delete_time=utc(d.get("delete_time")),
        status_before_delete=CaStatus(d["status_before_delete"]) if d.get("status_before_delete") else None,
        revoked_at=utc(d.get("revoked_at")),
        revocation_reason=RevocationReason(d["revocation_reason"]) if d.get("revocation_reason") else None,
        crl=None
        if not crl
        else CrlState(
            number=int(crl["number"]),
            this_update=utc(crl["this_update"]),  # type: ignore[arg-type]
            next_update=utc(crl["next_update"]),  # type: ignore[arg-type]
            der=bytes(crl["der"]),
            revoked_count=int(crl.get("revoked_count", 0)),
        ),
        ocsp_signer=_ocsp_signer_from_doc(d.get("ocsp_signer")),
    )


def _ocsp_signer_from_doc(d: dict[str, Any] | None) -> OcspSigner | None:
    if not d:
        return None
    return OcspSigner(
        certificate_pem=d["certificate_pem"],
        encrypted_key=bytes(d["encrypted_key"]),
        serial_number=d["serial_number"],
        not_after=utc(d["not_after"]),  # type: ignore[arg-type]
    )


def certificate_to_doc(c: IssuedCertificate) -> dict[str, Any]:
    return {
        "_id": c.id,
        "project_id": c.project_id,
        "issuer_id": c.issuer_id,
        "issuer_name": c.issuer_name,
        "kind": c.kind.value,
        "status": c.status.value,
        "distinguished_name": _dn_to_doc(c.distinguished_name),
        "common_name": c.distinguished_name.common_name,
        "key_algorithm": _enum(c.key_algorithm),
        "signature_algorithm": c.signature_algorithm.value,
        "serial_number": c.serial_number,
        "not_before": c.not_before,
        "not_after": c.not_after,
        "gen_mode": c.gen_mode.value,
        "certificate_pem": c.certificate_pem,
        "chain_pem": c.chain_pem,
        "encrypted_key": c.encrypted_key,
        "kek_id": envelope_kek_id(c.encrypted_key),
        "create_time": c.create_time,
        "sans": [{"type": s.type.value, "value": s.value} for s in c.sans],
        "revision": c.revision,
        "revoked_at": c.revoked_at,
        "revocation_reason": _enum(c.revocation_reason),
        "delete_time": c.delete_time,
    }


def certificate_from_doc(d: dict[str, Any]) -> IssuedCertificate:
    key = d.get("encrypted_key")
    return IssuedCertificate(
        id=d["_id"],
        project_id=d["project_id"],
        issuer_id=d["issuer_id"],
        issuer_name=d.get("issuer_name") or "",
        kind=IssuedKind(d["kind"]),
        status=IssuedStatus(d["status"]),
        distinguished_name=_dn_from_doc(d["distinguished_name"]),
        key_algorithm=KeyAlgorithm(d["key_algorithm"]) if d.get("key_algorithm") else None,
        signature_algorithm=SignatureHash(d["signature_algorithm"]),
        serial_number=d["serial_number"],
        not_before=utc(d["not_before"]),  # type: ignore[arg-type]
        not_after=utc(d["not_after"]),  # type: ignore[arg-type]
        gen_mode=GenMode(d["gen_mode"]),
        certificate_pem=d.get("certificate_pem") or "",
        chain_pem=d.get("chain_pem") or "",
        encrypted_key=None if key is None else bytes(key),
        create_time=utc(d["create_time"]),  # type: ignore[arg-type]
        sans=tuple(SubjectAltName(SanType(s["type"]), s["value"]) for s in d.get("sans", ())),
        revision=int(d.get("revision", 0)),
        revoked_at=utc(d.get("revoked_at")),
        revocation_reason=RevocationReason(d["revocation_reason"]) if d.get("revocation_reason") else None,
        delete_time=utc(d.get("delete_time")),
    )


@dataclass(frozen=True, slots=True)
class StatusClause:
    """A client-visible status as a stored-status set plus an expiry condition relative to `now`."""

    stored: tuple[str, ...]
    expired: bool | None  # True: not_after < now; False: not_after >= now; None: no condition


def status_clause(status: str | None, *, authority: bool) -> StatusClause | None:
    if not status:
        return None
    expirable = _CA_EXPIRABLE if authority else _CERT_EXPIRABLE
    if status == "EXPIRED":
        return StatusClause(stored=expirable, expired=True)
    if status in expirable:
        return StatusClause(stored=(status,), expired=False)
    return StatusClause(stored=(status,), expired=None)


SORT_FIELDS = {"create_time", "common_name", "not_after", "type", "issuer_name"}


def sort_field(query: PcaQuery, *, authority: bool) -> str:
    key = query.sort_key.value
    allowed = (
        {"create_time", "common_name", "not_after", "type"}
        if authority
        else {
            "create_time",
            "common_name",
            "not_after",
            "issuer_name",
        }
    )
    return key if key in allowed else "create_time"


def revoked_from_doc(doc: dict[str, Any]) -> RevokedSerial:
    """A CRL entry from a revoked certificate's or subordinate CA's document."""
    return RevokedSerial(
        serial_number=int(doc["serial_number"]),
        revoked_at=utc(doc["revoked_at"]),  # type: ignore[arg-type]
        reason=RevocationReason(doc.get("revocation_reason") or RevocationReason.UNSPECIFIED.value),
    )


_REVOKED_STATUSES = frozenset({"REVOKED", "Revoked"})  # authorities and certificates; certificate requests


def serial_status_from_docs(serial_number: int, docs: list[dict[str, Any]]) -> SerialStatus | None:
    """One serial's status from the documents that carry it: revoked as revoked_serials (the CRL) says."""
    if not docs:
        return None
    for doc in docs:
        if doc.get("status") in _REVOKED_STATUSES:
            entry = revoked_from_doc(doc)
            return SerialStatus(serial_number, entry.revoked_at, entry.reason)
    return SerialStatus(serial_number)


def serial_status_from_rows(
    serial_number: int, rows: Iterable[tuple[str, datetime | str | None, str | None]]
) -> SerialStatus | None:
    """As serial_status_from_docs, from (status, revoked_at, revocation_reason) rows of the records carrying the
    serial (revoked_at as a datetime or its ISO text), without a document per row."""
    found = False
    for status, revoked_at, reason in rows:
        found = True
        if status in _REVOKED_STATUSES:
            when = datetime.fromisoformat(revoked_at) if isinstance(revoked_at, str) else revoked_at
            return SerialStatus(
                serial_number,
                utc(when),  # type: ignore[arg-type]
                RevocationReason(reason or RevocationReason.UNSPECIFIED.value),
            )
    return SerialStatus(serial_number) if found else None


def duplicate_request() -> DuplicateRequestError:
    """What either adapter raises when a CSR is outstanding already in the project."""
    return DuplicateRequestError(
        "this CSR is outstanding already in this project; follow the existing request", field="csr"
    )


def request_to_doc(r: CertificateRequest) -> dict[str, Any]:
    return {
        "_id": r.id,
        "project_id": r.project_id,
        "csr_pem": r.csr_pem,
        "csr_fingerprint": r.csr_fingerprint,
        "common_name": r.common_name,
        "status": r.status.value,
        "requested_by": r.requested_by,
        "create_time": r.create_time,
        "update_time": r.update_time,
        "certificate_chain_pem": r.certificate_chain_pem,
        "issuer_id": r.issuer_id,
        "serial_number": r.serial_number,
        "not_after": r.not_after,
        "signing_until": r.signing_until,
        "revoked_at": r.revoked_at,
        "revocation_reason": _enum(r.revocation_reason),
        "delete_time": r.delete_time,
        "revision": r.revision,
    }


def request_from_doc(d: dict[str, Any]) -> CertificateRequest:
    return CertificateRequest(
        id=d["_id"],
        project_id=d["project_id"],
        csr_pem=d["csr_pem"],
        csr_fingerprint=d["csr_fingerprint"],
        common_name=d.get("common_name") or "",
        status=RequestStatus(d["status"]),
        requested_by=d.get("requested_by") or "",
        create_time=utc(d["create_time"]),  # type: ignore[arg-type]
        update_time=utc(d["update_time"]),  # type: ignore[arg-type]
        certificate_chain_pem=d.get("certificate_chain_pem") or "",
        issuer_id=d.get("issuer_id"),
        serial_number=d.get("serial_number"),
        not_after=utc(d.get("not_after")),
        signing_until=utc(d.get("signing_until")),
        revoked_at=utc(d.get("revoked_at")),
        revocation_reason=RevocationReason(d["revocation_reason"]) if d.get("revocation_reason") else None,
        delete_time=utc(d.get("delete_time")),
        revision=int(d.get("revision", 0)),
    )
