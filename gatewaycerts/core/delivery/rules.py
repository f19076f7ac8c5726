"""The delivery rules: which bindings an instance receives, how a server name is matched, which of a dual
binding a client gets. Pure functions over domain objects (docs/api/gateway.md states them for users)."""

from __future__ import annotations

import ipaddress

from gatewaycerts.domain.errors import InvalidInputError, PermissionDeniedError
from gatewaycerts.domain.models import AlgorithmType, Certificate, CertificateScope, DomainBinding, Principal, Role
from gatewaycerts.pki.hostnames import normalise_domain

MAX_SERVER_NAME = 253
# TLS SignatureScheme code points of ECDSA (RFC 8446 §4.2.3): ecdsa_secp256r1_sha256, _secp384r1_sha384,
# _secp521r1_sha512, and the TLS 1.2 ecdsa_sha1 pair (0x0203).
ECDSA_SCHEMES = frozenset({0x0403, 0x0503, 0x0603, 0x0203})
# TLS 1.2 cipher suites are bound to the certificate's key type: the ECDHE_ECDSA ones (RFC 8422, 7905, 7251,
# 5289) need an ECDSA certificate. TLS 1.3 suites (0x13xx) are not (the signature schemes decide there).
ECDSA_SUITES = frozenset(
    {0xC02B, 0xC02C, 0xCCA9, 0xC023, 0xC024, 0xC009, 0xC00A, 0xC0AC, 0xC0AD, 0xC0AE, 0xC0AF, 0xC072, 0xC073, 0xC086}
    | {0xC087, 0xC007, 0xC008, 0xC006}
)


def bindings_for(cert: Certificate, instance_id: str) -> list[DomainBinding]:
    """The bindings of `cert` that instance `instance_id` receives.

    - an instance-scoped certificate: its bindings, on its own instance only;
    - a global certificate: each binding whose `instance_ids` names the instance;
    - a binding of a global certificate that names no instance goes to no instance (private keys go only
      where they were sent by name).
    """
    if cert.scope is CertificateScope.INSTANCE:
        return list(cert.bindings) if cert.instance_id == instance_id else []
    return [b for b in cert.bindings if instance_id in b.instance_ids]


def binding_instances(cert: Certificate, binding: DomainBinding) -> tuple[str, ...]:
    """The instances a binding is delivered to (see bindings_for)."""
    if cert.scope is CertificateScope.INSTANCE:
        return (cert.instance_id,)
    return binding.instance_ids


def receiving_instances(cert: Certificate) -> frozenset[str]:
    """Every instance for which bindings_for(cert, instance) is not empty (a global certificate's binding
    that names no instance adds none)."""
    if not cert.bindings:
        return frozenset()
    if cert.scope is CertificateScope.INSTANCE:
        return frozenset((cert.instance_id,))
    return frozenset(instance for b in cert.bindings for instance in b.instance_ids)


def authorize_delivery(principal: Principal, project_id: str, instance_id: str) -> None:
    """Only a gateway principal of the project, for one of its instances, receives private keys."""
    if Role.GATEWAY not in principal.roles:
        raise PermissionDeniedError(
            "no permissions to request this method: only gateway credentials may receive certificates"
        )
    if project_id not in principal.projects or instance_id not in principal.instances:
        raise PermissionDeniedError(
            "no permissions to request this method: the gateway credential is not valid for this instance"
        )


def normalise_server_name(server_name: str) -> str:
    """The lookup form of a TLS server name: lower case, no trailing dot, IDNA A-labels, canonical IP text.

    InvalidInputError for an empty, overlong or malformed name."""
    raw = server_name.strip()
    if not raw or len(raw) > MAX_SERVER_NAME + 1:
        raise InvalidInputError("Invalid parameter value, parameterName:server_name", field="server_name")
    if not raw.isascii():
        try:
            raw = raw.rstrip(".").encode("idna").decode("ascii")
        except (UnicodeError, ValueError):
            raise InvalidInputError(
                "Invalid parameter value, parameterName:server_name. It is not a valid internationalised name",
                field="server_name",
            ) from None
    name = normalise_domain(raw)
    if name is None:
        raise InvalidInputError(
            "Invalid parameter value, parameterName:server_name. It is not a valid host name", field="server_name"
        )
    return name


def candidate_names(name: str) -> tuple[str, ...]:
    """Binding names that may serve `name`, most specific first: the exact name, then the wildcard over
    exactly its left-most label. An IP address matches only a binding of that address."""
    try:
        ipaddress.ip_address(name)
        return (name,)
    except ValueError:
        pass
    labels = name.split(".")
    if len(labels) < 3:
        return (name,)
    return (name, "*." + ".".join(labels[1:]))


def parse_signature_schemes(value: str | None) -> frozenset[int] | None:
    """Caddy's `signature_schemes` or `cipher_suites` (hex code points, comma separated) as integers; None
    when absent.

    Entries that are not hex numbers are ignored (a client's list is advice, not input to refuse)."""
    if not value:
        return None
    out = set()
    for part in value.split(",")[:256]:
        part = part.strip()
        if 0 < len(part) <= 4:
            try:
                out.add(int(part, 16))
            except ValueError:
                continue
    return frozenset(out)


def prefers_ecc(schemes: frozenset[int] | None, suites: frozenset[int] | None = None) -> bool:
    """ECC when the client offers an ECDSA scheme; a client that said nothing gets ECC too (every current
    TLS stack does ECDSA), but RSA whenever it listed schemes without ECDSA. Also RSA when the client listed
    cipher suites none of which can use an ECDSA certificate (a TLS 1.2-only client with only ECDHE_RSA suites
    still lists ECDSA signature schemes)."""
    if suites and not any(s >> 8 == 0x13 or s in ECDSA_SUITES for s in suites):
        return False
    return schemes is None or bool(schemes & ECDSA_SCHEMES)


def choose(
    by_algorithm: dict[AlgorithmType, object], schemes: frozenset[int] | None, suites: frozenset[int] | None = None
) -> object | None:
    """Of the certificates bound to one name (at most one per algorithm), the one the client can use."""
    if prefers_ecc(schemes, suites) and AlgorithmType.ECC in by_algorithm:
        return by_algorithm[AlgorithmType.ECC]
    if AlgorithmType.RSA in by_algorithm:
        return by_algorithm[AlgorithmType.RSA]
    # Only an ECC certificate for a client that listed no ECDSA scheme: TLS itself then says no.
    return next(iter(by_algorithm.values()), None)
