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
        ("GET", "/v2/{project_id}/apic/certificate-expiry"),  # ours: the console's overview
        ("POST", "/v2/{project_id}/apic/instances/{instance_id}/gateway-keys"),
        ("GET", "/v2/{project_id}/apic/instances/{instance_id}/gateway-keys"),
        ("DELETE", "/v2/{project_id}/apic/instances/{instance_id}/gateway-keys/{key_id}"),
        *{  # ours: the ACME client's accounts and dns-01 update configurations
            (method, f"/v2/{{project_id}}/apic/{kind}{tail}")
            for kind, ident in (("acme-accounts", "account_id"), ("dns-update-configs", "config_id"))
            for method, tail in (("POST", ""), ("GET", ""), ("GET", f"/{{{ident}}}"), ("DELETE", f"/{{{ident}}}"))
        },
        # ours: managed certificates (docs/renewal.md)
        ("POST", "/v2/{project_id}/apic/managed-certificates"),
        ("GET", "/v2/{project_id}/apic/managed-certificates"),
        ("GET", "/v2/{project_id}/apic/managed-certificates/{certificate_id}"),
        ("GET", base + "/{certificate_id}/renewal"),
        ("POST", base + "/{certificate_id}/renewal/actions/renew"),
        ("GET", base + "/{certificate_id}/revisions"),
        ("POST", "/v2/{project_id}/apic/webhooks"),
        ("GET", "/v2/{project_id}/apic/webhooks"),
        ("GET", "/v2/{project_id}/apic/webhooks/{webhook_id}"),
        ("DELETE", "/v2/{project_id}/apic/webhooks/{webhook_id}"),
        ("POST", "/v2/{project_id}/apic/webhooks/{webhook_id}/actions/test"),
        ("GET", "/v2/{project_id}/apic/webhooks/{webhook_id}/deliveries"),
    }
    assert "produces" not in json.dumps(doc)


def test_spec_covers_every_gateway_route(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["gateway"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/gateway/v1/")
    }
    base = "/gateway/v1/{project_id}/instances/{instance_id}"
    names = ("caddy", "bundle", "traefik", "acme-challenge/{token}")
    assert documented == served == {("GET", f"{base}/{name}") for name in names}


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


def test_spec_covers_every_iam_route_and_none_is_public(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["iam"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/v3.0/")
    }
    base = "/v3.0/OS-CREDENTIAL/credentials"
    expected = {
        ("POST", base),
        ("GET", base),
        ("GET", base + "/{access}"),
        ("PUT", base + "/{access}"),
        ("DELETE", base + "/{access}"),
    }
    assert served == documented == expected
    assert not [op for item in doc["paths"].values() for op in item.values() if op.get("security") == []]
    assert {"SdkHmacSha256": []} in doc["security"]  # every document: every dialect takes a signature


async def test_audit_swagger_page_is_served(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(Settings(state_dir=tmp_path)))
    resp = await client.get("/docs", params={"facade": "audit"})
    assert resp.status == 200 and "/openapi/audit.json" in await resp.text()
    doc = await (await client.get("/openapi/audit.json")).json()
    assert "/v3/{project_id}/traces" in doc["paths"]


def test_documented_error_statuses_include_what_the_routes_answer(tmp_path):
    """Every Barbican and Notary operation documents 503 (the store is down); every one that reads a JSON body
    documents 413 and 415 with descriptions of their own, not the 400's."""
    docs = create_app(Settings(state_dir=tmp_path))[OPENAPI_DOCS]
    for name in ("barbican", "notary"):
        for path, item in docs[name]["paths"].items():
            for method, op in item.items():
                responses = op["responses"]
                assert "503" in responses, (name, method, path)
                if "requestBody" in op:
                    assert {"413", "415"} <= set(responses), (name, method, path)
                    described = {responses[code]["description"] for code in ("400", "413", "415") if code in responses}
                    assert len(described) == len({"400", "413", "415"} & set(responses)), (name, method, path)


async def test_notary_body_routes_answer_the_documented_415_and_413(aiohttp_client, settings, auth):
    app = create_app(settings)
    doc = app[OPENAPI_DOCS]["notary"]
    client = await aiohttp_client(app)
    some_id = "00000000-0000-7000-8000-000000000000"
    body_routes = [(m, p) for p, item in doc["paths"].items() for m, op in item.items() if "requestBody" in op]
    assert len(body_routes) == 8
    for method, path in body_routes:
        url = path.replace("{id}", some_id)
        plain = await client.request(method, url, data="x", headers={**auth(), "Content-Type": "text/plain"})
        assert plain.status == 415 and set(await plain.json()) == {"error"}, (method, path, await plain.text())
        huge = await client.request(
            method,
            url,
            data=b"{" + b" " * settings.max_body_bytes + b"}",
            headers={**auth(), "Content-Type": "application/json"},
        )
        assert huge.status == 413 and set(await huge.json()) == {"error"}, (method, path)


def test_spec_covers_every_pki_route_all_public_with_binary_bodies(tmp_path):
    app = create_app(Settings(state_dir=tmp_path))
    doc = app[OPENAPI_DOCS]["pki"]
    documented = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    served = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None and route.resource.canonical.startswith("/pki/")
    }
    assert (
        documented
        == served
        == {
            ("POST", "/pki/ocsp/{ca_id}"),
            ("GET", "/pki/ocsp/{ca_id}"),
            ("GET", "/pki/ocsp/{ca_id}/{request}"),
            ("GET", "/pki/ca/{ca_id}.cer"),
            ("HEAD", "/pki/ca/{ca_id}.cer"),
        }
    )
    assert all(op["security"] == [] for item in doc["paths"].values() for op in item.values())
    post = doc["paths"]["/pki/ocsp/{ca_id}"]["post"]
    binary = {"type": "string", "format": "binary"}
    assert post["requestBody"]["content"]["application/ocsp-request"]["schema"]["format"] == "binary"
    for path, method, media in (
        ("/pki/ocsp/{ca_id}", "post", "application/ocsp-response"),
        ("/pki/ocsp/{ca_id}/{request}", "get", "application/ocsp-response"),
        ("/pki/ca/{ca_id}.cer", "get", "application/pkix-cert"),
    ):
        assert doc["paths"][path][method]["responses"]["200"]["content"][media]["schema"] == binary
    assert "produces" not in json.dumps(doc)
