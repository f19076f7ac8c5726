"""The `pem-scan` toggle of bench/inproc.py and bench/inproc_upload.py: off, pki/pem.py's split_blocks as it was
before stop 29 (a lazy `(.*?)` body with re.S, the header regex run over every body). Swapped in place (the
function's code and the module's pattern), so every module that imported split_blocks gets it."""

from __future__ import annotations

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
        _saved.update(code=pem.split_blocks.__code__, block=pem._BLOCK)
    if on:
        pem.split_blocks.__code__, pem._BLOCK = _saved["code"], _saved["block"]
    else:
        pem.split_blocks.__code__, pem._BLOCK = _lazy_split_blocks.__code__, _LAZY_BLOCK
