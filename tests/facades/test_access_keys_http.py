"""Access keys over HTTP on both stores: the IAM API (create, list, show, update, delete; admins of the project
only; tenant isolation; IAM's error envelope), and requests signed with a key (SDK-HMAC-SHA256, signed by
huaweicloudsdkcore's own Signer) in every dialect: what verifies, and a table of what is refused, each with the
dialect's code and nothing changed."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

from gatewaycerts.domain.access_keys import AccessKeyStatus
from gatewaycerts.domain.audit import AuditQuery
from gatewaycerts.keyvault import KeyVault, parse_keks
from tests.conftest import app_on
from tests.factories import MovableClock, ec_chain
from tests.sdk_signing import Signed, sign

CREDS = "/v3.0/OS-CREDENTIAL/credentials"
ROOT_CA = {
    "type": "ROOT",
    "key_algorithm": "EC256",
    "distinguished_name": {"common_name": "Signed Root"},
    "validity": {"type": "YEAR", "value": 2},
}
APIC = "/v2/p1/apic/certificates"


@pytest.fixture
async def svc(aiohttp_client, settings, every_store_and_keys, token):
    *four, keys = every_store_and_keys
    clock = MovableClock()
    app = app_on(settings, tuple(four), clock=clock, access_key_store=keys)
    client = await aiohttp_client(app)
    client.clock, client.keys_store, client.audit_store = clock, keys, four[3]
    client.signed_host = f"127.0.0.1:{client.port}"
    client.admin = {"X-Auth-Token": token("p1", "admin", subject="alice")}
    client.token = token
    return client


async def create_key(client, role: str = "editor", headers: dict | None = None, **extra) -> dict:
    resp = await client.post(CREDS, json={"credential": {"role": role, **extra}}, headers=headers or client.admin)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Cache-Control"] == "no-store"
    return (await resp.json())["credential"]


def signed(client, key: dict, method: str, path: str, *, body: dict | None = None, query=None, project=None, when=None):
    raw = None if body is None else json.dumps(body).encode()
    return sign(
        method,
        client.signed_host,
        path,
        ak=key["access"],
        sk=key["secret"],
        when=when or client.clock(),
        query=query,
        body=raw,
        project=project,
    )


async def send(client, s: Signed, **change) -> tuple[int, dict | None]:
    resp = await client.request(
        s.method, change.get("path", s.uri), headers=change.get("headers", s.headers), data=change.get("body", s.body)
    )
    text = await resp.text()
    return resp.status, json.loads(text) if text else None


# -- the IAM API -------------------------------------------------------------------------------------------


async def test_create_list_show_update_delete(svc):
    created = await create_key(svc, "viewer", description="ci pipeline")
    assert set(created) == {"access", "secret", "status", "role", "project_id", "create_time", "description"}
    assert (
        len(created["access"]) == 20 and created["access"].isalnum() and created["access"] == created["access"].upper()
    )
    assert len(created["secret"]) == 40 and created["secret"].isalnum()
    assert created["status"] == "active" and created["role"] == "viewer" and created["project_id"] == "p1"
    assert created["create_time"] == svc.clock().strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    access, secret = created["access"], created["secret"]

    listed = await (await svc.get(CREDS, headers=svc.admin)).json()
    assert listed == {"credentials": [{k: v for k, v in created.items() if k != "secret"}]}
    shown = await (await svc.get(f"{CREDS}/{access}", headers=svc.admin)).json()
    assert shown == {"credential": listed["credentials"][0]}

    resp = await svc.put(f"{CREDS}/{access}", json={"credential": {"status": "inactive"}}, headers=svc.admin)
    assert resp.status == 200
    assert (await resp.json())["credential"]["status"] == "inactive"
    resp = await svc.put(f"{CREDS}/{access}", json={"credential": {"description": "renamed"}}, headers=svc.admin)
    assert (await resp.json())["credential"] | {} == {
        **shown["credential"],
        "status": "inactive",
        "description": "renamed",
    }

    # the secret is stored only as an envelope, and never answered again
    stored = await svc.keys_store.get(access)
    assert secret.encode() not in stored.encrypted_secret
    for path in (CREDS, f"{CREDS}/{access}"):
        assert secret not in await (await svc.get(path, headers=svc.admin)).text()

    assert (await svc.delete(f"{CREDS}/{access}", headers=svc.admin)).status == 204
    resp = await svc.get(f"{CREDS}/{access}", headers=svc.admin)
    assert resp.status == 404
    assert await resp.json() == {
        "error": {"code": 404, "message": "The access key could not be found", "title": "Not Found"}
    }
    assert (await svc.delete(f"{CREDS}/{access}", headers=svc.admin)).status == 404
    # on the trail: who made, changed and deleted it; never the secret
    events = await svc.audit_store.list("p1", AuditQuery(object_id=access), 10)
    assert [e.action for e in reversed(events)] == [
        "iam.credential.create",
        "iam.credential.update",
        "iam.credential.update",
        "iam.credential.delete",
    ]
    assert all(e.actor == "alice" for e in events) and secret not in repr(events)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"credential": {"role": "owner"}}, 400, "parameterName:credential.role"),
        ({"credential": {}}, 400, "parameterName:credential.role"),
        ({}, 400, "parameterName:credential"),
        ({"credential": {"role": "admin", "description": "x" * 256}}, 400, "at most 255"),
        ({"credential": {"role": "admin", "description": "a\nb"}}, 400, "Control characters"),
        ({"credential": {"role": 7}}, 400, "credential.role"),
    ],
    ids=["unknown role", "no role", "no credential", "long description", "control character", "role not a string"],
)
async def test_bad_creates_are_refused_in_iams_envelope_and_store_nothing(svc, body, status, message):
    resp = await svc.post(CREDS, json=body, headers=svc.admin)
    assert resp.status == status
    answer = await resp.json()
    assert answer["error"]["code"] == status and answer["error"]["title"] == "Bad Request"
    assert message in answer["error"]["message"], answer
    assert await svc.keys_store.list("p1") == []


async def test_bad_updates_change_nothing(svc):
    key = await create_key(svc)
    for body in ({"credential": {"status": "paused"}}, {"credential": {}}, {"credential": {"description": "x" * 300}}):
        resp = await svc.put(f"{CREDS}/{key['access']}", json=body, headers=svc.admin)
        assert resp.status == 400, body
    stored = await svc.keys_store.get(key["access"])
    assert stored.status is AccessKeyStatus.ACTIVE and stored.description == "" and stored.revision == 0


async def test_only_admins_of_the_project_manage_its_keys(svc):
    key = await create_key(svc)
    access = key["access"]
    for role in ("viewer", "editor"):
        headers = {"X-Auth-Token": svc.token("p1", role)}
        for method, path, body in (
            ("POST", CREDS, {"credential": {"role": "viewer"}}),
            ("GET", CREDS, None),
            ("GET", f"{CREDS}/{access}", None),
            ("PUT", f"{CREDS}/{access}", {"credential": {"status": "inactive"}}),
            ("DELETE", f"{CREDS}/{access}", None),
        ):
            resp = await svc.request(method, path, json=body, headers=headers)
            assert resp.status == 403, (role, method, path)
            assert (await resp.json())["error"]["title"] == "Forbidden"
    assert [k.access for k in await svc.keys_store.list("p1")] == [access]
    assert (await svc.keys_store.get(access)).status is AccessKeyStatus.ACTIVE
    # no token at all: IAM's 401
    resp = await svc.get(CREDS)
    assert resp.status == 401 and (await resp.json())["error"]["title"] == "Unauthorized"


async def test_an_admin_of_another_project_can_neither_see_nor_touch_its_keys(svc):
    mine = await create_key(svc)
    theirs_headers = {"X-Auth-Token": svc.token("p2", "admin")}
    theirs = await create_key(svc, headers=theirs_headers)
    assert theirs["project_id"] == "p2"
    listed = await (await svc.get(CREDS, headers=theirs_headers)).json()
    assert [c["access"] for c in listed["credentials"]] == [theirs["access"]]
    for method, body in (("GET", None), ("PUT", {"credential": {"status": "inactive"}}), ("DELETE", None)):
        resp = await svc.request(method, f"{CREDS}/{mine['access']}", json=body, headers=theirs_headers)
        fake = await svc.request(method, f"{CREDS}/NOSUCHKEY00000000000", json=body, headers=theirs_headers)
        assert resp.status == fake.status == 404, method
        assert mine["access"] not in await fake.text()
    assert (await svc.keys_store.get(mine["access"])).status is AccessKeyStatus.ACTIVE
    # X-Project-Id names the project of a token that covers several; one it does not cover is refused
    resp = await svc.get(CREDS, headers={**theirs_headers, "X-Project-Id": "p1"})
    assert resp.status == 403


async def test_a_token_covering_several_projects_names_one(svc, settings):
    from gatewaycerts.auth.tokens import load_or_create_dev_key, mint_token

    multi = mint_token(
        load_or_create_dev_key(settings.state_dir), subject="ops", projects=["p1", "p2"], roles=["admin"], ttl=300
    )
    resp = await svc.post(CREDS, json={"credential": {"role": "viewer"}}, headers={"X-Auth-Token": multi})
    assert resp.status == 403 and "X-Project-Id" in (await resp.json())["error"]["message"]
    key = await create_key(svc, "viewer", headers={"X-Auth-Token": multi, "X-Project-Id": "p2"})
    assert key["project_id"] == "p2"


# -- signed requests ---------------------------------------------------------------------------------------


def upload(name: str) -> dict:
    chain = ec_chain()
    return {"name": name, "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()}


async def test_a_signed_request_acts_with_the_keys_project_and_role_in_every_dialect(svc):
    editor = await create_key(svc, "editor")
    status, body = await send(svc, signed(svc, editor, "POST", APIC, body=upload("signed_cert"), project="p1"))
    assert status == 200, body
    cert_id = body["id"]
    status, body = await send(svc, signed(svc, editor, "GET", APIC, query=[("name", "signed"), ("limit", 5)]))
    assert status == 200 and [c["id"] for c in body["certs"]] == [cert_id]
    for path in ("/v1/private-certificate-authorities", "/api/v1/certificate_requests", "/v1/orders"):
        status, body = await send(svc, signed(svc, editor, "GET", path, project="p1"))
        assert status == 200, (path, body)
    # the trail names the key
    events = await svc.audit_store.list("p1", AuditQuery(object_id=cert_id), 10)
    assert [e.actor for e in events] == [f"ak:{editor['access']}"] and events[0].roles == ("editor",)
    # an admin key manages keys
    admin = await create_key(svc, "admin")
    status, body = await send(svc, signed(svc, admin, "POST", CREDS, body={"credential": {"role": "viewer"}}))
    assert status == 201 and body["credential"]["project_id"] == "p1"


async def test_a_key_disabled_then_enabled_again_works_again(svc):
    key = await create_key(svc, "viewer")
    assert (await send(svc, signed(svc, key, "GET", APIC)))[0] == 200
    await svc.put(f"{CREDS}/{key['access']}", json={"credential": {"status": "inactive"}}, headers=svc.admin)
    assert (await send(svc, signed(svc, key, "GET", APIC)))[0] == 401  # no cache: the very next request
    await svc.put(f"{CREDS}/{key['access']}", json={"credential": {"status": "active"}}, headers=svc.admin)
    assert (await send(svc, signed(svc, key, "GET", APIC)))[0] == 200


async def snapshot(svc) -> tuple:
    certs = await (await svc.get(APIC, headers=svc.admin)).text()
    cas = await (await svc.get("/v1/private-certificate-authorities", headers=svc.admin)).text()
    keys = [(k.access, k.status, k.revision) for k in await svc.keys_store.list("p1")]
    return certs, cas, keys


async def test_refused_signed_requests_each_get_their_dialects_code_and_change_nothing(svc, caplog):
    caplog.set_level(logging.DEBUG)
    editor = await create_key(svc, "editor")
    viewer = await create_key(svc, "viewer")
    disabled = await create_key(svc, "admin")
    deleted = await create_key(svc, "admin")
    other = await create_key(svc, "admin", headers={"X-Auth-Token": svc.token("p2", "admin")})
    await svc.put(f"{CREDS}/{disabled['access']}", json={"credential": {"status": "inactive"}}, headers=svc.admin)
    await svc.delete(f"{CREDS}/{deleted['access']}", headers=svc.admin)
    target = (await (await svc.post(APIC, json=upload("target"), headers=svc.admin)).json())["id"]
    victim = (await (await svc.post(APIC, json=upload("victim"), headers=svc.admin)).json())["id"]
    now = svc.clock()

    def create(key=editor, **kw) -> Signed:
        return signed(svc, key, "POST", APIC, body=upload("forged"), **kw)

    def tampered_header(s: Signed) -> dict:
        return {**s.headers, "User-Agent": "something else"}

    cases = {
        # id: (signed request, what is changed on the way, status, dialect code)
        "401/APIG.1002 changed body": (create(), {"body": json.dumps(upload("other")).encode()}, 401, "APIG.1002"),
        "401/APIG.1002 changed signed header": (create(), "header", 401, "APIG.1002"),
        "401/APIG.1002 changed query": (
            signed(svc, editor, "GET", APIC, query=[("limit", 1)]),
            {"path": f"{APIC}?limit=2"},
            401,
            "APIG.1002",
        ),
        "401/APIG.1002 changed path": (
            signed(svc, editor, "DELETE", f"{APIC}/{target}"),
            {"path": f"{APIC}/{victim}"},
            401,
            "APIG.1002",
        ),
        "401/APIG.1002 date 16 minutes ago": (create(when=now - dt.timedelta(minutes=16)), {}, 401, "APIG.1002"),
        "401/APIG.1002 date 16 minutes ahead": (create(when=now + dt.timedelta(minutes=16)), {}, 401, "APIG.1002"),
        "401/APIG.1002 inactive key": (create(disabled), {}, 401, "APIG.1002"),
        "401/APIG.1002 deleted key": (create(deleted), {}, 401, "APIG.1002"),
        "401/APIG.1002 unknown key": (
            create({"access": "NOSUCHKEY00000000000", "secret": "x" * 40}),
            {},
            401,
            "APIG.1002",
        ),
        "403/APIG.1005 another project's key on p1's URL": (create(other), {}, 403, "APIG.1005"),
        "403/APIG.1005 X-Project-Id of another project": (create(project="p2"), {}, 403, "APIG.1005"),
        "403/APIG.1005 viewer key on a changing route": (create(viewer), {}, 403, "APIG.1005"),
        "403/APIG.1005 viewer key deleting": (signed(svc, viewer, "DELETE", f"{APIC}/{target}"), {}, 403, "APIG.1005"),
        "401/PCA.1001 CCM: changed body": (
            signed(svc, editor, "POST", "/v1/private-certificate-authorities", body=ROOT_CA),
            {"body": json.dumps({**ROOT_CA, "key_algorithm": "EC384"}).encode()},
            401,
            "PCA.1001",
        ),
        "401/PCA.1001 CCM: inactive key": (
            signed(svc, disabled, "GET", "/v1/private-certificates"),
            {},
            401,
            "PCA.1001",
        ),
        "403/PCA.1003 CCM: viewer key creating a CA": (
            signed(svc, viewer, "POST", "/v1/private-certificate-authorities", body=ROOT_CA),
            {},
            403,
            "PCA.1003",
        ),
    }
    before = await snapshot(svc)
    for case, (request, change, status, code) in cases.items():
        if change == "header":
            change = {"headers": tampered_header(request)}
        got, body = await send(svc, request, **change)
        assert got == status, (case, body)
        assert body["error_code"] == code, (case, body)
        assert editor["secret"] not in json.dumps(body), case
        assert await snapshot(svc) == before, case
    # the other dialects answer a bad signature in their own envelopes
    for path, check in (
        ("/api/v1/certificate_requests", lambda b: set(b) == {"error"}),
        ("/v1/orders", lambda b: b["code"] == 401 and b["title"] == "Unauthorized"),
        ("/v3/p1/traces", lambda b: b["error_code"] == "CTS.0002"),
        (CREDS, lambda b: b["error"]["code"] == 401 and b["error"]["title"] == "Unauthorized"),
    ):
        got, body = await send(svc, signed(svc, disabled, "GET", path))
        assert got == 401 and check(body), (path, body)
    assert await snapshot(svc) == before
    # nothing logged carries a secret or a signature
    assert any(" 401 " in r.getMessage() for r in caplog.records)  # the refusals were logged (access log)
    for key in (editor, viewer, disabled, deleted, other):
        assert key["secret"] not in caplog.text
    for request, *_ in cases.values():
        assert request.headers["Authorization"].rsplit("=", 1)[1] not in caplog.text


async def test_the_secret_is_kept_under_the_kek_bound_to_its_key(svc, settings):
    key = await create_key(svc)
    stored = await svc.keys_store.get(key["access"])
    assert key["secret"].encode() not in stored.encrypted_secret
    vault = KeyVault(parse_keks((settings.state_dir / "dev-kek").read_text()))
    context = f"access-key:p1:{key['access']}"
    assert vault.decrypt(stored.encrypted_secret, context=context) == key["secret"].encode()
    with pytest.raises(Exception, match="does not decrypt"):
        vault.decrypt(stored.encrypted_secret, context=f"access-key:p2:{key['access']}")
