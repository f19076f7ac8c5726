"""The PcaStore contract, run against both adapters (SQLite and MongoDB/FerretDB)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace

import pytest

from gatewaycerts.domain.audit import AuditEvent, AuditQuery
from gatewaycerts.domain.errors import AuthorityNotFoundError, ConflictError, PrivateCertificateNotFoundError
from gatewaycerts.domain.pca import (
    Authority,
    CaStatus,
    CaType,
    CrlConfiguration,
    CrlState,
    DistinguishedName,
    GenMode,
    IssuedCertificate,
    IssuedKind,
    IssuedStatus,
    KeyAlgorithm,
    KeyUsage,
    OcspSigner,
    PcaQuery,
    RevocationReason,
    SanType,
    SignatureHash,
    SortKey,
    SubjectAltName,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(days=30)


def ca(ca_id: str, *, project: str = "p1", cn: str = "Root CA", seconds: int = 0, **kw) -> Authority:
    values = dict(
        id=ca_id,
        project_id=project,
        type=CaType.ROOT,
        status=CaStatus.ACTIVED,
        distinguished_name=DistinguishedName(cn, country="CN", organization="Org"),
        key_algorithm=KeyAlgorithm.EC256,
        signature_algorithm=SignatureHash.SHA256,
        issuer_id=None,
        path_length=None,
        key_usages=(KeyUsage.KEY_CERT_SIGN, KeyUsage.CRL_SIGN),
        crl_configuration=CrlConfiguration(enabled=True, crl_name="crl", valid_days=7),
        encrypted_key=b'{"v":1}\x00\xff',
        certificate_pem="-----BEGIN CERTIFICATE-----\n...",
        chain_pem="",
        csr_pem=None,
        serial_number="12345678901234567890123456789012345678901234567",
        not_before=T0,
        not_after=T0 + dt.timedelta(days=365),
        gen_mode=GenMode.GENERATE,
        create_time=T0 + dt.timedelta(seconds=seconds),
        update_time=T0 + dt.timedelta(seconds=seconds),
        issuer_name=cn,
    )
    values.update(kw)
    return Authority(**values)


def cert(cert_id: str, *, project: str = "p1", issuer: str = "ca1", seconds: int = 0, **kw) -> IssuedCertificate:
    values = dict(
        id=cert_id,
        project_id=project,
        issuer_id=issuer,
        issuer_name="Root CA",
        kind=IssuedKind.ENTITY_CERT,
        status=IssuedStatus.ISSUED,
        distinguished_name=DistinguishedName(kw.pop("cn", "www.example.com")),
        key_algorithm=KeyAlgorithm.RSA2048,
        signature_algorithm=SignatureHash.SHA384,
        serial_number=str(1000 + seconds),
        not_before=T0,
        not_after=T0 + dt.timedelta(days=kw.pop("days", 90)),
        gen_mode=GenMode.GENERATE,
        certificate_pem="-----BEGIN CERTIFICATE-----\nleaf",
        chain_pem="-----BEGIN CERTIFICATE-----\nca",
        encrypted_key=b"\x00key",
        create_time=T0 + dt.timedelta(seconds=seconds),
        sans=(SubjectAltName(SanType.DNS, "www.example.com"), SubjectAltName(SanType.IP, "10.0.0.1")),
    )
    values.update(kw)
    return IssuedCertificate(**values)


async def test_authority_round_trip_preserves_every_field(pca_store):
    original = ca(
        "ca1",
        crl=CrlState(number=3, this_update=T0, next_update=T0 + dt.timedelta(days=7), der=b"\x30\x00", revoked_count=2),
        delete_time=T0 + dt.timedelta(days=7),
        status_before_delete=CaStatus.DISABLED,
        revoked_at=T0,
        revocation_reason=RevocationReason.KEY_COMPROMISE,
        ocsp_signer=OcspSigner(
            "-----BEGIN CERTIFICATE-----\nocsp", b'{"v":1}\x00\x01', "99", T0 + dt.timedelta(days=2)
        ),
    )
    await pca_store.insert_authority(original)
    assert await pca_store.get_authority("p1", "ca1") == original
    assert await pca_store.get_authority(None, "ca1") == original  # the public CRL lookup
    assert await pca_store.get_authority("p2", "ca1") is None


async def test_certificate_round_trip_preserves_every_field(pca_store):
    original = cert("c1", revoked_at=T0, revocation_reason=RevocationReason.SUPERSEDED)
    await pca_store.insert_certificate(original)
    assert await pca_store.get_certificate("p1", "c1") == original
    assert await pca_store.get_certificate("p2", "c1") is None


async def test_serials_are_unique_per_issuer(pca_store):
    await pca_store.reserve_serial("ca1", "42")
    await pca_store.reserve_serial("ca2", "42")
    with pytest.raises(ConflictError):
        await pca_store.reserve_serial("ca1", "42")


async def test_insert_reserving_serial_stores_both_or_neither(pca_store):
    first = cert("c1", seconds=7)
    assert await pca_store.insert_certificate_reserving_serial("ca1", first) is True
    assert await pca_store.get_certificate("p1", "c1") == first
    with pytest.raises(ConflictError):  # its serial is reserved: the separate reservation sees it
        await pca_store.reserve_serial("ca1", first.serial_number)
    # the same serial under the same CA again: refused, and the second certificate is not stored
    assert await pca_store.insert_certificate_reserving_serial("ca1", cert("c2", seconds=7)) is False
    assert await pca_store.get_certificate("p1", "c2") is None
    # a serial reserved the other way counts too
    await pca_store.reserve_serial("ca1", "5555")
    assert await pca_store.insert_certificate_reserving_serial("ca1", cert("c3", serial_number="5555")) is False
    assert await pca_store.get_certificate("p1", "c3") is None
    # another CA may use the same serial
    assert await pca_store.insert_certificate_reserving_serial("ca2", cert("c4", issuer="ca2", seconds=7)) is True
    # an id that exists: ConflictError, the existing certificate unchanged
    with pytest.raises(ConflictError):
        await pca_store.insert_certificate_reserving_serial("ca1", cert("c1", seconds=8, cn="other.example.com"))
    assert await pca_store.get_certificate("p1", "c1") == first


async def test_concurrent_inserts_reserving_one_serial_store_one(pca_store):
    results = await asyncio.gather(
        *(pca_store.insert_certificate_reserving_serial("ca1", cert(f"r{i}", seconds=9)) for i in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]
    stored = [await pca_store.get_certificate("p1", f"r{i}") for i in range(8)]
    assert [c is not None for c in stored] == results


async def test_list_authorities_filters_sorts_and_pages(pca_store):
    await pca_store.insert_authority(ca("a", cn="Alpha Root", seconds=1))
    await pca_store.insert_authority(ca("b", cn="Beta Sub", seconds=2, type=CaType.SUBORDINATE, issuer_id="a"))
    await pca_store.insert_authority(ca("c", cn="Gamma Root", seconds=3, status=CaStatus.DISABLED))
    await pca_store.insert_authority(ca("d", cn="Old Root", seconds=4, not_after=T0 + dt.timedelta(days=1)))
    await pca_store.insert_authority(ca("x", project="p2", seconds=5))

    page = await pca_store.list_authorities("p1", PcaQuery(), NOW, 0, 10)
    assert [a.id for a in page.items] == ["d", "c", "b", "a"] and page.total == 4
    assert all(a.encrypted_key == b"" and a.certificate_pem is None for a in page.items)  # summaries only
    page = await pca_store.list_authorities("p1", PcaQuery(), NOW, 1, 2)
    assert [a.id for a in page.items] == ["c", "b"] and page.total == 4
    page = await pca_store.list_authorities("p1", PcaQuery(name_contains="root"), NOW, 0, 10)
    assert {a.id for a in page.items} == {"a", "c", "d"}
    page = await pca_store.list_authorities("p1", PcaQuery(type="SUBORDINATE"), NOW, 0, 10)
    assert [a.id for a in page.items] == ["b"]
    page = await pca_store.list_authorities("p1", PcaQuery(status="EXPIRED"), NOW, 0, 10)
    assert [a.id for a in page.items] == ["d"]
    page = await pca_store.list_authorities("p1", PcaQuery(status="ACTIVED"), NOW, 0, 10)
    assert {a.id for a in page.items} == {"a", "b"}
    page = await pca_store.list_authorities("p1", PcaQuery(sort_key=SortKey.COMMON_NAME, descending=False), NOW, 0, 10)
    assert [a.id for a in page.items] == ["a", "b", "c", "d"]


async def test_list_certificates_filters_and_hides_deleted(pca_store):
    await pca_store.insert_certificate(cert("c1", cn="api.example.com", seconds=1))
    await pca_store.insert_certificate(cert("c2", cn="old.example.com", seconds=2, days=1))
    await pca_store.insert_certificate(cert("c3", cn="www.example.com", seconds=3, status=IssuedStatus.REVOKED))
    await pca_store.insert_certificate(cert("c4", cn="gone.example.com", seconds=4, delete_time=T0))
    page = await pca_store.list_certificates("p1", PcaQuery(), NOW, 0, 10)
    assert [c.id for c in page.items] == ["c3", "c2", "c1"] and page.total == 3
    assert await pca_store.get_certificate("p1", "c4") is None
    for status, expected in (("EXPIRED", ["c2"]), ("ISSUED", ["c1"]), ("REVOKED", ["c3"])):
        page = await pca_store.list_certificates("p1", PcaQuery(status=status), NOW, 0, 10)
        assert [c.id for c in page.items] == expected, status
    page = await pca_store.list_certificates("p1", PcaQuery(sort_key=SortKey.NOT_AFTER, descending=False), NOW, 0, 10)
    assert [c.id for c in page.items] == ["c2", "c1", "c3"]


async def test_replace_is_compare_and_swap(pca_store):
    await pca_store.insert_authority(ca("ca1"))
    stored = await pca_store.replace_authority(ca("ca1", status=CaStatus.DISABLED), expected_revision=0)
    assert stored.revision == 1
    with pytest.raises(ConflictError):
        await pca_store.replace_authority(ca("ca1"), expected_revision=0)
    with pytest.raises(AuthorityNotFoundError):
        await pca_store.replace_authority(ca("nope"), expected_revision=0)
    await pca_store.insert_certificate(cert("c1"))
    await pca_store.replace_certificate(cert("c1", status=IssuedStatus.REVOKED), expected_revision=0)
    with pytest.raises(ConflictError):
        await pca_store.replace_certificate(cert("c1"), expected_revision=0)
    with pytest.raises(PrivateCertificateNotFoundError):
        await pca_store.replace_certificate(cert("nope"), expected_revision=0)
    assert (await pca_store.get_certificate("p1", "c1")).status is IssuedStatus.REVOKED


async def test_concurrent_replaces_exactly_one_wins(pca_store):
    await pca_store.insert_authority(ca("ca1"))

    async def attempt(n: int) -> bool:
        try:
            await pca_store.replace_authority(
                ca("ca1", crl_configuration=CrlConfiguration(valid_days=n)), expected_revision=0
            )
            return True
        except ConflictError:
            return False

    results = await asyncio.gather(*(attempt(n) for n in range(1, 11)))
    assert sum(results) == 1
    assert (await pca_store.get_authority("p1", "ca1")).revision == 1


async def test_revoked_serials_include_certificates_and_subordinate_cas(pca_store):
    await pca_store.insert_authority(ca("root"))
    await pca_store.insert_authority(
        ca(
            "sub",
            type=CaType.SUBORDINATE,
            issuer_id="root",
            status=CaStatus.REVOKED,
            serial_number="77",
            revoked_at=T0,
            revocation_reason=RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE,
        )
    )
    await pca_store.insert_certificate(cert("c1", issuer="root", status=IssuedStatus.REVOKED, revoked_at=T0, seconds=1))
    await pca_store.insert_certificate(cert("c2", issuer="root", seconds=2))
    await pca_store.insert_certificate(
        cert("c3", issuer="root", status=IssuedStatus.REVOKED, revoked_at=T0, seconds=3, delete_time=T0)
    )
    await pca_store.insert_certificate(
        cert("c4", issuer="other", status=IssuedStatus.REVOKED, revoked_at=T0, seconds=4)
    )
    revoked = {r.serial_number: r.reason for r in await pca_store.revoked_serials("root")}
    # a deleted revoked certificate stays on the CRL
    assert revoked == {
        77: RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE,
        1001: RevocationReason.UNSPECIFIED,
        1003: RevocationReason.UNSPECIFIED,
    }


async def test_replace_keeps_deleted_certificates_hidden(pca_store):
    await pca_store.insert_certificate(cert("c1"))
    await pca_store.replace_certificate(replace(cert("c1"), delete_time=T0), expected_revision=0)
    assert await pca_store.get_certificate("p1", "c1") is None
    assert (await pca_store.list_certificates("p1", PcaQuery(), NOW, 0, 10)).total == 0


async def test_count_expiring_counts_only_live_issued_certificates(pca_store):
    # not_after = T0 + days; boundaries at T0 + 5, 30, 100 days
    for i, days in enumerate((1, 10, 10, 60)):
        await pca_store.insert_certificate(cert(f"a{i}", seconds=i, days=days))
    await pca_store.insert_certificate(cert("b0", project="p2", seconds=10, days=20))
    await pca_store.insert_certificate(cert("gone", seconds=11, days=1, delete_time=T0))
    await pca_store.insert_certificate(cert("revoked", seconds=12, days=1, status=IssuedStatus.REVOKED))
    await pca_store.insert_certificate(cert("far", project="p3", seconds=13, days=400))
    boundaries = [T0 + dt.timedelta(days=d) for d in (5, 30, 100)]
    assert await pca_store.count_expiring(boundaries) == {"p1": (1, 3, 4), "p2": (0, 1, 1)}


async def test_serial_status_agrees_with_revoked_serials(pca_store):
    """OCSP's per-serial answer: unknown (None) for serials the CA never signed, revoked exactly as the CRL says."""
    await pca_store.insert_authority(ca("root"))
    await pca_store.insert_authority(
        ca(
            "sub",
            type=CaType.SUBORDINATE,
            issuer_id="root",
            status=CaStatus.REVOKED,
            serial_number="77",
            revoked_at=T0,
            revocation_reason=RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE,
        )
    )
    await pca_store.insert_certificate(cert("c1", issuer="root", seconds=1))
    revoked = dict(status=IssuedStatus.REVOKED, revoked_at=T0, revocation_reason=RevocationReason.KEY_COMPROMISE)
    await pca_store.insert_certificate(cert("c2", issuer="root", seconds=2, delete_time=T0, **revoked))
    await pca_store.insert_certificate(cert("c3", issuer="other", seconds=3))
    good = await pca_store.serial_status("root", 1001)
    assert good is not None and good.serial_number == 1001 and good.revoked_at is None and good.reason is None
    gone = await pca_store.serial_status("root", 1002)  # deleted but revoked: still revoked, as on the CRL
    assert (gone.revoked_at, gone.reason) == (T0, RevocationReason.KEY_COMPROMISE)
    sub = await pca_store.serial_status("root", 77)
    assert sub.reason is RevocationReason.CERTIFICATE_AUTHORITY_COMPROMISE
    assert await pca_store.serial_status("root", 1003) is None  # another CA's serial
    assert await pca_store.serial_status("root", 4242) is None
    assert {r.serial_number for r in await pca_store.revoked_serials("root")} == {77, 1002}
    c1 = await pca_store.get_certificate("p1", "c1")
    await pca_store.replace_certificate(replace(c1, **revoked), expected_revision=0)
    assert (await pca_store.serial_status("root", 1001)).revoked_at == T0


