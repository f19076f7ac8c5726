"""Barbican's error envelope: {"code": <status>, "title": <reason phrase>, "description": <message>}."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from gatewaycerts.domain.errors import DomainError


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class BarbicanDialect:
    def domain_error(self, exc: DomainError, status: int) -> dict[str, Any]:
        return {"code": status, "title": _title(status), "description": exc.message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"code": status, "title": _title(status), "description": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"code": 500, "title": _title(500), "description": f"Internal error, request_id:{request_id}"}
