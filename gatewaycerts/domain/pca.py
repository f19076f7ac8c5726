"""Vocabulary of the private CA engine: algorithms, names, extensions, CA and issued-certificate records."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


class KeyAlgorithm(enum.StrEnum):
    RSA2048 = "RSA2048"
    RSA4096 = "RSA4096"
    EC256 = "EC256"
    EC384 = "EC384"
    SM2 = "SM2"  # recognised, refused with UnsupportedAlgorithmError


class SignatureHash(enum.StrEnum):
    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"
    SM3 = "SM3"  # recognised, refused with UnsupportedAlgorithmError


class SanType(enum.StrEnum):
    DNS = "DNS"
    IP = "IP"
    EMAIL = "EMAIL"
    URI = "URI"


class KeyUsage(enum.StrEnum):
    """RFC 5280 4.2.1.3 names, spelled as the CCM API spells them."""

    DIGITAL_SIGNATURE = "digitalSignature"
    NON_REPUDIATION = "nonRepudiation"
    KEY_ENCIPHERMENT = "keyEncipherment"
    DATA_ENCIPHERMENT = "dataEncipherment"
    KEY_AGREEMENT = "keyAgreement"
    KEY_CERT_SIGN = "keyCertSign"
    CRL_SIGN = "cRLSign"
    ENCIPHER_ONLY = "encipherOnly"
    DECIPHER_ONLY = "decipherOnly"


class RevocationReason(enum.StrEnum):
    """RFC 5280 5.3.1 reasons, spelled as the CCM API spells them (removeFromCRL is delta-CRL only)."""

    UNSPECIFIED = "UNSPECIFIED"
    KEY_COMPROMISE = "KEY_COMPROMISE"
    CERTIFICATE_AUTHORITY_COMPROMISE = "CERTIFICATE_AUTHORITY_COMPROMISE"
    AFFILIATION_CHANGED = "AFFILIATION_CHANGED"
    SUPERSEDED = "SUPERSEDED"
    CESSATION_OF_OPERATION = "CESSATION_OF_OPERATION"
    CERTIFICATE_HOLD = "CERTIFICATE_HOLD"
    PRIVILEGE_WITHDRAWN = "PRIVILEGE_WITHDRAWN"
    ATTRIBUTE_AUTHORITY_COMPROMISE = "ATTRIBUTE_AUTHORITY_COMPROMISE"


class CaType(enum.StrEnum):
    ROOT = "ROOT"
    SUBORDINATE = "SUBORDINATE"


class CaStatus(enum.StrEnum):
    PENDING = "PENDING"  # subordinate CA waiting for its certificate (csr -> import)
    ACTIVED = "ACTIVED"  # sic: the CCM API's spelling
    DISABLED = "DISABLED"
    DELETED = "DELETED"  # scheduled for deletion; restore undoes it until delete_time
    EXPIRED = "EXPIRED"
    REVOKED = "REVOKED"


class IssuedStatus(enum.StrEnum):
    ISSUED = "ISSUED"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"


class GenMode(enum.StrEnum):
    GENERATE = "GENERATE"
    IMPORT = "IMPORT"
    CSR = "CSR"


class IssuedKind(enum.StrEnum):
    ENTITY_CERT = "ENTITY_CERT"
    INTERMEDIATE_CA = "INTERMEDIATE_CA"


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    common_name: str
    country: str | None = None
    state: str | None = None
    locality: str | None = None
    organization: str | None = None
    organizational_unit: str | None = None

    def inherit(self, parent: DistinguishedName) -> DistinguishedName:
        """Fill the attributes this name omits from the issuing CA's name (CCM rule); never the CN."""
        return DistinguishedName(
            common_name=self.common_name,
            country=self.country if self.country is not None else parent.country,
            state=self.state if self.state is not None else parent.state,
            locality=self.locality if self.locality is not None else parent.locality,
            organization=self.organization if self.organization is not None else parent.organization,
            organizational_unit=(
                self.organizational_unit if self.organizational_unit is not None else parent.organizational_unit
            ),
        )


@dataclass(frozen=True, slots=True)
class SubjectAltName:
    type: SanType
    value: str


