"""The one mapping between managed certificates / chain revisions and stored documents (both adapters)."""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain.managed import ChainRevision, ManagedCertificate, RenewalState, WindowSource
from gatewaycerts.domain.models import CertificateScope
from gatewaycerts.store.codec import utc

_TIMES = (
    "due_at",
    "create_time",
    "update_time",
    "window_start",
    "window_end",
    "last_attempt_at",
    "last_success_at",
    "claim_until",
)


def managed_to_doc(m: ManagedCertificate) -> dict[str, Any]:
    return {
        "_id": m.id,
        "project_id": m.project_id,
        "name": m.name,
        "type": m.scope.value,
        "instance_id": m.instance_id,
        "domains": list(m.domains),
        "source": m.source,
        "key_algorithm": m.key_algorithm,
        "settings": dict(m.settings),
        "state": m.state.value,
        "due_at": m.due_at,
        "create_time": m.create_time,
        "update_time": m.update_time,
        "window_source": m.window_source.value if m.window_source else None,
        "window_start": m.window_start,
        "window_end": m.window_end,
        "last_attempt_at": m.last_attempt_at,
        "last_success_at": m.last_success_at,
        "consecutive_failures": m.consecutive_failures,
        "last_error": m.last_error,
        "claimed_by": m.claimed_by,
        "claim_until": m.claim_until,
        "attempt_id": m.attempt_id,
        "installed_attempt": m.installed_attempt,
        "revision": m.revision,
        "renewals": m.renewals,
    }


def managed_from_doc(d: dict[str, Any]) -> ManagedCertificate:
    times = {k: utc(d.get(k)) for k in _TIMES}
    return ManagedCertificate(
        id=d["_id"],
        project_id=d["project_id"],
        name=d["name"],
        scope=CertificateScope(d["type"]),
        instance_id=d["instance_id"],
        domains=tuple(d.get("domains") or ()),
        source=d["source"],
        key_algorithm=d["key_algorithm"],
        settings=dict(d.get("settings") or {}),
        state=RenewalState(d["state"]),
        window_source=WindowSource(d["window_source"]) if d.get("window_source") else None,
        consecutive_failures=int(d.get("consecutive_failures") or 0),
        last_error=d.get("last_error"),
        claimed_by=d.get("claimed_by"),
        attempt_id=d.get("attempt_id"),
        installed_attempt=d.get("installed_attempt"),
        revision=int(d["revision"]),
        renewals=int(d.get("renewals") or 0),
        **times,
    )


def chain_revision_to_doc(c: ChainRevision) -> dict[str, Any]:
    return {
        "_id": f"{c.certificate_id}@{c.revision}",
        "project_id": c.project_id,
        "certificate_id": c.certificate_id,
        "revision": c.revision,
        "chain_pem": c.chain_pem,
        "fingerprint_sha256": c.fingerprint_sha256,
        "serial_number": c.serial_number,
        "not_before": c.not_before,
        "not_after": c.not_after,
        "recorded_at": c.recorded_at,
        "extra": dict(c.extra),
    }


def chain_revision_from_doc(d: dict[str, Any]) -> ChainRevision:
    return ChainRevision(
        project_id=d["project_id"],
        certificate_id=d["certificate_id"],
        revision=int(d["revision"]),
        chain_pem=d["chain_pem"],
        fingerprint_sha256=d["fingerprint_sha256"],
        serial_number=d["serial_number"],
        not_before=utc(d["not_before"]),
        not_after=utc(d["not_after"]),
        recorded_at=utc(d["recorded_at"]),
        extra=dict(d.get("extra") or {}),
    )
