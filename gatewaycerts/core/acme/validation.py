"""What the ACME server's workers ask of a challenge validator (implemented in connectors/validators.py).

The validator connects only to addresses the operator allows (connectors/addresses.py), on the ports the
settings give (``GATEWAYCERTS_ACME_HTTP_PORT``, ``GATEWAYCERTS_ACME_TLS_PORT``), and asks the DNS server of
``GATEWAYCERTS_ACME_RESOLVER``. It raises ``ValidationFailed`` with the RFC 8555 error name; core records it
on the challenge as ``urn:ietf:params:acme:error:<problem>``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


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


class ChallengeValidator(Protocol):
    async def validate(self, challenge: ChallengeToValidate) -> None:
        """Return when the challenge is satisfied; raise ValidationFailed otherwise."""
        ...
