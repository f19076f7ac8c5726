"""Exporting an issued certificate: PEM fields, per-server file sets, PKCS#12 keystores, zip archives."""

from __future__ import annotations

import io
import re
import zipfile

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12

from gatewaycerts.domain.errors import InvalidInputError
from gatewaycerts.pki.keygen import private_key_from_pem

_PASSWORD = re.compile(r"[\x21-\x7e]{6,32}")
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def export_pem_bundle(cert_pem: str, chain_pem: str, key_pem: bytes | None) -> dict[str, str | None]:
    """private_key is None when the key is not held here (issued from a CSR)."""
    return {
        "certificate": cert_pem,
        "certificate_chain": chain_pem,
        "private_key": None if key_pem is None else key_pem.decode(),
    }


def export_pkcs12(cert_pem: str, chain_pem: str, key_pem: bytes, password: str, friendly_name: str) -> bytes:
    if not _PASSWORD.fullmatch(password or ""):
        raise InvalidInputError(
            "Invalid parameter value, parameterName:password. Use 6 to 32 printable ASCII characters without spaces",
            field="password",
        )
    chain = x509.load_pem_x509_certificates(chain_pem.encode()) if chain_pem.strip() else []
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8")[:64],
        private_key_from_pem(key_pem),  # type: ignore[arg-type]
        x509.load_pem_x509_certificate(cert_pem.encode()),
        chain or None,
        encryption,
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64].strip(".") or "certificate"


def export_files(
    server_type: str, name: str, cert_pem: str, chain_pem: str, key_pem: bytes | None, password: str | None
) -> dict[str, bytes]:
    """The files a server of `server_type` expects; keystores (IIS .pfx, TOMCAT .p12) need the key."""
    base = _safe(name)
    key = {} if key_pem is None else {f"{base}.key": key_pem}
    if server_type == "APACHE":
        return {f"{base}.crt": cert_pem.encode(), f"{base}_chain.crt": chain_pem.encode(), **key}
    if server_type == "NGINX":
        return {f"{base}.pem": (cert_pem + chain_pem).encode(), **key}
    if server_type in ("IIS", "TOMCAT"):
        assert key_pem is not None
        suffix = "pfx" if server_type == "IIS" else "p12"
        return {f"{base}.{suffix}": export_pkcs12(cert_pem, chain_pem, key_pem, password or "", name)}
    files = {"certificate.pem": cert_pem.encode(), "chain.pem": chain_pem.encode()}
    if key_pem is not None:
        files["private_key.pem"] = key_pem
    return files


def zip_files(files: dict[str, bytes]) -> bytes:
    """A deterministic zip (sorted names, fixed timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for filename in sorted(files):
            info = zipfile.ZipInfo(filename, date_time=_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16
            archive.writestr(info, files[filename])
    return buffer.getvalue()
