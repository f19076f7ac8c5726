"""The `pem-scan` toggle of bench/inproc.py and bench/inproc_upload.py: off, pki/pem.py's split_blocks as it was
before stop 29 (one regex with a lazy `(.*?)` body and re.S, the header regex run over every body). Swapped in
place (the function's code, and the old pattern as a global of pki/pem.py), so every module that imported
split_blocks gets it."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from gatewaycerts.pki import pem

_LAZY_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----(.*?)-----END ([A-Z0-9 ]{1,40})-----", re.S)
_saved: dict[str, Any] = {}


def _lazy_split_blocks(text, *, field, max_blocks=16):  # type: ignore[no-untyped-def]
    # Runs with pki/pem.py's globals (its __code__ is swapped into pem.split_blocks): the body of before.
    text = normalise_text(text)  # noqa: F821
    blocks = []
    for match in _BLOCK.finditer(text):  # noqa: F821
        label, body, end_label = match.group(1), match.group(2), match.group(3)
        if label != end_label:
            raise CertificateParseError(f"{field}: PEM block BEGIN {label} ends with END {end_label}", field=field)  # noqa: F821
        if len(blocks) >= max_blocks:
            raise CertificateParseError(  # noqa: F821
                f"{field}: more than {max_blocks} PEM blocks; upload the leaf and its chain only", field=field
            )
        headers = tuple(h.strip() for h in _HEADER.findall(body))  # noqa: F821
        payload = _HEADER.sub("", body)  # noqa: F821
        try:
            der = base64.b64decode("".join(payload.split()), validate=True)  # noqa: F821
        except (binascii.Error, ValueError):  # noqa: F821
            raise CertificateParseError(f"{field}: PEM block {label} is not valid base64", field=field) from None  # noqa: F821
        if not der:
            raise CertificateParseError(f"{field}: PEM block {label} is empty", field=field)  # noqa: F821
        blocks.append(PemBlock(label=label, der=der, headers=headers))  # noqa: F821
    if not blocks:
        raise CertificateParseError(f"{field}: no PEM block found; expected -----BEGIN ...----- text", field=field)  # noqa: F821
    return blocks


def pem_scan(app: object, on: bool) -> None:
    """On: this branch's split_blocks; off: the one before stop 29."""
    if not _saved:
        _saved.update(code=pem.split_blocks.__code__)
    if on:
        pem.split_blocks.__code__ = _saved["code"]
    else:
        pem._BLOCK = _LAZY_BLOCK  # type: ignore[attr-defined]  # the old body's global
        pem.split_blocks.__code__ = _lazy_split_blocks.__code__


def main() -> None:
    """split_blocks on the texts an upload and a CSR signing split, this branch's against before, interleaved:
    `.venv/bin/python bench/pem_scan.py --rounds 5` (thread CPU per call, medians)."""
    import argparse
    import statistics
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from bench.bench_peer import csr_pem
    from tests.factories import ec_chain, rsa_chain

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rsa, ec = rsa_chain(), ec_chain()
    texts = {
        "RSA-2048 leaf + intermediate": rsa.bundle(),
        "RSA-2048 key (PKCS#8)": rsa.leaf.key_pem(),
        "P-256 leaf + intermediate": ec.bundle(),
        "P-256 key (PKCS#8)": ec.leaf.key_pem(),
        "P-256 CSR": csr_pem("www.bench.example"),
    }
    results: dict[tuple[str, bool], list[float]] = {(name, on): [] for name in texts for on in (True, False)}
    for _ in range(args.rounds):
        for name, text in texts.items():
            for on in (True, False):
                pem_scan(None, on)
                t0 = time.thread_time()
                for _ in range(args.calls):
                    pem.split_blocks(text, field="f")
                results[(name, on)].append((time.thread_time() - t0) * 1e6 / args.calls)
    # Hostile input within MAX_PEM_FIELD (64 kB): BEGIN lines and no END. Once per side: before, seconds.
    hostile = "-----BEGIN A-----" * 3800
    for on in (False, True):
        pem_scan(None, on)
        t0 = time.thread_time()
        with contextlib.suppress(pem.CertificateParseError):
            pem.split_blocks(hostile, field="f")
        results[("64 kB of BEGIN lines, no END", on)] = [(time.thread_time() - t0) * 1e6]
    texts["64 kB of BEGIN lines, no END"] = hostile
    pem_scan(None, True)
    for name in texts:
        now, before = results[(name, True)], results[(name, False)]
        print(
            f"{name:<30} {statistics.median(before):6.1f} -> {statistics.median(now):5.1f} µs "
            f"(rounds before {', '.join(f'{v:.1f}' for v in before)}; after {', '.join(f'{v:.1f}' for v in now)})"
        )


if __name__ == "__main__":
    main()
