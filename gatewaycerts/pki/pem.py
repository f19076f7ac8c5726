"""Splitting PEM text (RFC 7468) into typed blocks, with limits that keep hostile input cheap."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from gatewaycerts.domain.errors import CertificateParseError

# A block is a BEGIN line, a body, and the first END line after it ("-----END <label>-----"): what the regex
# `-----BEGIN (label)-----(.*?)-----END (label)-----` (re.S) matched until stop 29, found with two searches
# instead. The lazy `(.*?)` tried the END after every character of the body (~10x the time on a 2-certificate
# RSA bundle), and for a BEGIN with no END after it scanned to the end of the text and again from the next BEGIN:
# quadratic, ~3.5 s for 64 kB of BEGIN lines. Here a BEGIN without an END after it ends the scan (no later BEGIN
# can have one either), so the scan is linear.
_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----")
_END = re.compile(r"-----END ([A-Z0-9 ]{1,40})-----")
_HEADER = re.compile(r"^[A-Za-z-]+:.*$", re.M)

MAX_BLOCKS = 16


@dataclass(frozen=True, slots=True)
class PemBlock:
    label: str
    der: bytes
    headers: tuple[str, ...]

    def to_pem(self) -> str:
        body = base64.b64encode(self.der).decode("ascii")
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        return f"-----BEGIN {self.label}-----\n{lines}\n-----END {self.label}-----\n"


def normalise_text(text: str) -> str:
    """Accept the JSON-escaped form some clients send (literal backslash-n, as in the APIG example)."""
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\r\\n", "\n").replace("\\n", "\n")
    return text.replace("\r\n", "\n")


def split_blocks(text: str, *, field: str, max_blocks: int = MAX_BLOCKS) -> list[PemBlock]:
    """Every PEM block of `text`, in order. Raises CertificateParseError naming `field`."""
    text = normalise_text(text)
    blocks: list[PemBlock] = []
    pos = 0
    while (begin := _BEGIN.search(text, pos)) is not None:
        end = _END.search(text, begin.end())
        if end is None:
            break
        pos = end.end()
        label, body, end_label = begin.group(1), text[begin.end() : end.start()], end.group(1)
        if label != end_label:
            raise CertificateParseError(f"{field}: PEM block BEGIN {label} ends with END {end_label}", field=field)
        if len(blocks) >= max_blocks:
            raise CertificateParseError(
                f"{field}: more than {max_blocks} PEM blocks; upload the leaf and its chain only", field=field
            )
        if ":" in body:  # RFC 1421 headers ("Proc-Type: 4,ENCRYPTED"); base64 has no colon
            headers = tuple(h.strip() for h in _HEADER.findall(body))
            payload = _HEADER.sub("", body)
        else:
            headers, payload = (), body
        try:
            der = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise CertificateParseError(f"{field}: PEM block {label} is not valid base64", field=field) from None
        if not der:
            raise CertificateParseError(f"{field}: PEM block {label} is empty", field=field)
        blocks.append(PemBlock(label=label, der=der, headers=headers))
    if not blocks:
        raise CertificateParseError(f"{field}: no PEM block found; expected -----BEGIN ...----- text", field=field)
    return blocks
