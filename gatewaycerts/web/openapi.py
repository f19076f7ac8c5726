"""Generating each facade's OpenAPI 3 document with aiohttp-apigami, and serving it with Swagger UI."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from string import Template
from typing import Any

from aiohttp import web
from aiohttp_apigami import AiohttpApiSpec, OpenApiVersion
from aiohttp_apigami.swagger_ui import SWAGGER_UI_STATIC_FILES

from gatewaycerts.appkeys import OPENAPI_DOCS
from gatewaycerts.web.errors import json_response

SECURITY_SCHEMES = {
    "XAuthToken": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"},
    "BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    # An access key's signature (Huawei's SDKs with BasicCredentials(ak, sk, project_id)); docs/api/iam.md
    "SdkHmacSha256": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<h1;h2;...>, Signature=<hex HMAC-SHA256>, "
        "with the signing time in X-Sdk-Date (YYYYMMDDTHHMMSSZ, within 15 minutes); see docs/api/iam.md",
    },
}


def _strip_swagger2_keys(node: Any) -> Any:
    # apigami's @docs adds Swagger-2 `produces`/`consumes`, which OpenAPI 3 forbids.
    if isinstance(node, dict):
        return {k: _strip_swagger2_keys(v) for k, v in node.items() if k not in ("produces", "consumes")}
    if isinstance(node, list):
        return [_strip_swagger2_keys(v) for v in node]
    return node


def build_openapi(*apps: web.Application, title: str, version: str, description: str) -> dict[str, Any]:
    """The OpenAPI document of every documented route of `apps` (mounted, routes already added)."""
    spec = AiohttpApiSpec(
        url="",
        title=title,
        version=version,
        openapi_version=OpenApiVersion.V303,
        info={"description": description},
        generate_spec=True,
    )
    for app in apps:
        # apigami registers on startup otherwise (and stores a copy of the document on the app, which may be
        # running by the time a document is first asked for); only the routes are read here
        spec._route_processor.register_routes(app)
    document = _strip_swagger2_keys(spec.swagger_dict())
    components = document.setdefault("components", {})
    components["securitySchemes"] = SECURITY_SCHEMES
    document["security"] = [{"XAuthToken": []}, {"BearerAuth": []}, {"SdkHmacSha256": []}]
    return document


class OpenApiDocs(Mapping[str, dict[str, Any]]):
    """Each facade's OpenAPI document, built from its mounted apps the first time it is asked for and kept.

    Building the seven documents is most of what `create_app` costs (apispec resolves every marshmallow schema),
    and only /openapi*.json, /docs and `gatewaycerts openapi` read them: a service (or a test's app) that is
    never asked for its documents never builds them."""

    def __init__(self, builders: dict[str, Callable[[], dict[str, Any]]]) -> None:
        self._builders = builders
        self._built: dict[str, dict[str, Any]] = {}

    def __getitem__(self, name: str) -> dict[str, Any]:
        if name not in self._built:
            self._built[name] = self._builders[name]()  # KeyError for a facade that has no document
        return self._built[name]

    def __contains__(self, name: object) -> bool:
        return name in self._builders

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


async def openapi_document(request: web.Request) -> web.Response:
    docs = request.app[OPENAPI_DOCS]
    name = request.match_info.get("facade", "apic")
    if name not in docs:
        raise web.HTTPNotFound()
    return json_response(docs[name])


async def swagger_ui(request: web.Request) -> web.Response:
    page = (SWAGGER_UI_STATIC_FILES / "index.html").read_text()
    name = request.query.get("facade", "apic")
    if name not in request.app[OPENAPI_DOCS]:
        raise web.HTTPNotFound()
    html = Template(page).substitute(path=f"/openapi/{name}.json", static="/docs/static", layout="StandaloneLayout")
    return web.Response(text=html, content_type="text/html")


def add_docs_routes(app: web.Application) -> None:
    app.router.add_get("/openapi.json", openapi_document)
    app.router.add_get("/openapi/{facade}.json", openapi_document)
    app.router.add_get("/docs", swagger_ui)
    app.router.add_static("/docs/static", SWAGGER_UI_STATIC_FILES)
