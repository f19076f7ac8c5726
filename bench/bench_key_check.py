"""Upload validation cost versus cryptography's default RSA key load, measured side by side in one run.

Prints ops/s for each variant and the ratios; run with `make bench`. Not a test.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bench.harness import rate
from gatewaycerts.pki.bundle import validate_bundle
from tests.factories import NOW, ec_chain, rsa_chain


def main() -> None:
    rsa, ec = rsa_chain(), ec_chain()
    rsa_bundle, rsa_key = rsa.bundle(), rsa.leaf.key_pem()
    ec_bundle, ec_key = ec.bundle(), ec.leaf.key_pem()
    rsa_key_bytes = rsa_key.encode()
    rows = {
        "parse only: RSA leaf+intermediate, key unchecked (floor)": lambda: (
            x509.load_pem_x509_certificates(rsa_bundle.encode()),
            serialization.load_pem_private_key(rsa_key_bytes, None, unsafe_skip_rsa_key_validation=True),
        ),
        "validate_bundle RSA-2048 (CRT checks + sign/verify)": lambda: validate_bundle(
            rsa_bundle, rsa_key, None, now=NOW
        ),
        "validate_bundle P-256": lambda: validate_bundle(ec_bundle, ec_key, None, now=NOW),
        "default RSA-2048 key load alone (primality checks)": lambda: serialization.load_pem_private_key(
            rsa_key_bytes, None
        ),
    }
    results = {name: rate(fn, 1.5) for name, fn in rows.items()}
    width = max(map(len, results))
    print(f"{'operation':<{width}}  ops/s")
    for name, r in results.items():
        print(f"{name:<{width}}  {r:10.0f}")
    ours = results["validate_bundle RSA-2048 (CRT checks + sign/verify)"]
    default = results["default RSA-2048 key load alone (primality checks)"]
    floor = results["parse only: RSA leaf+intermediate, key unchecked (floor)"]
    print(f"\nRSA upload validation vs default key load alone: {ours / default:.1f}x faster")
    print(f"RSA upload validation vs parse-only floor: {ours / floor:.2f} of the floor rate")


if __name__ == "__main__":
    main()
