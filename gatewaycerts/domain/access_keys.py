"""Access keys (Huawei IAM permanent access keys: AK/SK) and the parts of a signed request the core checks."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from gatewaycerts.domain.errors import NotFoundError
from gatewaycerts.domain.models import Role


class AccessKeyStatus(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One access key of a project. `encrypted_secret` is a KeyVault envelope of the secret (never the secret)."""

    access: str
    project_id: str
    role: Role
    status: AccessKeyStatus
    description: str
    create_time: datetime
    created_by: str
    encrypted_secret: bytes
    revision: int = 0


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What the web layer read from an `Authorization: SDK-HMAC-SHA256 ...` request.

    `string_to_sign` is computed from the request exactly as Huawei's SDK signer computes it; the core
    checks the date, finds the key and compares `signature` with HMAC-SHA256(secret, string_to_sign).
    """

    access: str
    sdk_date: str  # the X-Sdk-Date header, YYYYMMDDTHHMMSSZ
    string_to_sign: str
    signature: str
    project_header: str | None  # X-Project-Id, when sent


class AccessKeyNotFoundError(NotFoundError):
    """No access key with that id in the project."""
