"""HTTPS for `gatewaycerts serve`: the server TLS context from GATEWAYCERTS_TLS_CERT_FILE / GATEWAYCERTS_TLS_KEY_FILE.

Checked at start, with an error naming the file and the reason (never the key's content): both files
readable, the certificate chain PEM, the key an unencrypted PEM private key, the key matching the first
(leaf) certificate. TLS 1.2 and 1.3 only; ALPN ``http/1.1`` (aiohttp serves HTTP/1.1).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization


class TLSConfigError(ValueError):
    """The TLS certificate or key cannot be served; the message names the variable and the reason."""


def _read(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSConfigError(f"{name} {path} cannot be read: {exc.strerror or exc}") from None


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    cert_pem = _read(cert_file, "GATEWAYCERTS_TLS_CERT_FILE")
    key_pem = _read(key_file, "GATEWAYCERTS_TLS_KEY_FILE")
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise TLSConfigError(f"GATEWAYCERTS_TLS_CERT_FILE {cert_file} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise TLSConfigError(
            f"GATEWAYCERTS_TLS_KEY_FILE {key_file} is encrypted; give the service an unencrypted key "
            "(protect the file, e.g. a Kubernetes Secret mounted read-only)"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise TLSConfigError(f"GATEWAYCERTS_TLS_KEY_FILE {key_file} holds no PEM private key") from None
    leaf_public = (
        chain[0].public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    key_public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if leaf_public != key_public:
        raise TLSConfigError(
            f"GATEWAYCERTS_TLS_KEY_FILE {key_file} is not the key of the first certificate in "
            f"GATEWAYCERTS_TLS_CERT_FILE {cert_file} (the leaf must come first)"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert_file, key_file, password=lambda: b"")
    except (ssl.SSLError, OSError) as exc:
        raise TLSConfigError(f"OpenSSL refuses GATEWAYCERTS_TLS_CERT_FILE/KEY_FILE: {exc}") from None
    return context
