"""Dataclasses for principals, certificates and domain bindings."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


class Role(enum.StrEnum):
    ADMIN = "admin"
    EDITOR = "editor"
    VIEWER = "viewer"
    # A gateway reads the certificates bound on its instances (the delivery routes) and nothing else.
    GATEWAY = "gateway"


class Action(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    MANAGE_CA = "manage certificate authorities"  # create, enable, disable, delete, revoke CAs: admins only
    REVIEW = "review certificate requests"  # sign, reject, attach a chain to, revoke requests: admins only
    READ_AUDIT = "read the audit trail"  # the project's changes, who made them: admins only
    MANAGE_ACCESS_KEYS = "manage access keys"  # create, list, enable, disable, delete AK/SK: admins only
    MANAGE_GATEWAY_KEYS = "manage gateway keys"  # create, list, revoke the keys gateways use: admins only


class CertificateScope(enum.StrEnum):
    GLOBAL = "global"
    INSTANCE = "instance"


class AlgorithmType(enum.StrEnum):
    RSA = "RSA"
    ECC = "ECC"
    SM2 = "SM2"


GLOBAL_INSTANCE_ID = "common"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    projects: frozenset[str]
    roles: frozenset[Role]
    # The gateway instances a gateway principal may receive certificates for (empty for people).
    instances: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """What an upload extracts from the leaf certificate (and its chain)."""

    common_name: str
    san: tuple[str, ...]
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    organization: tuple[str, ...]
    organizational_unit: tuple[str, ...]
    locality: tuple[str, ...]
    state: tuple[str, ...]
    country: tuple[str, ...]
    issuer: tuple[str, ...]
    serial_number: str
    version: int
    not_before: datetime
    not_after: datetime
    signature_algorithm: str
    algorithm_type: AlgorithmType
    key_size: int
    fingerprint_sha256: str


@dataclass(frozen=True, slots=True)
class DomainBinding:
    id: str
    url_domain: str
    instance_ids: tuple[str, ...]
    verified_client_certificate_enabled: bool
    create_time: datetime
    status: int = 3
    min_ssl_version: str = "TLSv1.2"
    is_http_redirect_to_https: bool = False


@dataclass(frozen=True, slots=True)
class Certificate:
    """One stored SSL certificate: metadata, normalised chain, encrypted key, bindings.

    Summaries returned by list queries carry empty chain_pem / encrypted_private_key / bindings.
    """

    id: str
    project_id: str
    name: str
    scope: CertificateScope
    instance_id: str
    info: CertificateInfo
    chain_pem: str
    encrypted_private_key: bytes
    trusted_root_ca_pem: str | None
    has_trusted_root_ca: bool
    create_time: datetime
    update_time: datetime
    # Optimistic-concurrency counter of the stored record (not the X.509 version).
    revision: int = 1
    bindings: tuple[DomainBinding, ...] = field(default_factory=tuple)
    # Where chain and key come from: "upload" (the tenant), "private_ca" or "acme" (the renewal loop).
    source: str = "upload"
    # The renewal attempt that installed this chain (managed certificates only): lets a replica that takes
    # over an abandoned renewal see that the swap was already done.
    renewal_attempt: str | None = None


@dataclass(frozen=True, slots=True)
class CertificateFilter:
    name_contains: str | None = None
    common_name: str | None = None
    signature_algorithm: str | None = None
    scope: CertificateScope | None = None
    instance_id: str | None = None
    algorithm_type: AlgorithmType | None = None


class DeleteOutcome(enum.Enum):
    DELETED = "deleted"
    NOT_FOUND = "not_found"
    IN_USE = "in_use"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    total: int
