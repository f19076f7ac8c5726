"""The ACME client side: per-project ACME accounts, DNS update configurations (RFC 2136 + TSIG), the http-01
tokens gateways answer, and what the ACME and DNS connectors exchange with core (they import only domain)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime

from gatewaycerts.domain.errors import InvalidInputError, NotFoundError


class AcmeAccountNotFoundError(NotFoundError):
    pass


class DnsUpdateConfigNotFoundError(NotFoundError):
    pass


class ChallengeTokenNotFoundError(NotFoundError):
    """No live http-01 token of that name in the project."""


class AcmeDirectoryError(InvalidInputError):
    """The directory URL does not answer as an ACME directory (unknown, not ACME, or its CA is unreachable)."""


class AcmeRegistrationError(InvalidInputError):
    """The CA refused the account (e.g. a wrong External Account Binding, terms not agreed)."""


@dataclass(frozen=True, slots=True)
class AcmeAccount:
    id: str
    project_id: str
    directory_url: str
    contact: tuple[str, ...]  # mailto: URIs
    terms_agreed: bool
    eab_kid: str | None
    eab_hmac_envelope: bytes | None  # the EAB HMAC key under the KEK (never returned)
    key_envelope: bytes  # the account key (EC P-256, PKCS#8 PEM) under the KEK
    account_url: str  # the CA's account URL (the JWS kid)
    create_time: datetime
    revision: int = 1


@dataclass(frozen=True, slots=True)
class DnsUpdateConfig:
    id: str
    project_id: str
    server: str  # host or IP address of the primary name server
    port: int
    zone: str  # the zone the TXT records are added to (e.g. "example.test.")
    tsig_key_name: str
    tsig_algorithm: str  # hmac-sha256, hmac-sha384, hmac-sha512
    tsig_secret_envelope: bytes  # the TSIG secret (raw bytes) under the KEK
    create_time: datetime
    revision: int = 1


@dataclass(frozen=True, slots=True)
class ChallengeToken:
    """An http-01 token the gateways answer: GET .../acme-challenge/{token} -> key_authorization."""

    project_id: str
    token: str
    key_authorization: str
    expire_time: datetime


# -- what core and the connectors exchange -------------------------------------------------------------------


class ChallengeType(enum.StrEnum):
    HTTP_01 = "http-01"
    DNS_01 = "dns-01"


@dataclass(frozen=True, slots=True)
class AccountCredentials:
    directory_url: str
    key_pem: bytes  # PKCS#8 PEM, EC P-256
    account_url: str | None  # None: not registered yet


@dataclass(frozen=True, slots=True)
class PendingChallenge:
    domain: str  # the identifier (without "*." for a wildcard)
    wildcard: bool
    type: ChallengeType
    token: str
    key_authorization: str  # http-01: the body to serve
    dns_value: str  # dns-01: the TXT value of _acme-challenge.<domain>


@dataclass(slots=True)
class AcmeOrder:
    """An order the CA created; `handle` is the connector's own state (opaque to core)."""

    url: str
    challenges: list[PendingChallenge]
    handle: object = field(repr=False)


class AcmeProblem(Exception):
    """An ACME error: `type` the problem type without its URN prefix (rejectedIdentifier, rateLimited, ...,
    or "connection" when the CA could not be reached), `detail` the CA's text."""

    def __init__(self, type_: str, detail: str, *, status: int | None = None) -> None:
        super().__init__(f"{type_}: {detail}" if detail else type_)
        self.type = type_
        self.detail = detail
        self.status = status


@dataclass(frozen=True, slots=True)
class TsigKey:
    name: str
    algorithm: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class DnsUpdateTarget:
    server_address: str  # an IP address (resolved and checked by the caller)
    port: int
    zone: str
    key: TsigKey


class DnsUpdateError(Exception):
    """The name server refused or did not answer the update (message names the rcode, never the secret)."""
