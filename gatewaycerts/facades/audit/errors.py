"""CTS error codes: the audit facade's envelope {"error_code": "CTS.xxxx", "error_msg": "..."}.

Codes from Huawei's CTS table where one fits (CTS.0002 authentication or permission, CTS.0003 an invalid
request, CTS.0005 data read exception); CTS.9404 (no such route) is ours. Documented in docs/api/audit.md.
"""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain import errors as e

CODE_TABLE: tuple[tuple[type[e.DomainError], str], ...] = (
    (e.AuthenticationError, "CTS.0002"),
    (e.PermissionDeniedError, "CTS.0002"),
    (e.StoreUnavailableError, "CTS.0005"),
    (e.InvalidInputError, "CTS.0003"),
)

NOT_FOUND_ROUTE = "CTS.9404"
SYSTEM_ERROR = "CTS.0005"


def code_for(exc: e.DomainError) -> str:
    for cls, code in CODE_TABLE:
        if isinstance(exc, cls):
            return code
    return SYSTEM_ERROR


class AuditDialect:
    def domain_error(self, exc: e.DomainError, status: int) -> dict[str, Any]:
        return {"error_code": code_for(exc), "error_msg": exc.message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"error_code": NOT_FOUND_ROUTE if status in (404, 405) else "CTS.0003", "error_msg": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error_code": SYSTEM_ERROR, "error_msg": f"System error, request_id:{request_id}"}