def _issue_event(event_id: str, cert_id: str) -> AuditEvent:
    return AuditEvent(
        id=event_id,
        project_id="p1",
        time=NOW,
        actor="alice",
        roles=("writer",),
        action="ccm.certificate.issue_from_csr",
        object_type="private_certificate",
        object_id=cert_id,
        object_name="leaf.example.com",
        request_id="req-1",
        details={"serial_number": "1"},
    )


async def test_a_store_that_joins_audit_writes_the_event_with_the_certificate_or_neither(every_store):
    _, pca_store, _, audit_store = every_store
    event = _issue_event("e" * 32, "c1")
    if not pca_store.joins_audit:  # MongoDB: no transactions; the service records the event after the change
        with pytest.raises(TypeError):
            await pca_store.insert_certificate_reserving_serial("ca1", cert("c1", seconds=7), audit=event)
        assert await pca_store.get_certificate("p1", "c1") is None
        assert await audit_store.list("p1", AuditQuery(), 10) == ()
        return
    first = cert("c1", seconds=7)
    assert await pca_store.insert_certificate_reserving_serial("ca1", first, audit=event) is True
    assert await pca_store.get_certificate("p1", "c1") == first
    assert await audit_store.list("p1", AuditQuery(), 10) == (event,)
    # the serial taken: neither the certificate nor its event
    taken = _issue_event("f" * 32, "c2")
    assert await pca_store.insert_certificate_reserving_serial("ca1", cert("c2", seconds=7), audit=taken) is False
    assert await pca_store.get_certificate("p1", "c2") is None
    # the certificate's id taken: ConflictError, the serial not reserved, no event
    clash = _issue_event("a" * 32, "c1")
    with pytest.raises(ConflictError):
        await pca_store.insert_certificate_reserving_serial("ca1", cert("c1", seconds=8), audit=clash)
    assert await pca_store.insert_certificate_reserving_serial("ca1", cert("c3", seconds=8)) is True
    assert await audit_store.list("p1", AuditQuery(), 10) == (event,)
