"""The Caddy answer's and the snapshot 304's prebuilt header blocks (facades/gateway/views.py) give the same
headers, in the same order, as the per-request construction they replace; a response's own additions never
reach the block; the If-None-Match memo gives what the parse gives, and stays bounded."""

from __future__ import annotations

import pytest
from aiohttp import web

from gatewaycerts.facades.gateway import views

PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _items(response: web.Response) -> list[tuple[str, str]]:
    return list(response.headers.items())


@pytest.mark.parametrize("stale", [0, 7], ids=["fresh", "stale"])
def test_the_caddy_answer_has_the_headers_of_the_per_request_construction(stale):
    built = web.Response(body=PEM, content_type="text/plain", headers=views._headers(stale))
    answer = views._caddy_response(PEM, stale)
    assert _items(answer) == _items(built)
    assert answer.body == PEM
    assert answer.content_type == built.content_type == "text/plain"


@pytest.mark.parametrize("stale", [0, 7], ids=["fresh", "stale"])
def test_the_304_has_the_headers_of_the_per_request_construction(stale):
    version = "v1-0123456789abcdef"
    built = web.Response(status=304, headers=views._headers(stale, version))
    for _ in range(2):  # built once, then from the memo
        answer = web.Response(status=304, headers=views._versioned(stale, version))
        assert _items(answer) == _items(built)


def test_a_response_of_its_own_never_changes_the_prebuilt_blocks():
    answer = views._caddy_response(PEM, 0)
    answer.headers["X-Request-Id"] = "r1"  # what the request middleware adds
    not_modified = web.Response(status=304, headers=views._versioned(0, "v2"))
    not_modified.headers["X-Request-Id"] = "r2"
    assert "X-Request-Id" not in views._CADDY_HEADERS
    assert "X-Request-Id" not in views._versioned(0, "v2")
    assert "X-Request-Id" not in views._caddy_response(PEM, 0).headers


def test_the_version_memo_is_bounded():
    for i in range(views._MAX_VERSION_HEADERS + 5):
        views._versioned(0, f"v{i}")
        assert len(views._VERSION_HEADERS) <= views._MAX_VERSION_HEADERS
    assert views._versioned(0, "v0")["ETag"] == '"v0"'


class _Request:
    def __init__(self, value: str | None) -> None:
        self.headers = {} if value is None else {"If-None-Match": value}


@pytest.mark.parametrize(
    "raw",
    [None, "", '"v1"', 'W/"v1"', ' "v1" , "v2"', "v1", '"' + "x" * 300 + '"', 'W/"a", W/"b"'],
)
def test_if_none_match_is_what_the_parse_gives_twice(raw):
    expected = None if not raw else views._etag_of(raw)
    assert views._if_none_match(_Request(raw)) == expected
    assert views._if_none_match(_Request(raw)) == expected  # from the memo


def test_the_if_none_match_memo_is_bounded():
    for i in range(views._MAX_VERSION_HEADERS + 5):
        assert views._if_none_match(_Request(f'"t{i}"')) == f"t{i}"
        assert len(views._TAGS) <= views._MAX_VERSION_HEADERS
