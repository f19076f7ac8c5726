"""The composition root wires MongoDB from GATEWAYCERTS_DATABASE_URL (no store injected)."""

from __future__ import annotations

from pymongo import AsyncMongoClient

from gatewaycerts.app import create_app
from gatewaycerts.settings import Settings
from tests.factories import rsa_chain


async def test_service_on_mongodb_url(aiohttp_client, tmp_path, mongodb_uri, mongo_database, token):
    url = mongodb_uri.rstrip("/") + "/" + mongo_database
    settings = Settings.from_env({"GATEWAYCERTS_DATABASE_URL": url, "GATEWAYCERTS_STATE_DIR": str(tmp_path / "state")})
    client = await aiohttp_client(create_app(settings))
    try:
        assert (await client.get("/readyz")).status == 200
        chain = rsa_chain()
        resp = await client.post(
            "/v2/p1/apic/certificates",
            json={"name": "mongo_cert", "cert_content": chain.bundle(), "private_key": chain.leaf.key_pem()},
            headers={"X-Auth-Token": token()},
        )
        assert resp.status == 200, await resp.text()
        mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri)
        try:
            names = await mongo[mongo_database].list_collection_names()
            doc = await mongo[mongo_database]["certificates"].find_one({"name": "mongo_cert"})
            assert "certificates" in names and doc["project_id"] == "p1"
            assert b"PRIVATE KEY" not in doc["private_key"]
            # the audit trail is on the same database
            event = await mongo[mongo_database]["audit_events"].find_one({"object_id": doc["_id"]})
            assert event["action"] == "apic.certificate.create" and event["project_id"] == "p1"
        finally:
            await mongo.drop_database(mongo_database)
            await mongo.close()
    finally:
        await client.close()
