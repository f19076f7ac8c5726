"""Stored documents of the SQLite store: orjson writes them, json reads them, and what orjson refuses falls
back to json.dumps; either way they read back as written."""

from __future__ import annotations

import datetime as dt
import json

from gatewaycerts.store.sqlite.base import decode_json, dump_json, encode_json


def back(text: str):
    return json.loads(text, object_hook=decode_json)


def test_dates_bytes_and_text_read_back_as_written():
    doc = {
        "when": dt.datetime(2026, 12, 2, 7, 30, 1, 123456, tzinfo=dt.UTC),
        "blob": b"\x00\xffkey",
        "name": "证书_été\u2028",
        "nested": [{"at": dt.datetime(2030, 1, 1, tzinfo=dt.UTC)}, 1.5, None, True],
        "n": 2**63 - 1,
    }
    text = dump_json(doc)
    assert back(text) == doc
    assert back(text) == back(json.dumps(doc, default=encode_json))


def test_what_orjson_refuses_falls_back_to_json():
    doc = {"serial": 2**159 + 7, "keyed": {3: "int key"}, "when": dt.datetime(2026, 1, 1, tzinfo=dt.UTC)}
    text = dump_json(doc)
    assert back(text) == {"serial": 2**159 + 7, "keyed": {"3": "int key"}, "when": doc["when"]}
