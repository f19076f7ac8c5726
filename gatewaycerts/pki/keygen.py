"""Key generation and (de)serialisation of the keys this service makes, and random serials."""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from gatewaycerts.domain.errors import UnsupportedAlgorithmError
from gatewaycerts.domain.pca import KeyAlgorithm, SignatureHash

_SM = "SM2/SM3 (Chinese national standard) algorithms are not supported yet"


def generate_private_key(alg: KeyAlgorithm) -> PrivateKeyTypes:
    if alg is KeyAlgorithm.RSA2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg is KeyAlgorithm.RSA4096:
        return rsa.generate_private_key(public_exponent=65537, key_size=4096)
    if alg is KeyAlgorithm.EC256:
        return ec.generate_private_key(ec.SECP256R1())
    if alg is KeyAlgorithm.EC384:
        return ec.generate_private_key(ec.SECP384R1())
    raise UnsupportedAlgorithmError(_SM, field="key_algorithm")


def private_key_to_pem(key: PrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def private_key_from_pem(pem: bytes) -> PrivateKeyTypes:
    """Load a key this service generated and stored encrypted (AES-GCM authenticated, so unaltered).

    Skipping OpenSSL's RSA primality checks is safe here: the key came out of our own generator and the
    key vault's authentication tag proves it has not changed since; the checks cost ~30 ms per load.
    """
    return serialization.load_pem_private_key(pem, password=None, unsafe_skip_rsa_key_validation=True)


def key_algorithm_of(public_key: PublicKeyTypes) -> KeyAlgorithm | None:
    if isinstance(public_key, rsa.RSAPublicKey):
        return {2048: KeyAlgorithm.RSA2048, 4096: KeyAlgorithm.RSA4096}.get(public_key.key_size)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return {"secp256r1": KeyAlgorithm.EC256, "secp384r1": KeyAlgorithm.EC384}.get(public_key.curve.name)
    return None


def hash_for(sig: SignatureHash) -> hashes.HashAlgorithm:
    if sig is SignatureHash.SHA256:
        return hashes.SHA256()
    if sig is SignatureHash.SHA384:
        return hashes.SHA384()
    if sig is SignatureHash.SHA512:
        return hashes.SHA512()
    raise UnsupportedAlgorithmError(_SM, field="signature_algorithm")


def new_serial() -> int:
    """159 random bits (RFC 5280: positive, at most 20 octets; CA/B Forum: at least 64 random bits)."""
    while True:
        serial = secrets.randbits(159)
        if serial:
            return serial
