"""Where a CSR certificate's pki CPU goes, in process: pure cryptography beside our own steps for the same
P-256 CSR, interleaved in rounds, thread CPU per call (issue #22 target 2, branch `sign` lead 2).

    .venv/bin/python bench/csr_parts.py --calls 2000 --rounds 5

Rows: `crypto: ...` are cryptography alone (what any CA must pay to read and verify the CSR, and to sign);
`ours: ...` are our steps (pki/csr.py parse_csr, pki/authority.py's facts, the plan core/issuance.py makes,
the whole check_and_issue). Nothing asserts.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bench.bench_peer import csr_pem
from gatewaycerts.core.issuance import SERVER_AND_CLIENT, csr_subject, end_entity_usage
from gatewaycerts.core.validity import SUBORDINATE_CAP_YEARS, ValidityRequest, resolve_validity
from gatewaycerts.domain.pca import KeyAlgorithm, SignatureHash
from gatewaycerts.pki import authority as pa
from gatewaycerts.pki.csr import csr_fingerprint, parse_csr
from gatewaycerts.pki.issue import issuer_facts_of_pem
from gatewaycerts.pki.keygen import generate_private_key, private_key_to_pem


def _ca() -> tuple[str, bytes, ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = generate_private_key(KeyAlgorithm.EC256)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Bench P-256 CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode(), private_key_to_pem(key), key, cert


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", help="cProfile the case whose name starts with this instead")
    args = parser.parse_args()
    pem = csr_pem("www.bench.example")
    pem_b = pem.encode()
    ca_pem, ca_key_pem, ca_key, ca_cert = _ca()
    now = dt.datetime.now(dt.UTC)
    validity = ValidityRequest(type="DAY", value=30)

    def plan(facts: pa.CsrFacts) -> pa.Profile:
        # as core/issuance.py's issue_from_csr plan for an end entity without SANs in the body
        sans = facts.sans
        subject = csr_subject(facts, sans)
        nb, na = resolve_validity(
            validity,
            now,
            cap_years=SUBORDINATE_CAP_YEARS,
            issuer_not_before=ca_cert.not_valid_before_utc,
            issuer_not_after=ca_cert.not_valid_after_utc,
        )
        eku = end_entity_usage(facts.extended_key_usage, sans, nb, na, default=SERVER_AND_CLIENT)
        return pa.Profile(
            subject=subject,
            not_before=nb,
            not_after=na,
            hash=SignatureHash.SHA256,
            is_ca=False,
            path_length=None,
            key_usages=pa.key_usages_for(
                (), is_ca=False, algorithm=facts.key_algorithm, public_key_pem=facts.public_key_pem
            ),
            extended_key_usage=eku,
            sans=sans,
            crl_distribution_url="http://127.0.0.1/crl",
            ocsp_url="http://127.0.0.1/ocsp",
            ca_issuers_url="http://127.0.0.1/ca",
        )

    parsed = parse_csr(pem)
    facts = pa.inspect_csr(pem)
    profile = plan(facts)
    crypto_csr = x509.load_pem_x509_csr(pem_b)

    def crypto_sign() -> None:
        # the certificate step-ca-like minimum: subject, SAN, key, serial, validity, BC, KU, EKU, AKI, SKI
        b = (
            x509.CertificateBuilder()
            .subject_name(crypto_csr.subject)
            .issuer_name(ca_cert.subject)
            .public_key(crypto_csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(crypto_csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        b.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)

    cases: dict[str, Callable[[], object]] = {
        "crypto: load_pem_x509_csr": lambda: x509.load_pem_x509_csr(pem_b),
        "crypto: load + is_signature_valid": lambda: x509.load_pem_x509_csr(pem_b).is_signature_valid,
        "crypto: load + verify + public_key + subject + SAN": lambda: (
            (c := x509.load_pem_x509_csr(pem_b)).is_signature_valid,
            c.public_key(),
            list(c.subject),
            c.extensions.get_extension_for_class(x509.SubjectAlternativeName),
        ),
        "crypto: build + sign a leaf (P-256 CA)": crypto_sign,
        "crypto: load the CA key (PEM)": lambda: serialization.load_pem_private_key(ca_key_pem, None),
        "ours: parse_csr": lambda: parse_csr(pem),
        "ours: _facts of a parsed CSR": lambda: pa._facts(parsed),
        "ours: the CSR's fingerprint + PEM (unused when issuing)": lambda: (
            csr_fingerprint(parsed.csr),
            parsed.csr.public_bytes(serialization.Encoding.PEM),
        ),
        "ours: the public key's PEM (SPKI)": lambda: parsed.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "ours: plan (subject, validity, EKU, key usages)": lambda: plan(facts),
        "ours: key_usages_for (parses the public key PEM again)": lambda: pa.key_usages_for(
            (), is_ca=False, algorithm=facts.key_algorithm, public_key_pem=facts.public_key_pem
        ),
        "ours: build + sign (build_certificate via issue's spec)": lambda: pa.build_certificate(
            pa._spec(profile, parsed.public_key, 12345), issuer_facts_of_pem(ca_pem), ca_key
        ),
        "ours: build + sign, the CA key loaded from PEM each time": lambda: pa.build_certificate(
            pa._spec(profile, parsed.public_key, 12345),
            issuer_facts_of_pem(ca_pem),
            pa.private_key_from_pem(ca_key_pem),
        ),
        "ours: build + sign, a fresh CSR's public key each time": lambda: pa.build_certificate(
            pa._spec(profile, x509.load_pem_x509_csr(pem_b).public_key(), 12345), issuer_facts_of_pem(ca_pem), ca_key
        ),
        "ours: check_and_issue (all of it)": lambda: pa.check_and_issue(
            pem, plan, 12345, issuer_certificate_pem=ca_pem, issuer_key_pem=lambda: ca_key_pem
        ),
    }
    if args.profile:
        sys.path.remove(str(Path(__file__).resolve().parent))  # bench/profile.py would shadow the stdlib's
        import cProfile
        import pstats

        fn = next(f for name, f in cases.items() if name.startswith(args.profile))
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(args.calls):
            fn()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    results: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        for _ in range(50):
            fn()
    for _ in range(args.rounds):
        for name, fn in cases.items():
            t0 = time.thread_time()
            for _ in range(args.calls):
                fn()
            results[name].append((time.thread_time() - t0) * 1e6 / args.calls)
    width = max(map(len, cases))
    for name, values in results.items():
        print(f"{name:<{width}}  {statistics.median(values):8.1f} µs  (rounds {', '.join(f'{v:.1f}' for v in values)})")


if __name__ == "__main__":
    main()
