"""A JWS body that arrives in more than one piece is read whole (facades/acme/jws.py read_jws).

Go's HTTP client (cert-manager's ACME client, lego) can send a request body in several TLS records; a read
that took only what was buffered saw half a JSON object and answered `malformed: the body is not JSON`."""

from __future__ import annotations

import asyncio
import json
from unittest import mock

import pytest
from aiohttp import StreamReader
from aiohttp.test_utils import make_mocked_request

from gatewaycerts.domain.acme import AcmeProblem
from gatewaycerts.facades.acme.jws import MAX_JWS_BYTES, read_jws
from tests.acme.harness import b64


def _request(body_pieces: list[bytes]):
    loop = asyncio.get_running_loop()
    protocol = mock.Mock(_reading_paused=False)
    reader = StreamReader(protocol, 2**16, loop=loop)
    reader.feed_data(body_pieces[0])

    def rest() -> None:  # the later pieces arrive only once the handler waits for more
        for piece in body_pieces[1:]:
            reader.feed_data(piece)
        reader.feed_eof()

    loop.call_soon(rest)
    return make_mocked_request(
        "POST",
        "/acme/ca/new-account",
        headers={"Content-Type": "application/jose+json"},
        payload=reader,
    )


def _jws(payload: dict) -> bytes:
    header = {"alg": "RS256", "jwk": {"kty": "RSA", "n": "AQAB" * 90, "e": "AQAB"}, "nonce": "n", "url": "u"}
    body = {
        "protected": b64(json.dumps(header).encode()),
        "payload": b64(json.dumps(payload).encode()),
        "signature": b64(b"s" * 256),
    }
    return json.dumps(body).encode()


async def test_a_body_in_three_pieces_is_read_whole() -> None:
    body = _jws({"termsOfServiceAgreed": True, "contact": ["mailto:ops@example.test"]})
    third = len(body) // 3
    jws = await read_jws(_request([body[:third], body[third : 2 * third], body[2 * third :]]))
    assert jws.payload == {"termsOfServiceAgreed": True, "contact": ["mailto:ops@example.test"]}
    assert jws.header["url"] == "u"


async def test_an_oversized_body_in_pieces_is_still_refused() -> None:
    body = _jws({"pad": "x" * MAX_JWS_BYTES})
    with pytest.raises(AcmeProblem) as refused:
        await read_jws(_request([body[:1000], body[1000:]]))
    assert refused.value.status == 413
