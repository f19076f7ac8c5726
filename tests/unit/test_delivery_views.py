"""An instance's delivery view patched one certificate at a time (_patch_view) equals the view built from scratch
(_build_view) of the same certificates, over random sequences of adds, rebinds, renewals and removals on
random data: many certificates per name and algorithm (records from before one-certificate-per-algorithm:
the oldest wins), equal creation times, client verification on some bindings, instance-scoped certificates.
The index kept beside (InstanceIndex) equals one built afresh, and names exactly the instances whose view
is not empty."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from gatewaycerts.core.delivery.index import InstanceIndex
from gatewaycerts.core.delivery.service import _build_view, _patch_view
from gatewaycerts.domain.models import Certificate, CertificateScope, DomainBinding
from gatewaycerts.pki.bundle import validate_bundle
from tests.factories import CertSpec, ec_key, issue, rsa_chain, rsa_key

INSTANCES = ("gw1", "gw2", "gw3", "gw4")
NAMES = ("a.example.com", "b.example.com", "*.w.example.com", "x.w.example.com", "10.0.0.1")
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def infos():
    chain = rsa_chain()
    now = dt.datetime.now(dt.UTC)
    out = []
    for key in (rsa_key(2048, 50), ec_key("secp256r1", 50)):
        leaf = issue(CertSpec(cn="a.example.com", dns=("a.example.com",)), key, chain.intermediate)
        out.append(validate_bundle(leaf.pem + chain.intermediate.pem, leaf.key_pem(), None, now=now))
    return out


def _cert(rng: random.Random, infos, cert_id: str, revision: int, create_time: dt.datetime) -> Certificate:
    bundle = rng.choice(infos)
    local = rng.random() < 0.25
    bindings = tuple(
        DomainBinding(
            f"{cert_id}-{n}",
            name,
            () if local else tuple(rng.sample(INSTANCES, rng.randint(0, 3))),
            rng.random() < 0.3,
            create_time,
        )
        for n, name in enumerate(rng.sample(NAMES, rng.randint(0, 4)))
    )
    return Certificate(
        id=cert_id,
        project_id="p1",
        name=cert_id,
        scope=CertificateScope.INSTANCE if local else CertificateScope.GLOBAL,
        instance_id=rng.choice(INSTANCES) if local else "common",
        info=bundle.info,
        chain_pem=bundle.chain_pem,
        encrypted_private_key=b"not used here",
        trusted_root_ca_pem=None,
        has_trusted_root_ca=False,
        create_time=create_time,
        update_time=create_time,
        revision=revision,
        bindings=bindings,
    )


def _shape(view) -> tuple:
    return (
        view.version,
        view.lines,
        [(i.cert.id, i.cert.revision, i.domains, i.verify_client) for i in view.items],
        {n: {a: (i.cert.id, i.domains, i.verify_client) for a, i in bound.items()} for n, bound in view.names.items()},
    )


@pytest.mark.parametrize("seed", range(8))
def test_patched_views_equal_views_built_from_scratch(infos, seed):
    rng = random.Random(seed)
    certs: dict[str, Certificate] = {}
    index = InstanceIndex()
    views = {i: _build_view(certs, i) for i in INSTANCES}
    made = 0
    for _ in range(150):
        if certs and rng.random() < 0.6:
            cert_id = rng.choice(sorted(certs))
            previous = certs[cert_id]
            # a rebind or renewal (same creation time, next revision), or a removal
            new = (
                None if rng.random() < 0.2 else _cert(rng, infos, cert_id, previous.revision + 1, previous.create_time)
            )
        else:
            made += 1
            cert_id = f"c{rng.randrange(10**6):06d}-{made}"  # ids not in creation order
            previous, new = None, _cert(rng, infos, cert_id, 1, T0 + dt.timedelta(seconds=rng.randrange(5)))
        if new is not None and not new.bindings:
            new = None  # a certificate without bindings is not held (as DeliveryService keeps them)
        if previous is None and new is None:
            continue
        if new is None:
            del certs[cert_id]
        else:
            certs[cert_id] = new
        touched = index.replace(previous, new)
        for instance in INSTANCES:
            if instance in touched:
                views[instance] = _patch_view(views[instance], instance, cert_id, new)
            assert _shape(views[instance]) == _shape(_build_view(certs, instance)), (seed, instance)
        assert index.as_dict() == InstanceIndex(certs.values()).as_dict()
        assert set(index.as_dict()) == {i for i in INSTANCES if _build_view(certs, i).items}
