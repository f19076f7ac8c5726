"""MongoPcaStore: private CAs, the certificates they issued and the serials they used (one collection each)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace as dc_replace
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.errors import DuplicateKeyError

from gatewaycerts.domain.audit import AuditEvent
from gatewaycerts.domain.envelopes import EnvelopeKind
from gatewaycerts.domain.errors import (
    AuthorityNotFoundError,
    CertificateRequestNotFoundError,
    ConflictError,
    DuplicateRequestError,
    PrivateCertificateNotFoundError,
)
from gatewaycerts.domain.models import Page
from gatewaycerts.domain.pca import Authority, IssuedCertificate, PcaQuery, RevokedSerial, SerialStatus
from gatewaycerts.domain.requests import CertificateRequest, RequestStatus
from gatewaycerts.store.mongo.claims import CLAIM_TIMEOUT, RevisionClaims, guard, replace_claimed
from gatewaycerts.store.mongo.envelopes import EnvelopeCollection, MongoEnvelopes
from gatewaycerts.store.mongo.expiry import count_expiring
from gatewaycerts.store.pca_codec import (
    AUTHORITY_HEAVY,
    CERTIFICATE_HEAVY,
    authority_from_doc,
    authority_to_doc,
    certificate_from_doc,
    certificate_to_doc,
    duplicate_request,
    request_from_doc,
    request_to_doc,
    revoked_from_doc,
    serial_status_from_docs,
    sort_field,
    status_clause,
)


def _query(project_id: str, query: PcaQuery, now: datetime, *, authority: bool) -> dict[str, Any]:
    q: dict[str, Any] = {"project_id": project_id}
    if not authority:
        q["delete_time"] = None  # deleted certificates stay (hidden): their serials remain reserved and listed
    if query.name_contains:
        q["common_name"] = {"$regex": re.escape(query.name_contains), "$options": "i"}
    if authority and query.type:
        q["type"] = query.type
    clause = status_clause(query.status, authority=authority)
    if clause is not None:
        q["status"] = {"$in": list(clause.stored)}
        if clause.expired is not None:
            q["not_after"] = {"$lt": now} if clause.expired else {"$gte": now}
    return q


class MongoPcaStore(MongoEnvelopes):
    def __init__(self, client: AsyncMongoClient, database: str, *, owns_client: bool = False) -> None:
        db = client[database]
        self._client = client
        self._owns_client = owns_client
        self._authorities = db["pca_authorities"]
        self._certificates = db["pca_certificates"]
        self._serials = db["pca_serials"]
        self._requests = db["pca_requests"]
        # `_id` = "<project>:<CSR fingerprint>" while a request for that CSR is Outstanding: a unique insert is
        # the one atomic check every MongoDB-compatible server offers (FerretDB v1 has no partial indexes).
        self._request_keys = db["pca_request_keys"]
        self._claims = RevisionClaims(db["pca_revisions"])
        # Deleted certificates keep their keys (hidden, not gone): rotation re-wraps them too.
        self._envelope_collections = (
            EnvelopeCollection(EnvelopeKind.AUTHORITY, self._authorities, "encrypted_key", self._claims),
            EnvelopeCollection(EnvelopeKind.ISSUED_CERTIFICATE, self._certificates, "encrypted_key", self._claims),
        )

    async def ensure_schema(self) -> None:
        for coll in (self._authorities, self._certificates):
            await guard(
                coll.create_index(
                    [("project_id", ASCENDING), ("create_time", DESCENDING), ("_id", DESCENDING)],
                    name=f"{coll.name}_recent",
                )
            )
            await guard(
                coll.create_index([("issuer_id", ASCENDING), ("status", ASCENDING)], name=f"{coll.name}_issuer")
            )
        await guard(self._certificates.create_index([("not_after", ASCENDING)], name="pca_certificates_expiry"))
        recent = [("create_time", DESCENDING), ("_id", DESCENDING)]
        await guard(self._requests.create_index([("project_id", ASCENDING), *recent], name="pca_requests_recent"))
        await guard(
            self._requests.create_index(
                [("project_id", ASCENDING), ("status", ASCENDING), *recent], name="pca_requests_status"
            )
        )
        await guard(
            self._requests.create_index([("issuer_id", ASCENDING), ("status", ASCENDING)], name="pca_requests_issuer")
        )
        await guard(self._requests.create_index([("not_after", ASCENDING)], name="pca_requests_expiry"))
        for coll in (self._authorities, self._certificates, self._requests):  # OCSP looks serials up
            await guard(
                coll.create_index([("issuer_id", ASCENDING), ("serial_number", ASCENDING)], name=f"{coll.name}_serial")
            )
        for spec in self._envelope_collections:
            await spec.ensure_index()

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()

    async def reserve_serial(self, issuer_key: str, serial_number: str) -> None:
        try:
            await guard(self._serials.insert_one({"_id": f"{issuer_key}:{serial_number}"}))
        except DuplicateKeyError:
            raise ConflictError("the serial number is in use by this CA already") from None

    async def _insert(self, coll: Any, doc: dict[str, Any]) -> None:
        try:
            await guard(coll.insert_one(doc))
        except DuplicateKeyError:
            raise ConflictError("a record with this id exists already") from None

    async def _list(
        self,
        coll: Any,
        heavy: tuple[str, ...],
        project_id: str,
        query: PcaQuery,
        now: datetime,
        offset: int,
        limit: int,
        *,
        authority: bool,
    ) -> tuple[list[dict[str, Any]], int]:
        q = _query(project_id, query, now, authority=authority)
        direction = DESCENDING if query.descending else ASCENDING
        total = await guard(coll.count_documents(q))
        cursor = (
            coll.find(q, {f: 0 for f in heavy})
            .sort([(sort_field(query, authority=authority), direction), ("_id", direction)])
            .skip(offset)
            .limit(limit)
        )
        return await guard(cursor.to_list(length=limit)), total

    # -- authorities ------------------------------------------------------------------------------

    async def insert_authority(self, ca: Authority) -> None:
        await self._insert(self._authorities, authority_to_doc(ca))

    async def get_authority(self, project_id: str | None, ca_id: str) -> Authority | None:
        q: dict[str, Any] = {"_id": ca_id} if project_id is None else {"_id": ca_id, "project_id": project_id}
        doc = await guard(self._authorities.find_one(q))
        return None if doc is None else authority_from_doc(doc)

    async def list_authorities(
        self, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int
    ) -> Page[Authority]:
        docs, total = await self._list(
            self._authorities, AUTHORITY_HEAVY, project_id, query, now, offset, limit, authority=True
        )
        return Page(items=tuple(authority_from_doc(d) for d in docs), total=total)

    async def replace_authority(self, ca: Authority, *, expected_revision: int) -> Authority:
        stored = dc_replace(ca, revision=expected_revision + 1)
        await replace_claimed(
            self._authorities,
            self._claims,
            authority_to_doc(stored),
            expected_revision,
            AuthorityNotFoundError("the CA does not exist"),
        )
        return stored

    # -- issued certificates ----------------------------------------------------------------------

    async def insert_certificate(self, cert: IssuedCertificate) -> None:
        await self._insert(self._certificates, certificate_to_doc(cert))

    joins_audit = False  # no transactions (FerretDB v1): the service writes its audit event after the change

    async def insert_certificate_reserving_serial(
        self, issuer_key: str, cert: IssuedCertificate, *, audit: AuditEvent | None = None
    ) -> bool:
        if audit is not None:
            raise TypeError("this store cannot write an audit event with its change (joins_audit is False)")
        # Two inserts in this order (FerretDB v1 has no transactions): the serial's unique _id decides first.
        try:
            await guard(self._serials.insert_one({"_id": f"{issuer_key}:{cert.serial_number}"}))
        except DuplicateKeyError:
            return False
        await self._insert(self._certificates, certificate_to_doc(cert))
        return True

    async def get_certificate(self, project_id: str, cert_id: str) -> IssuedCertificate | None:
        doc = await guard(self._certificates.find_one({"_id": cert_id, "project_id": project_id, "delete_time": None}))
        return None if doc is None else certificate_from_doc(doc)

    async def list_certificates(
        self, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int
    ) -> Page[IssuedCertificate]:
        docs, total = await self._list(
            self._certificates, CERTIFICATE_HEAVY, project_id, query, now, offset, limit, authority=False
        )
        return Page(items=tuple(certificate_from_doc(d) for d in docs), total=total)

    async def replace_certificate(self, cert: IssuedCertificate, *, expected_revision: int) -> IssuedCertificate:
        stored = dc_replace(cert, revision=expected_revision + 1)
        await replace_claimed(
            self._certificates,
            self._claims,
            certificate_to_doc(stored),
            expected_revision,
            PrivateCertificateNotFoundError("the private certificate does not exist"),
        )
        return stored

    async def revoked_serials(self, issuer_id: str) -> list[RevokedSerial]:
        q = {"issuer_id": issuer_id, "status": "REVOKED"}
        fields = {"serial_number": 1, "revoked_at": 1, "revocation_reason": 1}
        out: list[RevokedSerial] = []
        for coll in (self._certificates, self._authorities):
            docs = await guard(coll.find(q, fields).to_list(length=None))
            out.extend(revoked_from_doc(d) for d in docs)
        q = {"issuer_id": issuer_id, "status": RequestStatus.REVOKED.value}
        docs = await guard(self._requests.find(q, fields).to_list(length=None))
        out.extend(revoked_from_doc(d) for d in docs)
        return out

    async def serial_status(self, issuer_id: str, serial_number: int) -> SerialStatus | None:
        q = {"issuer_id": issuer_id, "serial_number": str(serial_number)}
        fields = {"serial_number": 1, "status": 1, "revoked_at": 1, "revocation_reason": 1}
        # The issued certificates first (one index point read): a serial found there is in no other collection
        # (serials are reserved per issuer), so the other two are read only for a serial not there.
        docs: list[dict[str, Any]] = await guard(self._certificates.find(q, fields).to_list(length=None))
        if not docs:
            for coll in (self._authorities, self._requests):
                docs.extend(await guard(coll.find(q, fields).to_list(length=None)))
        return serial_status_from_docs(serial_number, docs)

    def change_stamp(self) -> None:
        """MongoDB offers no cheap "nothing changed" (a change stream is a cursor per replica): read every time."""
        return None

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        # Only certificates a relying party may still accept: issued, not revoked, not deleted.
        return await count_expiring(self._certificates, {"status": "ISSUED", "delete_time": None}, boundaries)

    # -- certificate requests ---------------------------------------------------------------------

    @staticmethod
    def _holds_key(req: CertificateRequest) -> bool:
        return req.status is RequestStatus.OUTSTANDING and req.delete_time is None

    async def _take_key(self, req: CertificateRequest) -> bool:
        """Hold the project's key for this CSR; True when newly taken (False: this request held it already).

        A key whose holder is no longer Outstanding is taken over; so is one whose holder was never written
        (a crash between the two inserts), once it is older than a claim. A fresh key without its request is an
        identical submission in flight: a duplicate.
        """
        key = f"{req.project_id}:{req.csr_fingerprint}"
        for _ in range(3):
            try:
                await guard(self._request_keys.insert_one({"_id": key, "request_id": req.id, "at": datetime.now(UTC)}))
                return True
            except DuplicateKeyError:
                holder = await guard(self._request_keys.find_one({"_id": key}))
            if holder is None:
                continue
            if holder["request_id"] == req.id:
                return False
            other = await guard(self._requests.find_one({"_id": holder["request_id"]}, {"status": 1, "delete_time": 1}))
            if other is None:
                at = holder.get("at")
                if at is None or _aware(at) > datetime.now(UTC) - CLAIM_TIMEOUT:
                    raise duplicate_request()
            elif other["status"] == RequestStatus.OUTSTANDING.value and other.get("delete_time") is None:
                raise duplicate_request()
            await guard(self._request_keys.delete_one({"_id": key, "request_id": holder["request_id"]}))
        raise ConflictError("the CSR is being submitted concurrently; retry")

    async def _drop_key(self, req: CertificateRequest) -> None:
        key = f"{req.project_id}:{req.csr_fingerprint}"
        await guard(self._request_keys.delete_one({"_id": key, "request_id": req.id}))

    async def insert_request(self, req: CertificateRequest) -> None:
        taken = self._holds_key(req) and await self._take_key(req)
        try:
            await self._insert(self._requests, request_to_doc(req))
        except Exception:
            if taken:
                await self._drop_key(req)
            raise

    async def get_request(self, project_id: str, request_id: str) -> CertificateRequest | None:
        doc = await guard(self._requests.find_one({"_id": request_id, "project_id": project_id, "delete_time": None}))
        return None if doc is None else request_from_doc(doc)

    async def list_requests(
        self, project_id: str, status: str | None, offset: int, limit: int
    ) -> Page[CertificateRequest]:
        q: dict[str, Any] = {"project_id": project_id, "delete_time": None}
        if status:
            q["status"] = status
        total = await guard(self._requests.count_documents(q))
        cursor = (
            self._requests.find(q).sort([("create_time", DESCENDING), ("_id", DESCENDING)]).skip(offset).limit(limit)
        )
        docs = await guard(cursor.to_list(length=limit))
        return Page(items=tuple(request_from_doc(d) for d in docs), total=total)

    async def replace_request(self, req: CertificateRequest, *, expected_revision: int) -> CertificateRequest:
        stored = dc_replace(req, revision=expected_revision + 1)
        missing = CertificateRequestNotFoundError("the certificate request does not exist")
        try:
            taken = self._holds_key(stored) and await self._take_key(stored)
        except DuplicateRequestError:
            if await guard(self._requests.find_one({"_id": req.id}, {"_id": 1})) is None:
                raise missing from None
            raise
        try:
            await replace_claimed(self._requests, self._claims, request_to_doc(stored), expected_revision, missing)
        except Exception:
            if taken:
                await self._drop_key(stored)
            raise
        if not self._holds_key(stored):
            await self._drop_key(stored)
        return stored

    async def count_outstanding_requests(self) -> dict[str, int]:
        pipeline = [
            {"$match": {"status": RequestStatus.OUTSTANDING.value, "delete_time": None}},
            {"$group": {"_id": "$project_id", "n": {"$sum": 1}}},
        ]
        cursor = await guard(self._requests.aggregate(pipeline))
        return {row["_id"]: int(row["n"]) for row in await guard(cursor.to_list())}

    async def count_expiring_requests(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        match = {"status": RequestStatus.ACTIVE.value, "delete_time": None}
        return await count_expiring(self._requests, match, boundaries)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
