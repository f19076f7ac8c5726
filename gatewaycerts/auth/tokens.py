"""Verifying JWTs into Principals, and the development signing key used by `gatewaycerts token`."""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from gatewaycerts.domain.errors import AuthenticationError
from gatewaycerts.domain.models import Principal, Role

DEV_KEY_FILE = "dev-jwt-ed25519.pem"
DEV_ISSUER = "gatewaycerts-dev"
_INVALID = "Incorrect token or token resolution failed"


class KeySource(Protocol):
    async def key_for(self, token: str) -> Any: ...


class StaticKeySource:
    def __init__(self, public_key: Any) -> None:
        self._key = public_key

    async def key_for(self, token: str) -> Any:
        return self._key


class JwksKeySource:
    """Keys from a JWKS URL; the key set is cached for `lifespan` seconds, never per key forever."""

    def __init__(self, url: str, lifespan: int = 300) -> None:
        self._client = jwt.PyJWKClient(url, cache_keys=False, cache_jwk_set=True, lifespan=lifespan, timeout=5)

    async def key_for(self, token: str) -> Any:
        try:
            jwk = await asyncio.to_thread(self._client.get_signing_key_from_jwt, token)
        except jwt.PyJWKClientError:
            raise AuthenticationError(f"{_INVALID}: no matching signing key") from None
        return jwk.key


def load_public_key_file(path: Path) -> Any:
    return serialization.load_pem_public_key(path.read_bytes())


def _roles(claim: Any) -> frozenset[Role]:
    values = claim.split() if isinstance(claim, str) else claim if isinstance(claim, list) else []
    return frozenset(Role(v) for v in values if isinstance(v, str) and v in Role.__members__.values())


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise AuthenticationError(f"{_INVALID}: the sub claim is missing")
    projects: set[str] = set()
    if isinstance(claims.get("project_id"), str):
        projects.add(claims["project_id"])
    if isinstance(claims.get("projects"), list):
        projects.update(p for p in claims["projects"] if isinstance(p, str))
    roles = _roles(claims.get("roles"))
    instances: frozenset[str] = frozenset()
    if Role.GATEWAY in roles:
        # A gateway credential reads private keys and nothing else: it never also carries a person's role,
        # and it names the instances it serves.
        if len(roles) > 1:
            raise AuthenticationError(f"{_INVALID}: a gateway token carries no other role")
        raw = claims.get("instances")
        if not isinstance(raw, list) or not raw or not all(isinstance(i, str) and i for i in raw):
            raise AuthenticationError(f"{_INVALID}: a gateway token names its instances")
        instances = frozenset(raw)
    return Principal(subject=subject, projects=frozenset(projects), roles=roles, instances=instances)


class TokenVerifier:
    """Verifies tokens; a token that verified is remembered for a short while (see `verify`)."""

    def __init__(
        self,
        keys: KeySource,
        *,
        algorithms: tuple[str, ...],
        issuer: str | None = None,
        audience: str | None = None,
        leeway: int = 30,
        cache_seconds: float = 60.0,
        cache_size: int = 10_000,
        clock: Any = time.time,
    ) -> None:
        self._keys = keys
        self._algorithms = list(algorithms)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size
        self._clock = clock
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    async def verify(self, token: str) -> Principal:
        """The token's principal. A client sends the same token with every request, and checking its
        signature is the largest cost of a small request, so a token that verified is remembered — by its
        exact text, hence its exact signature — until it expires, for at most `cache_seconds` (so a key
        dropped from the JWKS stops working within that much longer). Failures are never remembered."""
        now = self._clock()
        known = self._verified.get(token)
        if known is not None:
            principal, until = known
            if now < until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = await self._verify(token, now)
        self._verified[token] = (principal, min(expires + self._leeway, now + self._cache_seconds))
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return principal

    async def _verify(self, token: str, now: float) -> tuple[Principal, float]:
        if not token or len(token) > 8192:
            raise AuthenticationError(_INVALID)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthenticationError(_INVALID) from None
        if header.get("alg") not in self._algorithms:
            raise AuthenticationError(f"{_INVALID}: algorithm not allowed")
        key = await self._keys.key_for(token)
        # exp is checked below against the same clock the cache uses
        options = {"require": ["exp", "sub"], "verify_aud": self._audience is not None, "verify_exp": False}
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                leeway=self._leeway,
                options=options,
            )
        except jwt.PyJWTError:
            raise AuthenticationError(_INVALID) from None
        expires = claims["exp"]
        if not isinstance(expires, int | float) or isinstance(expires, bool):
            raise AuthenticationError(_INVALID)
        if expires + self._leeway <= now:
            raise AuthenticationError(f"{_INVALID}: the token has expired")
        return principal_from_claims(claims), float(expires)


# --- the development key ---------------------------------------------------------------------------


def load_or_create_dev_key(state_dir: Path) -> ed25519.Ed25519PrivateKey:
    path = state_dir / DEV_KEY_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        key = ed25519.Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key


def mint_token(
    key: Any,
    *,
    subject: str,
    projects: list[str],
    roles: list[str],
    ttl: int,
    algorithm: str = "EdDSA",
    issuer: str | None = DEV_ISSUER,
    audience: str | None = None,
    now: int | None = None,
    instances: list[str] | None = None,
) -> str:
    issued = int(time.time()) if now is None else now
    claims: dict[str, Any] = {"sub": subject, "roles": roles, "iat": issued, "exp": issued + ttl}
    if instances:
        claims["instances"] = instances
    if len(projects) == 1:
        claims["project_id"] = projects[0]
    else:
        claims["projects"] = projects
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, key, algorithm=algorithm)
