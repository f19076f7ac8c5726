"""Reading request bodies and query strings into typed values, with domain errors on bad input."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any, Generic, NamedTuple, TypeVar

from aiohttp import web
from marshmallow import EXCLUDE, Schema, ValidationError
from multidict import MultiDictProxy

from gatewaycerts.appkeys import PRINCIPAL
from gatewaycerts.core.authz import project_of
from gatewaycerts.domain.errors import InvalidInputError, MissingParameterError
from gatewaycerts.domain.models import Principal

T = TypeVar("T")

_MAX_DEPTH = 32


_BRACKETS = re.compile(r"[\[\]{}]")


def _depth_ok(text: str) -> bool:
    """No deeper than _MAX_DEPTH (brackets inside strings count too: stricter, never laxer). The regex walks
    the text in C; a body of PEM has a handful of brackets."""
    depth = 0
    for match in _BRACKETS.finditer(text):
        if match.group() in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                return False
        else:
            depth -= 1
    return True


async def read_json_object(request: web.Request) -> dict[str, Any]:
    ctype = request.content_type
    if (
        request.body_exists  # not can_read_body: false once an optional body was read to see if it is empty
        and ctype not in ("application/json", "application/octet-stream", "")
        and not ctype.endswith("+json")
    ):
        raise web.HTTPUnsupportedMediaType(text="use Content-Type: application/json")
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the request body is not valid UTF-8") from None
    if not text.strip():
        raise InvalidInputError("the request body is empty; a JSON object is required")
    if not _depth_ok(text):
        raise InvalidInputError(f"the request body nests deeper than {_MAX_DEPTH} levels")
    try:
        body = json.loads(text)
    except ValueError:
        raise InvalidInputError("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidInputError("the request body must be a JSON object")
    return body


def _first_error(messages: Any, path: str = "") -> tuple[str, str]:
    if isinstance(messages, dict):
        key = next(iter(messages))
        sub = f"{path}.{key}" if path else str(key)
        return _first_error(messages[key], sub)
    if isinstance(messages, list) and messages:
        return _first_error(messages[0], path)
    return path, str(messages)


@cache
def _schema(cls: type[Schema]) -> Schema:
    """One instance per schema class: building one copies every declared field (a tenth of a small
    request's CPU), and a marshmallow schema is reusable: `load` keeps no state on it."""
    return cls()


def load(schema: type[Schema], data: Any) -> dict[str, Any]:
    try:
        return _schema(schema).load(data, unknown=EXCLUDE)
    except ValidationError as exc:
        field, message = _first_error(exc.messages)
        if message == "Missing data for required field.":
            raise MissingParameterError(
                f"the parameter must be specified, parameterName:{field}", field=field
            ) from None
        raise InvalidInputError(f"Invalid parameter value, parameterName:{field}. {message}", field=field) from None


_OPERATOR_KEY = re.compile(r"[\[\]$.]")


def load_query(schema: type[Schema], request: web.Request) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key in request.query:
        if _OPERATOR_KEY.search(key):
            # `name[$ne]=`, `a.b=`: query-operator syntax of other frameworks; never a parameter of ours
            raise InvalidInputError(f"Invalid parameter name {key[:64]!r}: parameters are plain names", field="query")
        values = request.query.getall(key)
        if len(values) > 1:
            raise InvalidInputError(f"Invalid parameter value, parameterName:{key}. Give it once", field=key)
        data[key] = values[0]
    return load(schema, data)


async def load_body(request: web.Request, schema: type[Schema], *, optional: bool = False) -> dict[str, Any]:
    """The JSON object body, loaded with `schema`; with `optional`, an empty body counts as `{}`."""
    if optional and not (await request.read()).strip():
        return {}
    return load(schema, await read_json_object(request))


def tenant(request: web.Request) -> tuple[Principal, str]:
    """The principal and the project of an API whose URLs carry none (CCM, Notary, Barbican)."""
    principal = request[PRINCIPAL]
    return principal, project_of(principal, request.headers.get("X-Project-Id"))


_ENTITY_TAG = re.compile(r'^"r(\d{1,18})"$')


def entity_tag(revision: int) -> str:
    """The ETag of a record's revision (strong: a revision names one exact stored state)."""
    return f'"r{revision}"'


def if_match(request: web.Request) -> frozenset[int] | None:
    """The revisions an If-Match header accepts; None when there is none (or `*`). Tags that are not ours
    (or weak ones, which If-Match never matches) accept nothing, so the change is refused as stale."""
    raw = request.headers.get("If-Match")
    if raw is None or raw.strip() == "*":
        return None
    return frozenset(int(m.group(1)) for part in raw.split(",") if (m := _ENTITY_TAG.match(part.strip())))


class Kept(NamedTuple, Generic[T]):
    """A kept query: yarl's parse of its text, and what the route read from it (`QueryMemo.keep`)."""

    query: MultiDictProxy[str]
    values: T


class QueryMemo(Generic[T]):
    """Parsed query strings kept by their raw text, for a route whose clients send the same ones again and again
    (Caddy asks for a server name's certificate with the same query string at every handshake): the next
    request with that text skips yarl's parse, and the route's own reading of it. A kept query is yarl's own
    `request.query` (a read-only MultiDictProxy), so a request reads exactly what it would have parsed; beside it
    the memo keeps the values the route read from that query (`values`: what the route's own pure reading of the
    same text gave, its parameters checked, so the next request with the text reads them as they are).

    `kept` and `query` only read the memo; `keep` adds a request's query and the route's values, which the route
    calls once the request was authenticated and answered, so that only what credentialed clients send is kept.
    At most `size` texts of at most `max_chars` characters each (the memo starts again empty when full)."""

    def __init__(self, size: int, max_chars: int) -> None:
        self.size = size
        self.max_chars = max_chars
        self._kept: dict[str, Kept[T]] = {}

    def kept(self, request: web.Request) -> Kept[T] | None:
        return self._kept.get(request.rel_url.raw_query_string)

    def query(self, request: web.Request) -> MultiDictProxy[str]:
        """The request's query: the kept one for its text, else yarl's parse."""
        kept = self._kept.get(request.rel_url.raw_query_string)
        return request.query if kept is None else kept.query

    def keep(self, request: web.Request, values: T) -> None:
        raw = request.rel_url.raw_query_string
        kept = self._kept
        if raw not in kept and len(raw) <= self.max_chars:
            if len(kept) >= self.size:
                kept.clear()
            kept[raw] = Kept(request.query, values)
