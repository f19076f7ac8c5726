"""split_blocks against the one-regex form it replaced (a lazy `(.*?)` body with re.S, headers searched in every
body): the same blocks, or the same error, for PEM texts made of the pieces where the two forms could part (ENDs
with a wrong or malformed label, stray dashes, headers, BEGINs with no END after them, escaped newlines)."""

from __future__ import annotations

import base64
import binascii
import random
import re

import pytest

from gatewaycerts.domain.errors import CertificateParseError
from gatewaycerts.pki.pem import MAX_BLOCKS, PemBlock, normalise_text, split_blocks

_LAZY_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]{1,40})-----(.*?)-----END ([A-Z0-9 ]{1,40})-----", re.S)
_HEADER = re.compile(r"^[A-Za-z-]+:.*$", re.M)


def lazy_split_blocks(text: str, *, field: str, max_blocks: int = MAX_BLOCKS) -> list[PemBlock]:
    """split_blocks as it was before branch `sign` of stop 29."""
    text = normalise_text(text)
    blocks: list[PemBlock] = []
    for match in _LAZY_BLOCK.finditer(text):
        label, body, end_label = match.group(1), match.group(2), match.group(3)
        if label != end_label:
            raise CertificateParseError(f"{field}: PEM block BEGIN {label} ends with END {end_label}", field=field)
        if len(blocks) >= max_blocks:
            raise CertificateParseError(
                f"{field}: more than {max_blocks} PEM blocks; upload the leaf and its chain only", field=field
            )
        headers = tuple(h.strip() for h in _HEADER.findall(body))
        payload = _HEADER.sub("", body)
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


def outcome(fn, text: str):  # type: ignore[no-untyped-def]
    try:
        return fn(text, field="f", max_blocks=3)
    except CertificateParseError as exc:
        return ("error", exc.message)


B64 = base64.b64encode(bytes(range(48))).decode()
PIECES = [
    "-----BEGIN CERTIFICATE-----\n",
    "-----BEGIN PRIVATE KEY-----\n",
    "-----END CERTIFICATE-----\n",
    "-----END PRIVATE KEY-----\n",
    "-----END certificate-----",  # a label the END may not have: the body goes on to the next END
    "-----END CERTIFICATE----",  # one dash short
    "-----END -----",
    "-----END " + "A" * 41 + "-----",  # a label too long
    "-----BEGIN " + "A" * 41 + "-----",
    "----END CERTIFICATE-----",
    "-----BEGIN CERTIFICATE-----",
    "-",
    "--",
    "-----",
    "------END CERTIFICATE-----",
    B64[:64] + "\n",
    B64[:4],
    "Proc-Type: 4,ENCRYPTED\n",
    "DEK-Info: AES-128-CBC,00\n",
    ":",
    "a:b\n",
    "\r\n",
    "\\n",
    " ",
    "\n",
    "=",
    "!",
]

WELL_FORMED = [
    f"-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n",
    f"-----BEGIN CERTIFICATE-----\r\n{B64}\r\n-----END CERTIFICATE-----\r\n" * 2,
    f"-----BEGIN CERTIFICATE-----\\n{B64}\\n-----END CERTIFICATE-----\\n",
    f"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{B64}\n"
    "-----END RSA PRIVATE KEY-----\n",
    f"-----BEGIN CERTIFICATE-----\n{B64}\n-----END certificate-----\n{B64}\n-----END CERTIFICATE-----\n",
    f"-----BEGIN CERTIFICATE-----\n{B64}-\n-----END CERTIFICATE-----\n",
    f"-----BEGIN CERTIFICATE-----\n{B64}\n-----END PRIVATE KEY-----\n",
    f"-----BEGIN CERTIFICATE-----\n{B64}\n",
    "-----BEGIN CERTIFICATE----------END CERTIFICATE-----",
    "-" * 5000 + f"-----BEGIN CERTIFICATE-----\n{'-' * 3000}\n-----END CERTIFICATE-----\n",
    "no pem here",
    "-----BEGIN A-----" * 300,  # BEGIN lines and no END (the old form's quadratic case, small here)
    "-----BEGIN A-----" * 50 + f"-----END A-----\n-----BEGIN A-----\n{B64}\n-----END A-----\n",
    f"-----BEGIN CERTIFICATE-----\n{B64}\n-----END CERTIFICATE-----\n" * 4,
]


@pytest.mark.parametrize("text", WELL_FORMED, ids=range(len(WELL_FORMED)))
def test_the_cases_written_out_split_as_before(text):
    assert outcome(split_blocks, text) == outcome(lazy_split_blocks, text)


def random_text(rng: random.Random) -> str:
    """Blocks (BEGIN, a body of pieces, mostly an END of the same label) with pieces between them."""
    parts = []
    for _ in range(rng.randint(1, 4)):
        parts += [rng.choice(PIECES) for _ in range(rng.choice((0, 0, 1, 2)))]
        label = rng.choice(("CERTIFICATE", "PRIVATE KEY"))
        parts.append(f"-----BEGIN {label}-----\n")
        parts += [B64[:64] + "\n" if rng.random() < 0.5 else rng.choice(PIECES) for _ in range(rng.randint(0, 6))]
        parts.append(f"-----END {label}-----\n" if rng.random() < 0.8 else rng.choice(PIECES))
    return "".join(parts)


def test_random_texts_of_the_pieces_split_as_before():
    rng = random.Random(29)
    split = 0
    for _ in range(5000):
        text = random_text(rng)
        expected = outcome(lazy_split_blocks, text)
        assert outcome(split_blocks, text) == expected, repr(text)
        split += isinstance(expected, list)
    assert split > 250  # enough of the texts are blocks, not only errors
