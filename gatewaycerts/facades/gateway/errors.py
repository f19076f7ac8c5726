"""Error envelope of the delivery routes: APIG style {"error_code": "APIG.xxxx", "error_msg": "..."}.

APIG.3466 (no certificate bound for the server name) is ours; docs/api/gateway.md lists every code.
"""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain import errors as e

CODE_TABLE: tuple[tuple[type[e.DomainError], str], ...] = (
    (e.AuthenticationError, "APIG.1002"),
    (e.PermissionDeniedError, "APIG.1005"),
    (e.MissingParameterError, "APIG.2001"),
    (e.NoCertificateForNameError, "APIG.3466"),
    (e.NotFoundError, "APIG.3002"),
    (e.StoreUnavailableError, "APIG.9999"),
    (e.InvalidInputError, "APIG.2012"),
)

_PREFIX = {
    "APIG.1002": "Incorrect token or token resolution failed",
    "APIG.1005": "No permissions to request this method",
    "APIG.9999": "System busy",
}


def code_for(exc: e.DomainError) -> str:
    for cls, code in CODE_TABLE:
        if isinstance(exc, cls):
            return code
    return "APIG.9999"


class GatewayDialect:
    def domain_error(self, exc: e.DomainError, status: int) -> dict[str, Any]:
        code = code_for(exc)
        prefix = _PREFIX.get(code)
        message = exc.message
        if prefix and not message.lower().startswith(prefix.lower()):
            message = f"{prefix}: {message}"
        return {"error_code": code, "error_msg": message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        code = "APIG.3002" if status in (404, 405) else "APIG.2012"
        return {"error_code": code, "error_msg": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error_code": "APIG.9999", "error_msg": f"System error, request_id:{request_id}"}
