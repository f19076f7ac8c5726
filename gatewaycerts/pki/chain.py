"""Ordering an uploaded bundle into a certification path (RFC 5280 §6) from the leaf upwards."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

from gatewaycerts.domain.errors import ChainOrderError, WeakSignatureError
from gatewaycerts.pki.inspect import describe, is_ca, is_self_issued, is_weak_signature


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def order_path(leaf: x509.Certificate, others: list[x509.Certificate], *, now: datetime) -> list[x509.Certificate]:
    """Return [leaf, issuer, issuer's issuer, ...] using every certificate of `others` exactly once.

    Raises ChainOrderError when a certificate is not on the leaf's path, a signature does not verify,
    an issuer is not a CA, or an intermediate has expired; WeakSignatureError for MD5/SHA-1 signatures.
    """
    # Duplicates (the leaf repeated, an intermediate twice) are dropped rather than refused.
    remaining: list[x509.Certificate] = []
    for cert in others:
        if cert != leaf and cert not in remaining:
            remaining.append(cert)

    for cert in (leaf, *remaining):
        if not is_self_issued(cert) and is_weak_signature(cert):
            raise WeakSignatureError(
                f"cert_content: '{describe(cert)}' is signed with MD5 or SHA-1, which are broken; "
                "reissue it with SHA-256 or stronger",
                field="cert_content",
            )
    path = [leaf]
    current = leaf
    while remaining and not is_self_issued(current):
        named = [c for c in remaining if c.subject == current.issuer]
        issuer = next((c for c in named if _issued_by(current, c)), None)
        if issuer is None:
            if named:
                raise ChainOrderError(
                    f"cert_content: the signature of '{describe(current)}' does not verify with the key of "
                    f"its issuer '{describe(named[0])}'",
                    field="cert_content",
                )
            break
        if not is_ca(issuer):
            raise ChainOrderError(
                f"cert_content: '{describe(issuer)}' issued '{describe(current)}' but is not a CA "
                "(basicConstraints CA:TRUE missing)",
                field="cert_content",
            )
        path.append(issuer)
        remaining.remove(issuer)
        current = issuer
    if remaining:
        stray = ", ".join(f"'{describe(c)}'" for c in remaining)
        raise ChainOrderError(
            f"cert_content: {stray} is not on the issuer path of the leaf '{describe(leaf)}'; "
            "upload the server certificate followed by the certificates that issued it",
            field="cert_content",
        )
    for cert in path:
        if cert is not leaf and not is_self_issued(cert) and cert.not_valid_after_utc < now:
            raise ChainOrderError(
                f"cert_content: intermediate '{describe(cert)}' expired at {cert.not_valid_after_utc.isoformat()}",
                field="cert_content",
            )
    return path
