"""The certificate-request half of the PcaStore contract, run against both adapters (SQLite, MongoDB/FerretDB)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest

from gatewaycerts.domain.errors import CertificateRequestNotFoundError, ConflictError, DuplicateRequestError
from gatewaycerts.domain.pca import RevocationReason
from gatewaycerts.domain.requests import CertificateRequest, RequestStatus

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def request(req_id: str, *, project: str = "p1", fp: str = "aa", seconds: int = 0, **kw) -> CertificateRequest:
    values = dict(
        id=req_id,
        project_id=project,
        csr_pem="-----BEGIN CERTIFICATE REQUEST-----\n...",
        csr_fingerprint=fp,
        common_name="www.example.com",
        status=RequestStatus.OUTSTANDING,
        requested_by="alice",
        create_time=T0 + dt.timedelta(seconds=seconds),
        update_time=T0 + dt.timedelta(seconds=seconds),
    )
    values.update(kw)
    return CertificateRequest(**values)


def signed(req: CertificateRequest, *, issuer: str = "ca1", serial: str = "4242", days: int = 90) -> CertificateRequest:
    return replace(
        req,
        status=RequestStatus.ACTIVE,
        certificate_chain_pem="-----BEGIN CERTIFICATE-----\nleaf\n-----BEGIN CERTIFICATE-----\nca",
        issuer_id=issuer,
        serial_number=serial,
        not_after=T0 + dt.timedelta(days=days),
    )


async def test_round_trip_preserves_every_field(pca_store):
    full = replace(
        signed(request("r1")),
        status=RequestStatus.REVOKED,
        signing_until=T0 + dt.timedelta(minutes=1),
        revoked_at=T0 + dt.timedelta(days=2),
        revocation_reason=RevocationReason.KEY_COMPROMISE,
    )
    await pca_store.insert_request(full)
    assert await pca_store.get_request("p1", "r1") == full
    assert await pca_store.get_request("p2", "r1") is None  # another project sees nothing
    page = await pca_store.list_requests("p1", None, 0, 10)
    assert page.items == (full,) and page.total == 1


async def test_an_outstanding_csr_is_unique_per_project(pca_store):
    await pca_store.insert_request(request("r1", fp="same"))
    with pytest.raises(DuplicateRequestError):
        await pca_store.insert_request(request("r2", fp="same"))
    await pca_store.insert_request(request("r3", fp="same", project="p2"))  # another project may
    assert (await pca_store.list_requests("p1", None, 0, 10)).total == 1


async def test_a_csr_is_free_again_once_its_request_moves_on(pca_store):
    first = request("r1", fp="same")
    await pca_store.insert_request(first)
    rejected = await pca_store.replace_request(replace(first, status=RequestStatus.REJECTED), expected_revision=0)
    await pca_store.insert_request(request("r2", fp="same", seconds=1))
    # r1 cannot go back to Outstanding while r2 holds the CSR ...
    with pytest.raises(DuplicateRequestError):
        await pca_store.replace_request(replace(rejected, status=RequestStatus.OUTSTANDING), expected_revision=1)
    assert (await pca_store.get_request("p1", "r1")).status is RequestStatus.REJECTED
    # ... and once r2 is deleted, a third submission of the CSR is accepted.
    r2 = await pca_store.get_request("p1", "r2")
    await pca_store.replace_request(replace(r2, delete_time=T0), expected_revision=0)
    await pca_store.insert_request(request("r3", fp="same", seconds=2))


async def test_concurrent_submissions_of_one_csr_exactly_one_lands(pca_store):
    results = await asyncio.gather(
        *(pca_store.insert_request(request(f"r{i}", fp="race", seconds=i)) for i in range(8)), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1, results
    assert all(isinstance(r, DuplicateRequestError) for r in results if r is not None)
    assert (await pca_store.list_requests("p1", None, 0, 10)).total == 1


async def test_replace_is_compare_and_swap(pca_store):
    await pca_store.insert_request(request("r1"))
    stored = await pca_store.replace_request(replace(request("r1"), common_name="x"), expected_revision=0)
    assert stored.revision == 1 and (await pca_store.get_request("p1", "r1")).common_name == "x"
    with pytest.raises(ConflictError):
        await pca_store.replace_request(replace(request("r1"), common_name="y"), expected_revision=0)
    with pytest.raises(CertificateRequestNotFoundError):
        await pca_store.replace_request(request("nope"), expected_revision=0)


async def test_concurrent_transitions_exactly_one_wins(pca_store):
    await pca_store.insert_request(request("r1"))
    base = await pca_store.get_request("p1", "r1")
    attempts = [replace(signed(base, serial=str(i))) for i in range(6)]
    results = await asyncio.gather(
        *(pca_store.replace_request(a, expected_revision=0) for a in attempts), return_exceptions=True
    )
    winners = [r for r in results if isinstance(r, CertificateRequest)]
    assert len(winners) == 1 and all(isinstance(r, ConflictError) for r in results if r not in winners)
    assert (await pca_store.get_request("p1", "r1")).serial_number == winners[0].serial_number


async def test_list_filters_by_status_pages_newest_first_and_hides_deleted(pca_store):
    for i in range(5):
        await pca_store.insert_request(request(f"r{i}", fp=f"f{i}", seconds=i))
    r1 = await pca_store.get_request("p1", "r1")
    await pca_store.replace_request(replace(r1, status=RequestStatus.REJECTED), expected_revision=0)
    r4 = await pca_store.get_request("p1", "r4")
    await pca_store.replace_request(replace(r4, delete_time=T0), expected_revision=0)
    page = await pca_store.list_requests("p1", None, 0, 2)
    assert [r.id for r in page.items] == ["r3", "r2"] and page.total == 4
    assert [r.id for r in (await pca_store.list_requests("p1", None, 2, 2)).items] == ["r1", "r0"]
    outstanding = await pca_store.list_requests("p1", "Outstanding", 0, 10)
    assert [r.id for r in outstanding.items] == ["r3", "r2", "r0"] and outstanding.total == 3
    assert await pca_store.get_request("p1", "r4") is None
    assert await pca_store.count_outstanding_requests() == {"p1": 3}


async def test_revoked_serials_include_revoked_requests_even_when_deleted(pca_store):
    live = signed(request("r1", fp="a"), serial="111")
    gone = signed(request("r2", fp="b"), serial="222")
    other_ca = signed(request("r3", fp="c"), issuer="ca2", serial="333")
    for r in (live, gone, other_ca):
        await pca_store.insert_request(r)
    assert await pca_store.revoked_serials("ca1") == []
    revoked = dict(status=RequestStatus.REVOKED, revoked_at=T0, revocation_reason=RevocationReason.SUPERSEDED)
    for r in (live, gone, other_ca):
        await pca_store.replace_request(replace(r, **revoked), expected_revision=0)
    r2 = await pca_store.get_request("p1", "r2")
    await pca_store.replace_request(replace(r2, delete_time=T0), expected_revision=1)
    serials = await pca_store.revoked_serials("ca1")
    assert sorted(s.serial_number for s in serials) == [111, 222]
    assert {s.reason for s in serials} == {RevocationReason.SUPERSEDED}


async def test_count_expiring_requests_counts_only_live_active_certificates(pca_store):
    await pca_store.insert_request(signed(request("a", fp="a"), days=3))
    await pca_store.insert_request(signed(request("b", fp="b", project="p2"), days=40))
    revoked = signed(request("c", fp="c"), days=3)
    await pca_store.insert_request(replace(revoked, status=RequestStatus.REVOKED, revoked_at=T0))
    deleted = signed(request("d", fp="d"), days=3)
    await pca_store.insert_request(replace(deleted, delete_time=T0))
    await pca_store.insert_request(request("e", fp="e"))  # outstanding: no certificate yet
    boundaries = [T0 + dt.timedelta(days=d) for d in (1, 7, 30, 90)]
    assert await pca_store.count_expiring_requests(boundaries) == {"p1": (0, 1, 1, 1), "p2": (0, 0, 0, 1)}


async def test_serial_status_finds_signed_requests(pca_store):
    await pca_store.insert_request(signed(request("r1", fp="a"), serial="111"))
    assert (await pca_store.serial_status("ca1", 111)).revoked_at is None
    assert await pca_store.serial_status("ca2", 111) is None
    r1 = await pca_store.get_request("p1", "r1")
    revoked = dict(status=RequestStatus.REVOKED, revoked_at=T0, revocation_reason=RevocationReason.SUPERSEDED)
    await pca_store.replace_request(replace(r1, **revoked), expected_revision=0)
    assert (await pca_store.serial_status("ca1", 111)).reason is RevocationReason.SUPERSEDED
