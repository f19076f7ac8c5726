"""Real X.509 material for tests: CAs, chains, leaves and keys built with cryptography."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@cache
def rsa_key(bits: int = 2048, slot: int = 0) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key(curve: str = "secp256r1", slot: int = 0) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(
        {"secp256r1": ec.SECP256R1(), "secp384r1": ec.SECP384R1(), "secp256k1": ec.SECP256K1()}[curve]
    )


def name(cn: str, **attrs: str) -> x509.Name:
    oids = {
        "o": NameOID.ORGANIZATION_NAME,
        "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "l": NameOID.LOCALITY_NAME,
        "st": NameOID.STATE_OR_PROVINCE_NAME,
        "c": NameOID.COUNTRY_NAME,
    }
    parts = [x509.NameAttribute(oids[k], v) for k, v in attrs.items()]
    return x509.Name([*parts, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass
class Issued:
    cert: x509.Certificate
    key: object

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self, fmt: str = "pkcs8", password: bytes | None = None) -> str:
        formats = {
            "pkcs8": serialization.PrivateFormat.PKCS8,
            "traditional": serialization.PrivateFormat.TraditionalOpenSSL,
        }
        enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
        return self.key.private_bytes(serialization.Encoding.PEM, formats[fmt], enc).decode()


@dataclass
class CertSpec:
    cn: str = "www.example.com"
    dns: tuple[str, ...] = ("www.example.com", "*.api.example.com")
    ips: tuple[str, ...] = ()
    subject_attrs: dict = field(
        default_factory=lambda: {"o": "Example Corp", "ou": "IT", "l": "Shenzhen", "st": "Guangdong", "c": "CN"}
    )
    not_before: dt.datetime = NOW - dt.timedelta(days=1)
    not_after: dt.datetime = NOW + dt.timedelta(days=365)
    ca: bool = False
    digest: hashes.HashAlgorithm | None = field(default_factory=hashes.SHA256)
    serial: int | None = None


def issue(spec: CertSpec, key, issuer: Issued | None = None) -> Issued:
    subject = name(spec.cn, **spec.subject_attrs)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(spec.serial or x509.random_serial_number())
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
        .add_extension(x509.BasicConstraints(ca=spec.ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    names = [x509.DNSName(d) for d in spec.dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in spec.ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    signer = issuer.key if issuer else key
    digest = None if isinstance(signer, ed25519.Ed25519PrivateKey) else spec.digest
    return Issued(builder.sign(signer, digest), key)


def sign_ca_csr(csr_pem: str, issuer: Issued) -> str:
    """An outside CA signs a CSR as a CA certificate (path length 0, keyCertSign + cRLSign): the PEM."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(issuer.cert.subject)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(issuer.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def ca_spec(cn: str, **kw) -> CertSpec:
    return CertSpec(
        cn=cn, dns=(), ca=True, subject_attrs={"o": f"{cn} Org"}, not_after=NOW + dt.timedelta(days=3650), **kw
    )


@dataclass
class Chain:
    root: Issued
    intermediate: Issued
    leaf: Issued

    def bundle(self, *order: str) -> str:
        return "".join(getattr(self, part).pem for part in (order or ("leaf", "intermediate")))


@cache
def rsa_chain() -> Chain:
    root = issue(ca_spec("Test Root CA"), rsa_key(2048, 1))
    inter = issue(ca_spec("Test Intermediate CA"), rsa_key(2048, 2), root)
    leaf = issue(CertSpec(), rsa_key(2048, 3), inter)
    return Chain(root, inter, leaf)


@cache
def ec_chain() -> Chain:
    root = issue(ca_spec("EC Root CA"), ec_key("secp384r1", 1))
    inter = issue(ca_spec("EC Intermediate CA"), ec_key("secp256r1", 2), root)
    leaf = issue(CertSpec(cn="ec.example.com", dns=("ec.example.com",)), ec_key("secp256r1", 3), inter)
    return Chain(root, inter, leaf)


def leaf_for(chain: Chain, spec: CertSpec, key=None) -> Issued:
    return issue(spec, key or rsa_key(2048, 4), chain.intermediate)


class MovableClock:
    """An injectable clock that tests move forward."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now
