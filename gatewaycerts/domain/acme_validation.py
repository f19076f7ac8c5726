"""The data of a challenge validation, shared by core (core/acme/validation.py declares the ChallengeValidator
Protocol) and its adapter (connectors/validators.py), which may import domain but not core."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ChallengeType(enum.StrEnum):
    HTTP_01 = "http-01"
    DNS_01 = "dns-01"
    TLS_ALPN_01 = "tls-alpn-01"


class IdentifierType(enum.StrEnum):
    DNS = "dns"
    IP = "ip"


@dataclass(frozen=True, slots=True)
class ChallengeToValidate:
    type: ChallengeType
    identifier_type: IdentifierType
    identifier_value: str  # as ordered; a wildcard order's dns-01 names the base domain (no "*.")
    token: str
    key_authorization: str  # token + "." + base64url(SHA-256 JWK thumbprint of the account key)


class ValidationFailed(Exception):
    """``problem`` is an RFC 8555 error name: connection, dns, incorrectResponse, tls, unauthorized,
    rejectedIdentifier (a target on a forbidden address), caa."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem
        self.detail = detail
