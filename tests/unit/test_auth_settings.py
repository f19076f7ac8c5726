from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gatewaycerts.auth.tokens import StaticKeySource, TokenVerifier, mint_token, principal_from_claims
from gatewaycerts.core.authz import authorize
from gatewaycerts.domain.errors import AuthenticationError, PermissionDeniedError
from gatewaycerts.domain.models import Action, Principal, Role
from gatewaycerts.settings import Settings, SettingsError, render_reference


async def test_es256_token_with_issuer_and_audience():
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier(StaticKeySource(key.public_key()), algorithms=("ES256",), issuer="iss", audience="gw")
    good = mint_token(
        key, subject="u", projects=["a", "b"], roles=["editor"], ttl=60, algorithm="ES256", issuer="iss", audience="gw"
    )
    p = await verifier.verify(good)
    assert p.projects == {"a", "b"} and p.roles == {Role.EDITOR}
    for bad in (
        mint_token(key, subject="u", projects=["a"], roles=[], ttl=60, algorithm="ES256", issuer="x", audience="gw"),
        mint_token(key, subject="u", projects=["a"], roles=[], ttl=60, algorithm="ES256", issuer="iss", audience="x"),
        mint_token(
            key,
            subject="u",
            projects=["a"],
            roles=[],
            ttl=60,
            algorithm="ES256",
            issuer="iss",
            audience="gw",
            now=int(time.time()) - 600,
        ),
    ):
        with pytest.raises(AuthenticationError):
            await verifier.verify(bad)


async def test_algorithm_allowlist_rejects_hs256_and_none():
    import jwt

    key = ec.generate_private_key(ec.SECP256R1())
    verifier = TokenVerifier(StaticKeySource(key.public_key()), algorithms=("ES256",))
    exp = int(time.time()) + 60
    for token in (
        jwt.encode({"sub": "u", "exp": exp}, "s" * 32, algorithm="HS256"),
        jwt.encode({"sub": "u", "exp": exp}, None, algorithm="none"),
    ):
        with pytest.raises(AuthenticationError):
            await verifier.verify(token)


def test_principal_needs_sub_and_ignores_unknown_roles():
    with pytest.raises(AuthenticationError):
        principal_from_claims({"project_id": "p"})
    p = principal_from_claims({"sub": "u", "project_id": "p", "roles": "viewer root"})
    assert p.roles == {Role.VIEWER}


@pytest.mark.parametrize(
    ("roles", "project", "action", "allowed"),
    [
        ({Role.VIEWER}, "p", Action.READ, True),
        ({Role.VIEWER}, "p", Action.WRITE, False),
        ({Role.EDITOR}, "p", Action.WRITE, True),
        ({Role.ADMIN}, "q", Action.READ, False),
        (set(), "p", Action.READ, False),
    ],
)
def test_authorize(roles, project, action, allowed):
    principal = Principal("u", frozenset({"p"}), frozenset(roles))
    if allowed:
        authorize(principal, project, action)
    else:
        with pytest.raises(PermissionDeniedError):
            authorize(principal, project, action)


def test_settings_from_env_and_errors(tmp_path):
    s = Settings.from_env({"GATEWAYCERTS_PORT": "9000", "GATEWAYCERTS_STATE_DIR": str(tmp_path)})
    assert s.port == 9000 and s.sqlite_path == tmp_path / "gatewaycerts.db" and s.uses_dev_jwt_key
    assert Settings.from_env({"GATEWAYCERTS_DATABASE_URL": "sqlite:////x/y.db"}).sqlite_path.as_posix() == "/x/y.db"
    assert Settings.from_env({"GATEWAYCERTS_DATABASE_URL": "mongodb://h/db"}).sqlite_path is None
    for env in (
        {"GATEWAYCERTS_PORT": "http"},
        {"GATEWAYCERTS_PORT": "70000"},
        {"GATEWAYCERTS_JWT_ALGORITHMS": "HS256"},
        {"GATEWAYCERTS_DATABASE_URL": "postgres://x"},
        {"GATEWAYCERTS_KEK_FILE": str(tmp_path / "missing")},
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(env)
    secret = Settings.from_env({"GATEWAYCERTS_DATABASE_URL": "mongodb://user:pw@h/db"})
    assert "pw" not in repr(secret)


def test_operations_doc_matches_settings():
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    assert render_reference() in doc, "docs/operations.md is stale: paste `gatewaycerts config-reference` into it"


class CountingKeySource(StaticKeySource):
    """The real public key, counting how often a signature had to be checked."""

    def __init__(self, key) -> None:
        super().__init__(key)
        self.lookups = 0

    async def key_for(self, token: str):
        self.lookups += 1
        return await super().key_for(token)


async def test_a_verified_token_is_remembered_until_it_expires_or_a_minute_passes():
    key = ec.generate_private_key(ec.SECP256R1())
    keys = CountingKeySource(key.public_key())
    now = [time.time()]
    verifier = TokenVerifier(keys, algorithms=("ES256",), leeway=0, cache_seconds=60, clock=lambda: now[0])
    token = mint_token(key, subject="u", projects=["a"], roles=["viewer"], ttl=300, algorithm="ES256", issuer=None)
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first and keys.lookups == 1  # the second request checks nothing
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(AuthenticationError):
        await verifier.verify(forged)  # a different text is never a cache hit
    now[0] += 61  # past the cache window: checked again (a key removed from the JWKS stops working)
    assert await verifier.verify(token) == first and keys.lookups == 3
    now[0] += 300  # past exp: refused, and never from the cache
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier.verify(token)
    with pytest.raises(AuthenticationError, match="expired"):
        await verifier.verify(token)


async def test_the_token_cache_is_bounded():
    key = ec.generate_private_key(ec.SECP256R1())
    keys = CountingKeySource(key.public_key())
    verifier = TokenVerifier(keys, algorithms=("ES256",), cache_size=2)
    tokens = [mint_token(key, subject=f"u{i}", projects=["a"], roles=[], ttl=300, algorithm="ES256") for i in range(3)]
    for t in tokens:
        await verifier.verify(t)
    await verifier.verify(tokens[2])
    assert keys.lookups == 3
    await verifier.verify(tokens[0])  # the oldest was evicted
    assert keys.lookups == 4
