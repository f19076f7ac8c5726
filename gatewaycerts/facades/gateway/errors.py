"""Error envelope of the delivery routes: APIG style {"error_code": "APIG.xxxx", "error_msg": "..."}.

APIG.3466 (no certificate bound for the server name) is ours; docs/api/gateway.md lists every code.
"""

from __future__ import annotations

from gatewaycerts.domain import errors as e
from gatewaycerts.domain.acme_client import ChallengeTokenNotFoundError
from gatewaycerts.web.errors import ApigDialect

CODE_TABLE: tuple[tuple[type[e.DomainError], str], ...] = (
    (e.AuthenticationError, "APIG.1002"),
    (e.PermissionDeniedError, "APIG.1005"),
    (e.MissingParameterError, "APIG.2001"),
    (e.NoCertificateForNameError, "APIG.3466"),
    (ChallengeTokenNotFoundError, "APIG.3482"),
    (e.NotFoundError, "APIG.3002"),
    (e.StoreUnavailableError, "APIG.9999"),
    (e.InvalidInputError, "APIG.2012"),
)

_PREFIX = {
    "APIG.1002": "Incorrect token or token resolution failed",
    "APIG.1005": "No permissions to request this method",
    "APIG.9999": "System busy",
}


class GatewayDialect(ApigDialect):
    def __init__(self) -> None:
        super().__init__(CODE_TABLE, _PREFIX)
