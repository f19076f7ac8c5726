"""The outbound address guard: public unicast only unless the operator allows more."""

import pytest

from gatewaycerts.connectors.addresses import AddressPolicy, AddressRefused, parse_networks


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "224.0.0.1",
        "::ffff:127.0.0.1",
        "255.255.255.255",
    ],
)
def test_default_policy_refuses_non_public(address):
    policy = AddressPolicy()
    assert not policy.permits(address)
    with pytest.raises(AddressRefused, match="not an allowed target"):
        policy.check(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_default_policy_permits_public(address):
    assert AddressPolicy().permits(address)


def test_operator_networks_extend_the_policy():
    policy = AddressPolicy(parse_networks("127.0.0.0/8, ::1/128"))
    assert policy.permits("127.0.0.5") and policy.permits("::1") and policy.permits("::ffff:127.0.0.1")
    assert not policy.permits("10.0.0.1")


def test_parse_networks_names_the_bad_entry():
    with pytest.raises(ValueError, match="'nope'"):
        parse_networks("127.0.0.0/8,nope")
    assert parse_networks(None) == () and parse_networks(" , ") == ()


async def test_resolve_checks_every_address():
    with pytest.raises(AddressRefused):
        await AddressPolicy().resolve("localhost", 80)
    allowed = AddressPolicy(parse_networks("127.0.0.0/8,::1/128"))
    assert [str(a) for a in await allowed.resolve("127.0.0.1", 80)] == ["127.0.0.1"]
    with pytest.raises(AddressRefused, match="cannot resolve"):
        await allowed.resolve("no-such-host.invalid", 80)
