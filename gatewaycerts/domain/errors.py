"""The domain error hierarchy. The web layer maps classes to HTTP status, facades map them to codes.

Messages are written for the client: they say what to fix and never contain key material.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the core raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return self.message


# --- 400: the request is wrong -------------------------------------------------------------------


class InvalidInputError(DomainError):
    """A parameter is missing, malformed or out of range."""


class MissingParameterError(InvalidInputError):
    """A mandatory parameter is absent."""


class ParameterTooLongError(InvalidInputError):
    """A parameter exceeds its documented size limit."""


class InvalidNameError(InvalidInputError):
    """A resource name breaks the naming rule."""


class CertificateParseError(InvalidInputError):
    """A certificate or private key cannot be parsed, or uses an unsupported format."""


class PrivateKeyEncryptedError(InvalidInputError):
    """The private key is protected with a passphrase."""


class CertificateKeyMismatchError(InvalidInputError):
    """No certificate in the bundle belongs to the private key."""


class CertificateExpiredError(InvalidInputError):
    """The leaf certificate is no longer (or not yet) valid."""


class ChainOrderError(InvalidInputError):
    """A certificate of the bundle is not on the leaf's issuer path, or a signature does not verify."""


class WeakKeyError(InvalidInputError):
    """The key is too small or uses a curve we do not accept."""


class WeakSignatureError(InvalidInputError):
    """The certificate is signed with a broken digest (MD5, SHA-1)."""


class UnsupportedAlgorithmError(InvalidInputError):
    """An algorithm that is recognised but not supported yet (SM2)."""


class AlgorithmTypeMismatchError(InvalidInputError):
    """The declared algorithm_type does not agree with the key."""


class TrustedRootCAError(InvalidInputError):
    """trusted_root_ca is not one or more CA certificates."""


class DomainNotCoveredError(InvalidInputError):
    """The certificate's names do not cover a domain it is being bound to."""


class DuplicateNameError(InvalidInputError):
    """A resource of the same name already exists in that scope."""


class ResourceInUseError(InvalidInputError):
    """The resource is referenced (e.g. bound to domains) and cannot be deleted."""


class ImmutableFieldError(InvalidInputError):
    """An update tries to change a field that is fixed at creation."""


class QuotaExceededError(InvalidInputError):
    """A per-resource limit would be exceeded."""


class DomainNotBoundError(InvalidInputError):
    """A domain to detach is not bound to the certificate."""


class DuplicateAlgorithmBindingError(InvalidInputError):
    """A domain is already bound on that instance to another certificate of the same key algorithm."""


# --- 401 / 403 ------------------------------------------------------------------------------------


class AuthenticationError(DomainError):
    """No token, or a token that is invalid or expired."""


class PermissionDeniedError(DomainError):
    """The principal may not do this in this project."""


# --- 404 / 409 / 503 -----------------------------------------------------------------------------


class NotFoundError(DomainError):
    """The resource does not exist (or is not visible to this project)."""


class CertificateNotFoundError(NotFoundError):
    """No such SSL certificate in this project."""


class NoCertificateForNameError(NotFoundError):
    """No certificate is bound on the instance for the server name a gateway asked about."""


class GatewayKeyNotFoundError(NotFoundError):
    """No such gateway key on this instance of this project."""


class ConflictError(DomainError):
    """A concurrent change won: re-read and retry."""


class StaleRevisionError(DomainError):
    """The client said which revision it read (If-Match) and the record has changed since: answered 412,
    never retried, so a full replacement never silently overwrites a change the client has not seen."""


class StoreUnavailableError(DomainError):
    """The store cannot be reached."""


class KeyUnavailableError(StoreUnavailableError):
    """A stored private key cannot be decrypted with the configured key-encryption keys (answered 503)."""


# --- private CA engine ---------------------------------------------------------------------------


class ValidityError(InvalidInputError):
    """A validity period is out of range (caps, start_from, beyond the issuer's not_after)."""


class InvalidStateError(InvalidInputError):
    """The operation is not allowed in the resource's current state (e.g. enable a deleted CA)."""


class AuthorityCannotIssueError(InvalidStateError):
    """The CA is disabled, pending, expired, revoked or scheduled for deletion."""


class AlreadyRevokedError(InvalidStateError):
    """The certificate or CA is revoked already."""


class AuthorityNotFoundError(NotFoundError):
    """No such private CA in this project."""


class PrivateCertificateNotFoundError(NotFoundError):
    """No such private certificate in this project."""


class CrlNotPublishedError(NotFoundError):
    """The CA does not publish a CRL (CRL publishing is disabled)."""


# --- certificate request lifecycle ---------------------------------------------------------------


class CertificateRequestNotFoundError(NotFoundError):
    """No such certificate request in this project."""


class DuplicateRequestError(InvalidInputError):
    """The same CSR is outstanding already in this project."""


class RequestBusyError(DomainError):
    """Another call is signing the request right now; it is answered 409 and not retried here."""


# --- orders, secrets, containers ----------------------------------------------------------------


class OrderNotFoundError(NotFoundError):
    """No such order in this project."""


class SecretNotFoundError(NotFoundError):
    """No such secret in this project."""


class ContainerNotFoundError(NotFoundError):
    """No such container in this project."""


class NotAcceptableError(DomainError):
    """The client accepts no representation we have (Accept of a secret payload); answered 406."""


class UnsupportedOrderError(InvalidInputError):
    """A recognised order kind this service does not process (full CMC)."""


# --- managed certificates (the renewal loop) -------------------------------------------------------


class SourceUnavailableError(InvalidInputError):
    """The managed certificate names a source this service has not been configured with."""


class NotManagedError(NotFoundError):
    """The certificate exists but is an upload: it has no renewal state."""


class RenewalInProgressError(RequestBusyError):
    """A replica is renewing the certificate right now; ask again after it finished."""