@dataclass(frozen=True, slots=True)
class ExtendedKeyUsage:
    server_auth: bool = False
    client_auth: bool = False
    code_signing: bool = False
    email_protection: bool = False
    time_stamping: bool = False
    smart_card_logon: bool = False

    def any(self) -> bool:
        return any(
            (
                self.server_auth,
                self.client_auth,
                self.code_signing,
                self.email_protection,
                self.time_stamping,
                self.smart_card_logon,
            )
        )


@dataclass(frozen=True, slots=True)
class CustomExtension:
    object_identifier: str
    value: str


@dataclass(frozen=True, slots=True)
class CrlConfiguration:
    enabled: bool = False
    crl_name: str | None = None
    valid_days: int = 7


@dataclass(frozen=True, slots=True)
class CrlState:
    """The CA's current CRL: number (monotonic), validity and the DER bytes served publicly."""

    number: int
    this_update: datetime
    next_update: datetime
    der: bytes
    revoked_count: int = 0  # entries in `der`; a mismatch with the store means a rebuild was missed


@dataclass(frozen=True, slots=True)
class OcspSigner:
    """A delegated OCSP responder certificate the CA issued itself (short-lived, rotated before it expires)."""

    certificate_pem: str
    encrypted_key: bytes  # KeyVault envelope, like every private key
    serial_number: str  # decimal, reserved under the CA like every serial it signs
    not_after: datetime


@dataclass(frozen=True, slots=True)
class Authority:
    id: str
    project_id: str
    type: CaType
    status: CaStatus
    distinguished_name: DistinguishedName
    key_algorithm: KeyAlgorithm
    signature_algorithm: SignatureHash
    issuer_id: str | None  # None for a root CA (and for a subordinate CA signed by an outside CA)
    path_length: int | None
    key_usages: tuple[KeyUsage, ...]
    crl_configuration: CrlConfiguration
    encrypted_key: bytes  # KeyVault envelope of the PKCS#8 key; never leaves the core unencrypted
    certificate_pem: str | None  # None while PENDING
    chain_pem: str  # issuer chain above this CA, leaf-first, PEM concatenated ("" for a root)
    csr_pem: str | None  # subordinate CA waiting for an outside signature
    serial_number: str | None  # decimal
    not_before: datetime | None
    not_after: datetime | None
    gen_mode: GenMode
    create_time: datetime
    update_time: datetime
    revision: int = 0
    delete_time: datetime | None = None  # when a DELETED CA is purged
    status_before_delete: CaStatus | None = None
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None
    crl: CrlState | None = None
    issuer_name: str | None = None  # common name of the CA that signed this one (its own CN for a root)
    ocsp_signer: OcspSigner | None = None  # the delegated OCSP responder certificate, when one answers


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    id: str
    project_id: str
    issuer_id: str
    issuer_name: str  # the issuing CA's common name (CCM shows and sorts by it)
    kind: IssuedKind
    status: IssuedStatus
    distinguished_name: DistinguishedName
    key_algorithm: KeyAlgorithm | None  # None when a CSR carried a key outside the CCM set (e.g. Ed25519)
    signature_algorithm: SignatureHash
    serial_number: str  # decimal
    not_before: datetime
    not_after: datetime
    gen_mode: GenMode
    certificate_pem: str
    chain_pem: str  # issuer chain, leaf-first, up to and including the root
    encrypted_key: bytes | None  # None when issued from a CSR (we never saw the key)
    create_time: datetime
    sans: tuple[SubjectAltName, ...] = ()
    revision: int = 0
    revoked_at: datetime | None = None
    revocation_reason: RevocationReason | None = None
    delete_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class RevokedSerial:
    serial_number: int
    revoked_at: datetime
    reason: RevocationReason


@dataclass(frozen=True, slots=True)
class SerialStatus:
    """What a CA's records say about one serial it signed (its OCSP answer): revoked exactly when the CRL lists it."""

    serial_number: int
    revoked_at: datetime | None = None
    reason: RevocationReason | None = None


class SortKey(enum.StrEnum):
    CREATE_TIME = "create_time"
    COMMON_NAME = "common_name"
    NOT_AFTER = "not_after"
    TYPE = "type"  # CAs only
    ISSUER_NAME = "issuer_name"  # certificates only


@dataclass(frozen=True, slots=True)
class PcaQuery:
    """List filters of the CCM API; `status` is the status a client sees (EXPIRED is derived from not_after)."""

    name_contains: str | None = None
    status: str | None = None
    type: str | None = None
    sort_key: SortKey = SortKey.CREATE_TIME
    descending: bool = True
