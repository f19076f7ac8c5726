"""web/requests.QueryMemo: a kept query is yarl's own parse of the same text (with what the route read from it),
and the memo is bounded."""

from __future__ import annotations

from aiohttp.test_utils import make_mocked_request

from gatewaycerts.web.requests import QueryMemo


def _request(query: str):
    return make_mocked_request("GET", f"/gateway/v1/p/instances/i/caddy?{query}")


def test_a_kept_query_is_the_parse_of_its_text_and_is_read_only():
    memo = QueryMemo(4, 100)
    first = _request("server_name=a.example&x=%41+b&x=2")
    assert memo.kept(first) is None
    memo.keep(first, ("read", first.query["server_name"]))
    again = _request("server_name=a.example&x=%41+b&x=2")
    found = memo.kept(again)
    assert found is not None and found.values == ("read", "a.example")  # what the route read, as it read it
    kept = found.query
    assert kept is memo.query(again)
    assert list(kept.items()) == list(again.query.items()) == [("server_name", "a.example"), ("x", "A b"), ("x", "2")]
    assert not hasattr(kept, "add")  # a MultiDictProxy: no request can change what the next one reads
    other = _request("server_name=b.example")
    assert memo.kept(other) is None and memo.query(other)["server_name"] == "b.example"


def test_the_memo_is_bounded_in_entries_and_in_text_length():
    memo = QueryMemo(3, 40)
    long = _request("server_name=" + "a" * 40)
    memo.keep(long, None)
    assert memo.kept(long) is None  # over max_chars: parsed each time
    for i in range(3):
        memo.keep(_request(f"n={i}"), i)
    assert len(memo._kept) == 3
    memo.keep(_request("n=3"), 3)  # full: starts again
    assert len(memo._kept) == 1 and memo.kept(_request("n=3")) is not None and memo.kept(_request("n=0")) is None
