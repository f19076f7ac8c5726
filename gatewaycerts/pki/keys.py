"""Loading private keys and proving they are well formed and belong to a public key, cheaply.

RSA keys are loaded with `unsafe_skip_rsa_key_validation=True` (OpenSSL's check runs primality tests and
costs ~30 ms) and instead checked here with integer arithmetic on the CRT parameters plus a sign/verify
round trip against the certificate's public key. docs/security.md argues why that is sound.
"""

from __future__ import annotations

import math

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa

from gatewaycerts.domain.errors import (
    CertificateKeyMismatchError,
    CertificateParseError,
    PrivateKeyEncryptedError,
    UnsupportedAlgorithmError,
    WeakKeyError,
)
from gatewaycerts.domain.models import AlgorithmType
from gatewaycerts.pki.pem import split_blocks

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 8192
ALLOWED_CURVES = {"secp256r1": 256, "secp384r1": 384, "secp521r1": 521}
_KEY_LABELS = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"}
_PROOF_MESSAGE = b"gatewaycerts key possession proof"


def load_private_key(pem_text: str, *, field: str = "private_key", openssl_rsa_check: bool = False) -> PrivateKey:
    """Parse one unencrypted PKCS#1, PKCS#8 or SEC1 PEM private key (RSA or EC).

    `openssl_rsa_check` adds OpenSSL's own RSA key check (primality tests, ~30 ms) to ours.
    """
    blocks = [b for b in split_blocks(pem_text, field=field) if b.label != "EC PARAMETERS"]
    if any(b.label == "ENCRYPTED PRIVATE KEY" or any("ENCRYPTED" in h for h in b.headers) for b in blocks):
        raise PrivateKeyEncryptedError(
            f"{field}: encrypted private keys are not supported; upload the key without a passphrase",
            field=field,
        )
    keys = [b for b in blocks if b.label in _KEY_LABELS]
    if len(keys) != 1 or len(blocks) != 1:
        labels = ", ".join(b.label for b in blocks)
        raise CertificateParseError(
            f"{field}: expected exactly one PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block, found: {labels}",
            field=field,
        )
    try:
        key = serialization.load_pem_private_key(
            keys[0].to_pem().encode("ascii"), password=None, unsafe_skip_rsa_key_validation=not openssl_rsa_check
        )
    except TypeError:
        raise PrivateKeyEncryptedError(
            f"{field}: encrypted private keys are not supported; upload the key without a passphrase",
            field=field,
        ) from None
    except UnsupportedAlgorithm:
        raise CertificateParseError(
            f"{field}: unsupported key algorithm or curve; use RSA (>= 2048 bits) or ECDSA P-256/P-384/P-521",
            field=field,
        ) from None
    except ValueError:
        raise CertificateParseError(f"{field}: the private key cannot be parsed", field=field) from None
    if isinstance(key, rsa.RSAPrivateKey):
        check_rsa_private_key(key, field=field)
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey):
        check_ec_key(key.curve, field=field)
        return key
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)):
        raise UnsupportedAlgorithmError(
            f"{field}: EdDSA keys are not supported by API gateways yet; use RSA or ECDSA", field=field
        )
    raise CertificateParseError(
        f"{field}: unsupported key type {type(key).__name__}; use RSA (>= 2048 bits) or ECDSA", field=field
    )


def check_rsa_private_key(key: rsa.RSAPrivateKey, *, field: str = "private_key") -> None:
    """Integer checks that the CRT parameters describe one consistent RSA key of an accepted size."""
    numbers = key.private_numbers()
    pub = numbers.public_numbers
    n, e = pub.n, pub.e
    p, q, d = numbers.p, numbers.q, numbers.d
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        raise WeakKeyError(f"{field}: RSA key of {bits} bits is too weak; at least {MIN_RSA_BITS} bits", field=field)
    if bits > MAX_RSA_BITS:
        raise WeakKeyError(f"{field}: RSA key of {bits} bits exceeds the {MAX_RSA_BITS}-bit limit", field=field)
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1) if p > 1 and q > 1 else 0
    consistent = (
        2 < p < n
        and 2 < q < n
        and p != q
        and p * q == n
        and e % 2 == 1
        and 3 <= e < n
        and 1 < d < n
        and lam > 0
        and (e * d) % lam == 1
        and numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and (numbers.iqmp * q) % p == 1
    )
    if not consistent:
        raise CertificateParseError(f"{field}: the RSA private key is inconsistent (corrupted)", field=field)


def check_ec_key(curve: ec.EllipticCurve, *, field: str) -> None:
    if curve.name not in ALLOWED_CURVES:
        raise WeakKeyError(
            f"{field}: elliptic curve {curve.name} is not accepted; use P-256, P-384 or P-521", field=field
        )


def algorithm_type_of(key: PrivateKey | PublicKey) -> AlgorithmType:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return AlgorithmType.RSA
    return AlgorithmType.ECC


def key_size_of(key: PrivateKey | PublicKey) -> int:
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey, ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return key.key_size
    return 0


def prove_possession(key: PrivateKey, public_key: PublicKey) -> None:
    """Raise CertificateKeyMismatchError unless `key` is the private half of `public_key`.

    EC: the loaded private scalar yields its public point (cryptography checks it is on the curve), so
    comparing points is a proof. RSA: equal (n, e), consistent CRT parameters (checked at load) and a
    PKCS#1 v1.5 signature made with the private key verifying under the certificate's key.
    """
    if key.public_key() != public_key:
        raise CertificateKeyMismatchError("the certificate and private key do not match")
    if isinstance(key, rsa.RSAPrivateKey):
        assert isinstance(public_key, rsa.RSAPublicKey)
        signature = key.sign(_PROOF_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        try:
            public_key.verify(signature, _PROOF_MESSAGE, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise CertificateKeyMismatchError("the certificate and private key do not match") from None


def private_key_to_pkcs8_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
