"""pki.issue.build_certificate of two or more checkouts, in process, interleaved in rounds: thread CPU per call for
the same P-256 end-entity spec (every extension a CCM certificate from a CSR carries) and P-256 CA. Stop 29:

    .venv/bin/python bench/build_trees.py /tmp/sign-pem /work/wt/sign --rounds 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


def _load(tree: str) -> Callable[[], Any]:
    for name in [m for m in sys.modules if m.split(".")[0] in ("gatewaycerts", "tests")]:
        del sys.modules[name]
    sys.path.insert(0, tree)
    try:
        from gatewaycerts.domain import pca
        from gatewaycerts.pki import issue
        from tests.factories import ec_key
    finally:
        sys.path.remove(tree)
    key, leaf = ec_key("secp256r1", 2), ec_key("secp256r1", 3).public_key()
    now = dt.datetime.now(dt.UTC)
    root_spec = issue.IssueSpec(
        subject=pca.DistinguishedName(common_name="Bench CA"),
        public_key=key.public_key(),
        serial=5,
        not_before=now,
        not_after=now + dt.timedelta(days=999),
        hash=pca.SignatureHash.SHA256,
        is_ca=True,
        path_length=None,
        key_usages=(pca.KeyUsage.KEY_CERT_SIGN, pca.KeyUsage.CRL_SIGN),
    )
    facts = issue.issuer_facts(issue.build_certificate(root_spec, None, key))
    spec = issue.IssueSpec(
        subject=pca.DistinguishedName(common_name="www.example.com"),
        public_key=leaf,
        serial=123456789,
        not_before=now,
        not_after=now + dt.timedelta(days=30),
        hash=pca.SignatureHash.SHA256,
        is_ca=False,
        path_length=None,
        key_usages=(pca.KeyUsage.DIGITAL_SIGNATURE,),
        extended_key_usage=pca.ExtendedKeyUsage(server_auth=True, client_auth=True),
        sans=(pca.SubjectAltName(pca.SanType.DNS, "www.example.com"),),
        crl_distribution_url="http://127.0.0.1/crl",
        ocsp_url="http://127.0.0.1/ocsp",
        ca_issuers_url="http://127.0.0.1/ca",
    )
    return lambda: issue.build_certificate(spec, facts, key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    fns = {tree: _load(tree) for tree in args.trees}
    results: dict[str, list[float]] = {tree: [] for tree in args.trees}
    for fn in fns.values():
        for _ in range(200):
            fn()
    for _ in range(args.rounds):
        for tree, fn in fns.items():
            t0 = time.thread_time()
            for _ in range(args.calls):
                fn()
            results[tree].append((time.thread_time() - t0) * 1e6 / args.calls)
    for tree, values in results.items():
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(f"{tree}: build_certificate {statistics.median(values):.1f} µs median (rounds {rounds})")


if __name__ == "__main__":
    main()
