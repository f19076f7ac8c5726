"""pki.authority.check_and_issue (parse and verify a CSR, plan the profile, open the CA key, sign) of two or
more checkouts, in process, interleaved in rounds: thread CPU per call for the same P-256 CSR and CA. The plan
is the one bench/csr_parts.py makes (core/issuance.py's for an end entity); on checkouts whose key_usages_for
takes `key_kind`, it passes the CSR's key type, as issuance does there.

    .venv/bin/python bench/csr_trees.py /tmp/sign-base /work/wt/sign --rounds 7
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any


def _load(tree: str) -> dict[str, Any]:
    for name in [m for m in sys.modules if m.split(".")[0] == "gatewaycerts"]:
        del sys.modules[name]
    sys.path.insert(0, tree)
    try:
        from gatewaycerts.core import issuance
        from gatewaycerts.core import validity as val
        from gatewaycerts.domain.pca import SignatureHash
        from gatewaycerts.pki import authority
    finally:
        sys.path.remove(tree)
    return {"issuance": issuance, "val": val, "hash": SignatureHash, "pa": authority}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.csr_parts import _ca, csr_pem  # the CSR and the CA, made once by this checkout

    pem = csr_pem("www.bench.example")
    ca_pem, ca_key_pem, _, ca_cert = _ca()
    sys.path.pop(0)
    loaded = [(tree, _load(tree)) for tree in args.trees]
    now = dt.datetime.now(dt.UTC)
    runs = []
    for tree, m in loaded:
        pa, iss, val = m["pa"], m["issuance"], m["val"]
        with_kind = "key_kind" in pa.key_usages_for.__code__.co_varnames
        validity = val.ValidityRequest(type="DAY", value=30)

        def plan(
            facts: Any,
            pa: Any = pa,
            iss: Any = iss,
            val: Any = val,
            sig: Any = m["hash"],
            kind: bool = with_kind,
            validity: Any = validity,
        ) -> Any:
            sans = facts.sans
            subject = iss.csr_subject(facts, sans)
            nb, na = val.resolve_validity(
                validity,
                now,
                cap_years=val.SUBORDINATE_CAP_YEARS,
                issuer_not_before=ca_cert.not_valid_before_utc,
                issuer_not_after=ca_cert.not_valid_after_utc,
            )
            eku = iss.end_entity_usage(iss.csr_extended_key_usage(facts), sans, nb, na, default=iss.SERVER_AND_CLIENT)
            key = {"key_kind": facts.key_type} if kind else {"public_key_pem": facts.public_key_pem}
            return pa.Profile(
                subject=subject,
                not_before=nb,
                not_after=na,
                hash=sig.SHA256,
                is_ca=False,
                path_length=None,
                key_usages=pa.key_usages_for((), is_ca=False, algorithm=facts.key_algorithm, **key),
                extended_key_usage=eku,
                sans=sans,
                crl_distribution_url="http://127.0.0.1/crl",
                ocsp_url="http://127.0.0.1/ocsp",
                ca_issuers_url="http://127.0.0.1/ca",
            )

        print(f"{tree}: {pa.__file__}")
        runs.append((tree, pa.check_and_issue, plan))
    results: dict[str, list[float]] = {tree: [] for tree, _, _ in runs}
    for _ in range(args.rounds):
        for tree, check_and_issue, plan in runs:
            c0 = time.thread_time()
            for _ in range(args.calls):
                check_and_issue(pem, plan, 12345, issuer_certificate_pem=ca_pem, issuer_key_pem=lambda: ca_key_pem)
            results[tree].append((time.thread_time() - c0) * 1e6 / args.calls)
    for tree, values in results.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"{tree}: check_and_issue {statistics.median(values):.1f} µs median (rounds {rounds})")


if __name__ == "__main__":
    main()
