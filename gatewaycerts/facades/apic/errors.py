"""APIG error codes: the facade's envelope {"error_code": "APIG.xxxx", "error_msg": "..."}.

Codes from Huawei's APIG error table where one exists; APIG.346x are ours (Huawei publishes none for
these cases) and are documented in docs/api/apic.md; APIG.347x are the managed certificates' (ours too),
APIG.349x the webhooks' (docs/webhooks.md).
"""

from __future__ import annotations

from gatewaycerts.domain import acme_client as acme
from gatewaycerts.domain import errors as e
from gatewaycerts.web.errors import ApigDialect

CODE_TABLE: tuple[tuple[type[e.DomainError], str], ...] = (
    (e.WebhookNotFoundError, "APIG.3490"),
    (e.WebhookUrlError, "APIG.3491"),
    (e.WebhookEventError, "APIG.3492"),
    (e.WebhookQuotaError, "APIG.3493"),
    (e.AuthenticationError, "APIG.1002"),
    (e.PermissionDeniedError, "APIG.1005"),
    (e.MissingParameterError, "APIG.2001"),
    (e.CertificateKeyMismatchError, "APIG.2101"),
    (e.CertificateExpiredError, "APIG.2102"),
    (e.DomainNotCoveredError, "APIG.2103"),
    (e.ChainOrderError, "APIG.2104"),
    (e.PrivateKeyEncryptedError, "APIG.2105"),
    (e.CertificateParseError, "APIG.2106"),
    (e.WeakKeyError, "APIG.2106"),
    (e.WeakSignatureError, "APIG.2106"),
    (e.DomainNotBoundError, "APIG.3020"),
    (e.DuplicateAlgorithmBindingError, "APIG.3465"),
    (e.SourceUnavailableError, "APIG.3470"),
    (e.NotManagedError, "APIG.3471"),
    (e.RenewalInProgressError, "APIG.3472"),
    (e.GatewayKeyNotFoundError, "APIG.3467"),
    (e.CertificateNotFoundError, "APIG.3021"),
    (acme.AcmeDirectoryError, "APIG.3480"),
    (acme.AcmeRegistrationError, "APIG.3481"),
    (acme.AcmeAccountNotFoundError, "APIG.3483"),
    (acme.DnsUpdateConfigNotFoundError, "APIG.3484"),
    (e.QuotaExceededError, "APIG.3108"),
    (e.ImmutableFieldError, "APIG.3400"),
    (e.DuplicateNameError, "APIG.3460"),
    (e.ResourceInUseError, "APIG.3461"),
    (e.UnsupportedAlgorithmError, "APIG.3462"),
    (e.ConflictError, "APIG.3463"),
    (e.StaleRevisionError, "APIG.3464"),
    (e.NotFoundError, "APIG.3021"),
    (e.StoreUnavailableError, "APIG.9999"),
    (e.InvalidInputError, "APIG.2012"),
)

# Canonical Huawei messages, prefixed to our detail where the detail does not already say it.
_PREFIX = {
    "APIG.1002": "Incorrect token or token resolution failed",
    "APIG.1005": "No permissions to request this method",
    "APIG.2101": "The certificate and private key do not match",
    "APIG.2102": "The certificate has expired",
    "APIG.2104": "The certificate chain is not matched",
    "APIG.2105": "Encrypted private keys are not supported",
    "APIG.2106": "Invalid certificate or private key",
    "APIG.3021": "The SSL certificate does not exist",
    "APIG.3108": "The number of domain names exceeds the maximum allowed limit",
    "APIG.3490": "The webhook does not exist",
    "APIG.9999": "System busy",
}


class ApicDialect(ApigDialect):
    def __init__(self) -> None:
        super().__init__(CODE_TABLE, _PREFIX)
