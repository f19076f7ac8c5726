"""The one document mapping of an access key, shared by the SQLite and MongoDB adapters."""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain.access_keys import AccessKey, AccessKeyStatus
from gatewaycerts.domain.models import Role
from gatewaycerts.keyvault import envelope_kek_id
from gatewaycerts.store.codec import utc


def key_to_doc(key: AccessKey) -> dict[str, Any]:
    return {
        "_id": key.access,
        "project_id": key.project_id,
        "role": key.role.value,
        "status": key.status.value,
        "description": key.description,
        "create_time": key.create_time,
        "created_by": key.created_by,
        "secret": key.encrypted_secret,
        "kek_id": envelope_kek_id(key.encrypted_secret),
        "revision": key.revision,
    }


def key_from_doc(doc: dict[str, Any]) -> AccessKey:
    return AccessKey(
        access=doc["_id"],
        project_id=doc["project_id"],
        role=Role(doc["role"]),
        status=AccessKeyStatus(doc["status"]),
        description=doc.get("description", ""),
        create_time=utc(doc["create_time"]),
        created_by=doc.get("created_by", ""),
        encrypted_secret=bytes(doc["secret"]),
        revision=int(doc.get("revision", 0)),
    )
