"""The committed OpenAPI documents under schemas/ are what the service generates, and are valid."""

from __future__ import annotations

import json
from pathlib import Path

from openapi_spec_validator import validate

from gatewaycerts.app import create_app
from gatewaycerts.appkeys import OPENAPI_DOCS
from gatewaycerts.settings import Settings

SCHEMAS = Path(__file__).parents[2] / "schemas"


def test_committed_spec_matches_generated(tmp_path):
    docs = create_app(Settings(state_dir=tmp_path))[OPENAPI_DOCS]
    for name, doc in docs.items():
        committed = json.loads((SCHEMAS / f"openapi-{name}.json").read_text())
        assert committed == json.loads(json.dumps(doc)), f"schemas/openapi-{name}.json drifted: run make openapi"
        validate(committed)


def test_spec_covers_every_apic_route(tmp_path):
    doc = create_app(Settings(state_dir=tmp_path))[OPENAPI_DOCS]["apic"]
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    base = "/v2/{project_id}/apic/certificates"
    assert ops == {
        ("POST", base),
        ("GET", base),
        ("GET", base + "/{certificate_id}"),
        ("PUT", base + "/{certificate_id}"),
        ("DELETE", base + "/{certificate_id}"),
        ("POST", base + "/{certificate_id}/domains/attach"),
        ("POST", base + "/{certificate_id}/domains/detach"),
        ("GET", base + "/{certificate_id}/attached-domains"),
    }
    assert "produces" not in json.dumps(doc)


async def test_docs_served(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(Settings(state_dir=tmp_path)))
    resp = await client.get("/openapi.json")
    assert resp.status == 200 and (await resp.json())["openapi"].startswith("3.")
    resp = await client.get("/docs")
    assert resp.status == 200 and "/openapi/apic.json" in await resp.text()
    assert (await client.get("/docs/static/swagger-ui-bundle.js")).status == 200
    assert (await client.get("/openapi/nope.json")).status == 404


def test_spec_covers_every_ccm_route_and_only_the_crl_is_public(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["ccm"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v1/private-")
    }
    assert served and documented == served
    public = {p for p, item in doc["paths"].items() for op in item.values() if op.get("security") == []}
    assert public == {"/v1/private-certificate-authorities/{ca_id}/crl"}


def test_spec_covers_every_notary_route_and_only_the_crl_is_public(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["notary"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
    }
    assert len(served) == 18 and documented == served
    public = {p for p, item in doc["paths"].items() for op in item.values() if op.get("security") == []}
    assert public == {"/api/v1/certificate_authorities/{id}/crl"}


def test_spec_covers_every_barbican_route_and_none_is_public(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["barbican"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    roots = ("/v1/orders", "/v1/secrets", "/v1/containers", "/v1/cas")
    served = {
        (route.method, route.resource.canonical.rstrip("/"))  # `<collection>/` aliases the collection
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith(roots)
    }
    assert len(served) == 15 and documented == served
    assert not [op for item in doc["paths"].values() for op in item.values() if op.get("security") == []]


def test_spec_covers_the_audit_route_and_it_is_not_public(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["audit"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v3/")
    }
    assert served == documented == {("GET", "/v3/{project_id}/traces")}
    assert not [op for item in doc["paths"].values() for op in item.values() if op.get("security") == []]


async def test_audit_swagger_page_is_served(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(Settings(state_dir=tmp_path)))
    resp = await client.get("/docs", params={"facade": "audit"})
    assert resp.status == 200 and "/openapi/audit.json" in await resp.text()
    doc = await (await client.get("/openapi/audit.json")).json()
    assert "/v3/{project_id}/traces" in doc["paths"]
