"""Vocabulary of asynchronous orders (Barbican style): orders, and the secrets and containers they produce."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class OrderType(enum.StrEnum):
    KEY = "key"
    ASYMMETRIC = "asymmetric"
    CERTIFICATE = "certificate"


class OrderStatus(enum.StrEnum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"


class SecretType(enum.StrEnum):
    SYMMETRIC = "symmetric"
    PUBLIC = "public"
    PRIVATE = "private"
    PASSPHRASE = "passphrase"
    CERTIFICATE = "certificate"
    OPAQUE = "opaque"


class ContainerType(enum.StrEnum):
    GENERIC = "generic"
    RSA = "rsa"
    CERTIFICATE = "certificate"


@dataclass(frozen=True, slots=True)
class Order:
    """An order and its processing state.

    `meta` is what the client sent, minus what must never be echoed (a pass phrase), which travels encrypted
    in `encrypted_params`. A worker claims the order (`claimed_by`, `claim_until`: a lease) before it works on
    it; `attempts` counts the claims, and the products of attempt n have ids derived from (order, n), so a
    later attempt can remove what an interrupted one left behind.
    """

    id: str
    project_id: str
    type: OrderType
    meta: Mapping[str, Any]
    status: OrderStatus
    creator_id: str
    create_time: datetime
    update_time: datetime
    sub_status: str = "Unknown"
    sub_status_message: str = "Unknown"
    secret_id: str | None = None
    container_id: str | None = None
    error_status_code: str | None = None
    error_reason: str | None = None
    encrypted_params: bytes | None = None
    attempts: int = 0
    claimed_by: str | None = None
    claim_until: datetime | None = None
    revision: int = 0


@dataclass(frozen=True, slots=True)
class Secret:
    id: str
    project_id: str
    name: str | None
    secret_type: SecretType
    content_type: str  # what GET .../payload answers with (and the only Accept it serves)
    encrypted_payload: bytes  # KeyVault envelope, bound to (project, secret id)
    creator_id: str
    create_time: datetime
    algorithm: str | None = None
    bit_length: int | None = None
    mode: str | None = None
    expiration: datetime | None = None


@dataclass(frozen=True, slots=True)
class Container:
    id: str
    project_id: str
    name: str | None
    type: ContainerType
    creator_id: str
    create_time: datetime
    secret_refs: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # (name, secret id)
