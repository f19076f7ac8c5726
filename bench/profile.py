"""Where a route's CPU goes: py-spy samples one `gatewaycerts serve` process (one worker, SQLite, access log at
INFO) while bench/loadgen drives the route, then prints the largest shares of the samples, inclusive (a
function and what it calls) and self. Not part of `make bench`; py-spy comes with the `bench` extra
(`pip install -e '.[bench]'`) and needs ptrace (root, or CAP_SYS_PTRACE).

    .venv/bin/python bench/profile.py show|list|csr|upload|issue|caddy|304 [--seconds 8] [--raw out.txt]

`caddy` and `304` serve bench_delivery's data (2,000 certificates, 10,000 names on one instance) and send its
requests (the Caddy route across 1,430 names; the snapshot's 304).
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import Service, build_loadgen, request
from bench.run import APIC, CAS, CERTS, csr_pem
from tests.factories import ec_chain


def requests_for(route: str, svc: Service, token: str) -> list[dict]:
    chain = ec_chain()
    if route in ("show", "list"):
        status, cert = svc.call(
            "POST",
            APIC,
            token,
            {"name": "prof_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
        )
        assert status == 200, cert
        path = f"{APIC}/{cert['id']}" if route == "show" else f"{APIC}?limit=20&offset=0"
        return [request("GET", path, token)]
    if route == "upload":
        return [
            request(
                "POST",
                APIC,
                token,
                {"name": f"up_{i:07d}", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
            )
            for i in range(40000)
        ]
    status, ca = svc.call(
        "POST",
        CAS,
        token,
        {
            "type": "ROOT",
            "distinguished_name": {"common_name": "Profile CA"},
            "key_algorithm": "EC256",
            "validity": {"type": "YEAR", "value": 10},
        },
    )
    assert status == 200, ca
    if route == "csr":
        return [
            request(
                "POST",
                CERTS + "/csr",
                token,
                {"issuer_id": ca["ca_id"], "csr": csr_pem(), "validity": {"type": "DAY", "value": 30}},
            )
            for _ in range(500)
        ]
    body = {
        "issuer_id": ca["ca_id"],
        "key_algorithm": "EC256",
        "distinguished_name": {"common_name": "profile.example.com"},
        "validity": {"type": "DAY", "value": 30},
    }
    return [request("POST", CERTS, token, body)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("route", choices=["show", "list", "csr", "upload", "issue", "caddy", "304"])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    build_loadgen()
    state = None
    if args.route in ("caddy", "304"):
        from bench import bench_delivery

        state = bench_delivery.new_state()
    env = {"GATEWAYCERTS_LOG_LEVEL": "INFO", "GATEWAYCERTS_LOG_FORMAT": "json"}
    with Service(env=env, state_dir=state) as svc:
        if state is not None:
            caddy, not_modified, _, _ = bench_delivery.gateway_requests(svc, svc.token(bench_delivery.PROJECT))
            reqs = caddy if args.route == "caddy" else not_modified
        else:
            reqs = requests_for(args.route, svc, svc.token())
        with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as fh:
            for r in reqs:
                fh.write(json.dumps(r) + "\n")
        load = subprocess.Popen(
            [str(build_loadgen()), "-url", svc.base, "-requests", fh.name, "-c", "16", "-n", "10000000"],
            stdout=subprocess.DEVNULL,
        )
        raw = args.raw or Path(tempfile.mktemp(suffix=".txt"))
        try:
            subprocess.run(
                [
                    spy,
                    "record",
                    "--pid",
                    str(svc.proc.pid),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "500",
                    "--format",
                    "raw",
                    "--output",
                    str(raw),
                    "--nonblocking",
                ],
                check=True,
                capture_output=True,
            )
        finally:
            load.terminate()
            load.wait()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        frames = stack.split(";")
        names = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].split("/")[-1] + ")" for f in frames]
        for name in set(names):
            inclusive[name] += n
        own[names[-1]] += n
    print(f"{total} samples of {args.route}\n\ninclusive:")
    for name, n in inclusive.most_common(args.top):
        print(f"{100 * n / total:5.1f} %  {name}")
    print("\nself:")
    for name, n in own.most_common(args.top):
        print(f"{100 * n / total:5.1f} %  {name}")


if __name__ == "__main__":
    main()
