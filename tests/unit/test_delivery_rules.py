"""The delivery rules as pure functions, and gateway tokens: the claims a gateway principal needs and the
`gatewaycerts token --role gateway` command."""

from __future__ import annotations

import os
import subprocess
import sys

import jwt
import pytest

from gatewaycerts.auth.tokens import principal_from_claims
from gatewaycerts.core.delivery.rules import (
    authorize_delivery,
    candidate_names,
    choose,
    normalise_server_name,
    parse_signature_schemes,
)
from gatewaycerts.domain.errors import AuthenticationError, InvalidInputError, PermissionDeniedError
from gatewaycerts.domain.models import AlgorithmType, Principal, Role


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("WWW.Example.COM.", "www.example.com"),
        (" api.example.com ", "api.example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("192.0.2.1", "192.0.2.1"),
    ],
)
def test_server_names_are_normalised(raw, expected):
    assert normalise_server_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        ".",
        "*.example.com",
        "a..example.com",
        "-a.example.com",
        "a" * 64 + ".com",
        "x." * 127 + "com",
        "[::1]",
        "a b.com",
    ],
)
def test_bad_server_names_are_invalid_input(raw):
    with pytest.raises(InvalidInputError):
        normalise_server_name(raw)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("www.example.com", ("www.example.com", "*.example.com")),
        ("a.b.example.com", ("a.b.example.com", "*.b.example.com")),
        ("example.com", ("example.com",)),  # a wildcard covers one label over at least two
        ("192.0.2.1", ("192.0.2.1",)),
        ("2001:db8::1", ("2001:db8::1",)),
    ],
)
def test_exact_name_then_one_label_wildcard(name, expected):
    assert candidate_names(name) == expected


def test_signature_schemes_choose_ecc_or_rsa():
    both = {AlgorithmType.RSA: "rsa", AlgorithmType.ECC: "ecc"}
    assert choose(both, parse_signature_schemes("403,503,603,804")) == "ecc"
    assert choose(both, parse_signature_schemes("804,805,806,401,501,601")) == "rsa"
    assert choose(both, None) == "ecc"  # the client said nothing: every current stack does ECDSA
    assert choose(both, parse_signature_schemes("zz,,403")) == "ecc"  # junk entries are skipped
    assert choose({AlgorithmType.RSA: "rsa"}, parse_signature_schemes("403")) == "rsa"
    assert choose({AlgorithmType.ECC: "ecc"}, parse_signature_schemes("804")) == "ecc"


def test_only_gateway_principals_of_the_instance_receive_keys():
    gateway = Principal("gw", frozenset({"p1"}), frozenset({Role.GATEWAY}), frozenset({"gw1"}))
    authorize_delivery(gateway, "p1", "gw1")
    for principal, project, instance in (
        (gateway, "p1", "gw2"),
        (gateway, "p2", "gw1"),
        (Principal("admin", frozenset({"p1"}), frozenset({Role.ADMIN}), frozenset({"gw1"})), "p1", "gw1"),
    ):
        with pytest.raises(PermissionDeniedError):
            authorize_delivery(principal, project, instance)


def test_gateway_claims():
    principal = principal_from_claims(
        {"sub": "gw", "project_id": "p1", "roles": ["gateway"], "instances": ["gw1", "gw2"]}
    )
    assert principal.roles == {Role.GATEWAY} and principal.instances == {"gw1", "gw2"}
    for claims in (
        {"sub": "gw", "project_id": "p1", "roles": ["gateway", "admin"], "instances": ["gw1"]},
        {"sub": "gw", "project_id": "p1", "roles": ["gateway"]},
        {"sub": "gw", "project_id": "p1", "roles": ["gateway"], "instances": []},
        {"sub": "gw", "project_id": "p1", "roles": ["gateway"], "instances": "gw1"},
    ):
        with pytest.raises(AuthenticationError):
            principal_from_claims(claims)
    # People have no instances, whatever their token says.
    admin = principal_from_claims({"sub": "a", "project_id": "p1", "roles": ["admin"], "instances": ["gw1"]})
    assert admin.instances == frozenset()


def _token_command(tmp_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAYCERTS_")}
    env["GATEWAYCERTS_STATE_DIR"] = str(tmp_path / "state")
    return subprocess.run(
        [sys.executable, "-m", "gatewaycerts", "token", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_token_command_mints_gateway_tokens(tmp_path):
    out = _token_command(tmp_path, "--project", "p1", "--role", "gateway", "--instance", "gw1", "--instance", "gw2")
    assert out.returncode == 0, out.stderr
    claims = jwt.decode(out.stdout.strip(), options={"verify_signature": False})
    assert claims["roles"] == ["gateway"] and claims["instances"] == ["gw1", "gw2"] and claims["project_id"] == "p1"
    for args in (
        ("--project", "p1", "--role", "gateway"),  # no instance
        ("--project", "p1", "--role", "gateway", "--role", "admin", "--instance", "gw1"),
        ("--project", "p1", "--project", "p2", "--role", "gateway", "--instance", "gw1"),
        ("--project", "p1", "--role", "admin", "--instance", "gw1"),  # instances are for gateways
    ):
        out = _token_command(tmp_path, *args)
        assert out.returncode != 0 and out.stdout == "", args
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
