"""PCA error codes: the CCM facade's envelope {"error_code": "PCA.xxxx", "error_msg": "..."}.

Huawei publishes no PCA code table (its examples say "PCA.XXX"), so these codes are ours; the table is
documented in docs/api/ccm.md. Most specific class first.
"""

from __future__ import annotations

from typing import Any

from gatewaycerts.domain import acme
from gatewaycerts.domain import errors as e
from gatewaycerts.domain import pca_errors as pe

CODE_TABLE: tuple[tuple[type[e.DomainError], str], ...] = (
    (acme.EabKeyNotFoundError, "PCA.1060"),
    (acme.AcmePolicyError, "PCA.1061"),
    (e.AuthenticationError, "PCA.1001"),
    (e.PermissionDeniedError, "PCA.1003"),
    (e.MissingParameterError, "PCA.1010"),
    (e.ParameterTooLongError, "PCA.1011"),
    (e.ValidityError, "PCA.1012"),
    (pe.InvalidSanError, "PCA.1013"),
    (pe.InvalidExtensionError, "PCA.1014"),
    (e.UnsupportedAlgorithmError, "PCA.1017"),
    (e.WeakKeyError, "PCA.1016"),
    (e.WeakSignatureError, "PCA.1016"),
    (e.CertificateKeyMismatchError, "PCA.1018"),
    (e.ChainOrderError, "PCA.1019"),
    (e.CertificateParseError, "PCA.1015"),
    (e.AuthorityCannotIssueError, "PCA.1031"),
    (e.AlreadyRevokedError, "PCA.1032"),
    (e.InvalidStateError, "PCA.1030"),
    (e.AuthorityNotFoundError, "PCA.1040"),
    (e.PrivateCertificateNotFoundError, "PCA.1041"),
    (e.CrlNotPublishedError, "PCA.1042"),
    (e.NotFoundError, "PCA.1043"),
    (e.ConflictError, "PCA.1050"),
    (e.StoreUnavailableError, "PCA.1099"),
    (e.InvalidInputError, "PCA.1020"),
)

NOT_FOUND_ROUTE = "PCA.1043"
SYSTEM_ERROR = "PCA.1000"


def code_for(exc: e.DomainError) -> str:
    for cls, code in CODE_TABLE:
        if isinstance(exc, cls):
            return code
    return SYSTEM_ERROR


class CcmDialect:
    def domain_error(self, exc: e.DomainError, status: int) -> dict[str, Any]:
        return {"error_code": code_for(exc), "error_msg": exc.message}

    def http_error(self, status: int, reason: str) -> dict[str, Any]:
        return {"error_code": NOT_FOUND_ROUTE if status in (404, 405) else "PCA.1020", "error_msg": reason}

    def system_error(self, request_id: str) -> dict[str, Any]:
        return {"error_code": SYSTEM_ERROR, "error_msg": f"System error, request_id:{request_id}"}
