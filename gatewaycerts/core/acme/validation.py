"""What the ACME server's workers ask of a challenge validator (implemented in connectors/validators.py).

The validator connects only to addresses the operator allows (connectors/addresses.py), on the ports the
settings give (``GATEWAYCERTS_ACME_HTTP_PORT``, ``GATEWAYCERTS_ACME_TLS_PORT``), and asks the DNS server of
``GATEWAYCERTS_ACME_RESOLVER``. It raises ``ValidationFailed`` with the RFC 8555 error name; core records it
on the challenge as ``urn:ietf:params:acme:error:<problem>``.
"""

from __future__ import annotations

from typing import Protocol

from gatewaycerts.domain.acme_validation import (
    ChallengeToValidate,
    ChallengeType,
    IdentifierType,
    ValidationFailed,
)

__all__ = ["ChallengeToValidate", "ChallengeType", "ChallengeValidator", "IdentifierType", "ValidationFailed"]


class ChallengeValidator(Protocol):
    async def validate(self, challenge: ChallengeToValidate) -> None:
        """Return when the challenge is satisfied; raise ValidationFailed otherwise."""
        ...
