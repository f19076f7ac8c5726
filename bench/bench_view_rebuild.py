"""In process, the delivery side of one change (issue #18's propagation): the CPU from `certificate_changed`
to the held poll's answer being ready, on the delivery data set's shape (2,000 certificates, each bound on
the bench instance under five names and on one of 100 other instances under one more), for the code of this
checkout or of another (`--code DIR`: run that checkout's gatewaycerts, e.g. one from `git archive`).

Not a test: nothing here asserts. Per change (an attach/detach of one name on `other000`, as
bench_delivery.py --propagation-only makes) it prints the median and p90 CPU (time.process_time) of:
`rebuild` (certificate_changed + the view of other000 built again), `answer` (rebuild + the snapshot's items
of other000, keys decrypted, as a woken poll answers), then `edge` (certificate_changed + the view of the bench
instance, which receives all 2,000 certificates, built again; its old view freed). Run it once per side,
alternating, and compare.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "bench"
INSTANCE = "edge"
CERTS = 2_000
NAMES_PER_CERT = 5
OTHER_INSTANCES = 100


class _Store:
    """The two reads a project's first load makes (the data set in memory: this measures the service)."""

    def __init__(self, certs: list) -> None:
        self._certs = certs

    async def change_counters(self, ids: list[str]) -> dict[str, int]:
        return dict.fromkeys(ids, 1)

    async def bound_certificates(self, project_id: str) -> list:
        return list(self._certs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, help="another checkout's code to measure")
    parser.add_argument("--changes", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve() if args.code else ROOT))
    sys.path.insert(1, str(ROOT))  # tests.factories from this checkout

    from gatewaycerts.app import build_vault
    from gatewaycerts.core.delivery.service import DeliveryService
    from gatewaycerts.domain.models import Certificate, CertificateScope, DomainBinding, Principal, Role
    from gatewaycerts.pki.bundle import validate_bundle
    from gatewaycerts.settings import Settings
    from tests.factories import CertSpec, ec_chain, ec_key, issue

    vault = build_vault(Settings(state_dir=Path(tempfile.mkdtemp(prefix="gc-bench-view-"))))
    chain = ec_chain()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    leaf = issue(CertSpec(cn="c.bench.example", dns=("c.bench.example",)), ec_key("secp256r1", 9), chain.intermediate)
    bundle = validate_bundle(leaf.pem + chain.intermediate.pem, leaf.key_pem(), None, now=now)
    certs = []
    for c in range(CERTS):
        cert_id = uuid.uuid4().hex
        names = [f"c{c:04d}-{j}.bench.example" for j in range(NAMES_PER_CERT)]
        bindings = (
            *(DomainBinding(uuid.uuid4().hex, n, (INSTANCE,), False, now) for n in names),
            DomainBinding(
                uuid.uuid4().hex, f"o{c:04d}.other.example", (f"other{c % OTHER_INSTANCES:03d}",), False, now
            ),
        )
        certs.append(
            Certificate(
                id=cert_id,
                project_id=PROJECT,
                name=f"bench_{c:04d}",
                scope=CertificateScope.GLOBAL,
                instance_id="common",
                info=bundle.info,
                chain_pem=bundle.chain_pem,
                encrypted_private_key=vault.encrypt(
                    bundle.private_key_pem, context=f"apic-certificate:{PROJECT}:{cert_id}"
                ),
                trusted_root_ca_pem=None,
                has_trusted_root_ca=False,
                create_time=now,
                update_time=now,
                bindings=bindings,
            )
        )
    principal = Principal("gw", frozenset({PROJECT}), frozenset({Role.GATEWAY}), frozenset({"other000", INSTANCE}))

    async def run() -> dict[str, list[float]]:
        svc = DeliveryService(_Store(certs), vault)
        await svc.bundle(principal, PROJECT, "other000")
        project = svc._projects[PROJECT]
        first = certs[0]
        attached = replace(
            first, bindings=(*first.bindings, DomainBinding("x", "c0000-0.bench.example", ("other000",), False, now))
        )
        out: dict[str, list[float]] = {"rebuild": [], "answer": [], "edge": []}
        revision = first.revision
        for i in range(args.changes):
            revision += 1
            cert = replace(attached if i % 2 == 0 else first, revision=revision)
            t0 = time.process_time()
            svc.certificate_changed(PROJECT, cert.id, cert)
            view = svc._view(project, "other000")
            t1 = time.process_time()
            items = tuple(svc._item_doc(item) for item in view.items)
            t2 = time.process_time()
            assert items
            out["rebuild"].append((t1 - t0) * 1e6)
            out["answer"].append((t2 - t0) * 1e6)
        for i in range(args.changes):  # then with the bench instance's view held too (as its Caddy route keeps it)
            revision += 1
            cert = replace(attached if i % 2 == 0 else first, revision=revision)
            t0 = time.process_time()
            svc.certificate_changed(PROJECT, cert.id, cert)
            svc._view(project, INSTANCE)
            out["edge"].append((time.process_time() - t0) * 1e6)
        return out

    out = asyncio.run(run())
    import gatewaycerts

    print(f"code: {Path(gatewaycerts.__file__).parent}")
    label = str(args.code) if args.code else "this checkout"
    for key, values in out.items():
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        print(
            f"{label}: {key}: median {statistics.median(values):.0f} µs, p90 {p90:.0f} µs"
            f" CPU over {len(values)} changes (pid {os.getpid()})"
        )


if __name__ == "__main__":
    main()
