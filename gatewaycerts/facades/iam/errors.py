"""IAM's Keystone-style error envelope: {"error": {"code": <HTTP status>, "message": "...", "title": "..."}}.

Huawei IAM answers its /v3.0/OS-CREDENTIAL APIs this way (e.g. `{"error": {"message": "akSkNumExceed",
"code": 400, "title": "Bad Request"}}`): `code` is the HTTP status as a number, `title` its reason phrase.
Documented in docs/api/iam.md.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from gatewaycerts.domain import errors as e


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def envelope(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "title": _title(status)}}


class IamDialect:
    def domain_error(self, exc: e.DomainError, status: int) -> dict[str, Any]:
        return envelope(status, exc.message)

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return envelope(status, reason)

    def system_error(self, request_id: str) -> dict[str, Any]:
        return envelope(500, f"System error, request_id:{request_id}")
