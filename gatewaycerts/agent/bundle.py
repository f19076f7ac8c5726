"""The snapshot (`GET .../bundle`) as the agent reads it: parsed, checked, and nothing trusted blindly.

Names and ids end up in file names and in generated gateway configuration, so they are checked against
strict patterns here; a response that fails any check is refused as a whole (the last good files stay).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

# APIC certificate ids are 32 hex characters; allow a little more, never a path separator or a dot.
_CERTIFICATE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# A-labels, lower case, optional one-label wildcard: nothing that could break out of a config line.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"(?:\*\.)?{_LABEL}(?:\.{_LABEL})*")
_PEM_CERT = "-----BEGIN CERTIFICATE-----"
_PEM_KEYS = ("-----BEGIN PRIVATE KEY-----", "-----BEGIN RSA PRIVATE KEY-----", "-----BEGIN EC PRIVATE KEY-----")


class BundleError(ValueError):
    """The service answered 200 with something that is not a usable snapshot (never carries key material)."""


@dataclass(frozen=True)
class Item:
    certificate_id: str
    revision: str
    domains: tuple[str, ...]
    algorithm: str  # "RSA", "ECC", ... as the service says it
    chain_pem: str
    key_pem: str
    trusted_root_ca: str | None
    verify_client: bool
    sha256_fingerprint: str

    @property
    def is_ecc(self) -> bool:
        return self.algorithm.upper() in {"ECC", "EC", "ECDSA", "SM2"}


@dataclass(frozen=True)
class Bundle:
    version: str
    items: tuple[Item, ...]


def _text(raw: dict, key: str, index: int) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value:
        raise BundleError(f"item {index}: {key} missing or not a string")
    return value


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_bundle(document: object) -> Bundle:
    if not isinstance(document, dict):
        raise BundleError("the snapshot is not a JSON object")
    version = document.get("version")
    items = document.get("items")
    if not isinstance(version, str) or not version:
        raise BundleError("the snapshot has no version")
    if not isinstance(items, list):
        raise BundleError("the snapshot has no items list")
    parsed: list[Item] = []
    seen: set[tuple[str, bool]] = set()
    for index, raw in enumerate(items):
        if not isinstance(raw, dict):
            raise BundleError(f"item {index} is not an object")
        certificate_id = _text(raw, "certificate_id", index)
        if not _CERTIFICATE_ID.fullmatch(certificate_id):
            raise BundleError(f"item {index}: certificate_id is not a plain id")
        verify_client = raw.get("verify_client", False)
        if not isinstance(verify_client, bool):
            raise BundleError(f"item {index}: verify_client is not a boolean")
        # One item per (certificate, verify_client): a certificate whose names differ in client verification
        # comes twice, once per setting.
        if (certificate_id, verify_client) in seen:
            raise BundleError(f"item {index}: certificate_id {certificate_id} appears twice")
        seen.add((certificate_id, verify_client))
        domains = raw.get("domains")
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise BundleError(f"item {index}: domains is not a list of names")
        names: list[str] = []
        for domain in domains:
            if _is_ip(domain):  # TLS clients send no IP address in SNI: no gateway file can select by it
                continue
            if len(domain) > 253 or not _DOMAIN.fullmatch(domain):
                raise BundleError(f"item {index}: domain {domain[:80]!r} is not a lower-case A-label name")
            names.append(domain)
        chain_pem = _text(raw, "chain_pem", index)
        key_pem = _text(raw, "key_pem", index)
        if not chain_pem.lstrip().startswith(_PEM_CERT):
            raise BundleError(f"item {index}: chain_pem is not PEM certificates")
        if not key_pem.lstrip().startswith(_PEM_KEYS):  # never quote the key itself
            raise BundleError(f"item {index}: key_pem is not a PEM private key")
        root = raw.get("trusted_root_ca")
        if root is not None and (not isinstance(root, str) or _PEM_CERT not in root):
            raise BundleError(f"item {index}: trusted_root_ca is not PEM certificates")
        if verify_client and not root:
            raise BundleError(f"item {index}: verify_client without a trusted_root_ca")
        parsed.append(
            Item(
                certificate_id=certificate_id,
                revision=str(raw.get("revision", "")),
                domains=tuple(dict.fromkeys(names)),
                algorithm=_text(raw, "algorithm", index),
                chain_pem=chain_pem,
                key_pem=key_pem,
                trusted_root_ca=root,
                verify_client=verify_client,
                sha256_fingerprint=str(raw.get("sha256_fingerprint", "")),
            )
        )
    return Bundle(version=version, items=tuple(parsed))
