"""Gateway keys and what one delivery to a gateway instance carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A credential of one gateway instance. Only the SHA-256 of its secret is stored."""

    id: str
    project_id: str
    instance_id: str
    secret_sha256: bytes
    create_time: datetime
