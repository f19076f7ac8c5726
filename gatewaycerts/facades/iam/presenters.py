"""Access keys as IAM shows them: the listed fields only, never the secret's envelope."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from gatewaycerts.domain.access_keys import AccessKey


def credential(key: AccessKey) -> dict[str, Any]:
    return {
        "access": key.access,
        "status": key.status.value,
        "role": key.role.value,
        "project_id": key.project_id,
        "create_time": key.create_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "description": key.description,
    }


def created(key: AccessKey, secret: str) -> dict[str, Any]:
    return {"credential": {**credential(key), "secret": secret}}
