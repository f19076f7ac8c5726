"""Errors of the private CA engine that the generic hierarchy does not name."""

from __future__ import annotations

from gatewaycerts.domain.errors import CertificateParseError, InvalidInputError


class CsrInvalidError(CertificateParseError):
    """A certificate signing request cannot be parsed or its signature does not verify."""


class InvalidSanError(InvalidInputError):
    """A subject alternative name is malformed, too long, or there are too many."""


class InvalidExtensionError(InvalidInputError):
    """A custom extension has a malformed or reserved OID, or a bad value."""
