"""Notary's error envelope: {"error": "<message>"} with the HTTP status of web.errors.STATUS_TABLE."""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain.errors import DomainError


class NotaryDialect:
    def domain_error(self, exc: DomainError, status: int) -> dict[str, Any]:
        return {"error": exc.message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"error": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error": f"Internal Error, request_id:{request_id}"}
