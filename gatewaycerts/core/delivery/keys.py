"""Gateway keys: credentials of one gateway instance, created by an admin, shown once, stored hashed.

Key text: `gk_<key id>_<secret>` (the id: 32 hex characters; the secret: 32 random bytes, base64url). The
store keeps SHA-256(secret) only; a presented key is compared in constant time. A verified key is
remembered for at most CACHE_SECONDS; a revocation drops it at once on the replica that revoked, and on
every other replica when the watcher sees the project's change counter move (DeliveryService.refresh).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.certificates import check_instance_id
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.delivery.service import DeliveryService
from gatewaycerts.core.ids import new_id
from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.errors import (
    AuthenticationError,
    GatewayKeyNotFoundError,
    QuotaExceededError,
    StoreUnavailableError,
)
from gatewaycerts.domain.models import Action, Principal, Role
from gatewaycerts.store.interfaces import GatewayKeyStore

KEY_PREFIX = "gk_"
_KEY_TEXT = re.compile(r"gk_([0-9a-f]{32})_([A-Za-z0-9_-]{43})")
_ID = re.compile(r"[0-9a-f]{32}")
SUBJECT_PREFIX = "gateway-key:"
CACHE_SECONDS = 300.0
MAX_KEYS_PER_INSTANCE = 20
MAX_REMEMBERED = 10_000
_INVALID = "Incorrect token or token resolution failed"


def is_gateway_key(credential: str) -> bool:
    return credential.startswith(KEY_PREFIX)


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii")).digest()


class GatewayKeyService:
    def __init__(
        self,
        store: GatewayKeyStore,
        delivery: DeliveryService,
        *,
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_id,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._delivery = delivery
        self._audit = audit or AuditLog(None)
        self._clock = clock
        self._new_id = new_id
        self._monotonic = monotonic
        self._cache: dict[str, tuple[GatewayKey, float]] = {}
        # Key texts that verified, so a gateway's next request skips the parse and the hash; valid only
        # while the key itself is in `_cache` (a revocation or a project change drops it there). Each with its
        # key's id, the `_cache` entry to check.
        self._verified: dict[str, tuple[Principal, str]] = {}
        delivery.on_project_change(self.forget_project)
        delivery.principal_check = self.check_principal

    # -- management (admins) ----------------------------------------------------------------------

    async def create(self, principal: Principal, project_id: str, instance_id: str) -> tuple[GatewayKey, str]:
        """A new key; its text is returned here and never again."""
        authorize(principal, project_id, Action.MANAGE_GATEWAY_KEYS)
        check_instance_id(instance_id)
        if len(await self._store.list_keys(project_id, instance_id)) >= MAX_KEYS_PER_INSTANCE:
            raise QuotaExceededError(
                f"an instance has at most {MAX_KEYS_PER_INSTANCE} gateway keys; revoke one first", field="instance_id"
            )
        secret = secrets.token_urlsafe(32)
        key = GatewayKey(
            id=self._new_id(),
            project_id=project_id,
            instance_id=instance_id,
            secret_sha256=_digest(secret),
            create_time=self._clock(),
        )
        await self._store.insert_key(key)
        await self._audit.record(
            principal, project_id, "gateway.key.create", "gateway_key", key.id, instance_id=instance_id
        )
        return key, f"{KEY_PREFIX}{key.id}_{secret}"

    async def list(self, principal: Principal, project_id: str, instance_id: str) -> list[GatewayKey]:
        authorize(principal, project_id, Action.MANAGE_GATEWAY_KEYS)
        check_instance_id(instance_id)
        return await self._store.list_keys(project_id, instance_id)

    async def delete(self, principal: Principal, project_id: str, instance_id: str, key_id: str) -> None:
        authorize(principal, project_id, Action.MANAGE_GATEWAY_KEYS)
        check_instance_id(instance_id)
        if not _ID.fullmatch(key_id) or not await self._store.delete_key(project_id, instance_id, key_id):
            shown = f", id:{key_id}" if _ID.fullmatch(key_id) else ""
            raise GatewayKeyNotFoundError(f"the gateway key does not exist{shown}")
        self._cache.pop(key_id, None)
        await self._audit.record(
            principal, project_id, "gateway.key.delete", "gateway_key", key_id, instance_id=instance_id
        )

    # -- authentication (gateways) ----------------------------------------------------------------

    def remembered(self, credential: str) -> Principal | None:
        """The principal of a key text that verified against a key still remembered (`authenticate`'s first
        check, without a coroutine: a gateway's every request after its first); None: call `authenticate`."""
        known = self._verified.get(credential)
        if known is not None:
            cached = self._cache.get(known[1])
            if cached is not None and cached[1] > self._monotonic():
                return known[0]
        return None

    async def authenticate(self, credential: str) -> Principal:
        """The gateway principal of a key text; AuthenticationError for anything else (one message for all,
        so a caller learns nothing about which part was wrong)."""
        known = self.remembered(credential)
        if known is not None:
            return known  # this exact text verified against the key still remembered
        match = _KEY_TEXT.fullmatch(credential)
        if match is None:
            raise AuthenticationError(f"{_INVALID}: not a gateway key")
        key_id, secret = match.groups()
        now = self._monotonic()
        cached = self._cache.get(key_id)
        if cached is not None and cached[1] > now:
            key = cached[0]
        else:
            try:
                found = await self._load(key_id)
            except StoreUnavailableError:
                if cached is None:
                    raise
                # The store is down: the key as last verified stands, as the certificates do (a revocation
                # made meanwhile could not have been stored either).
                found = cached[0]
            if found is None:
                self._cache.pop(key_id, None)
                self._verified.pop(credential, None)
                raise AuthenticationError(_INVALID)
            key = found
            self._cache[key_id] = (key, now + CACHE_SECONDS)
        if not hmac.compare_digest(_digest(secret), key.secret_sha256):
            raise AuthenticationError(_INVALID)
        principal = Principal(
            subject=SUBJECT_PREFIX + key.id,
            projects=frozenset({key.project_id}),
            roles=frozenset({Role.GATEWAY}),
            instances=frozenset({key.instance_id}),
        )
        if len(self._verified) >= MAX_REMEMBERED:
            self._verified.clear()
        self._verified[credential] = (principal, key.id)
        return principal

    async def _load(self, key_id: str) -> GatewayKey | None:
        key = await self._store.get_key(key_id)
        if key is not None:
            # Followed from before the read: a revocation after it moves the counter the watcher compares.
            await self._delivery.watch_project(key.project_id)
            key = await self._store.get_key(key_id)
        return key

    def forget_project(self, project_id: str) -> None:
        """The project's keys may have changed on another replica: verify them against the store again."""
        for key_id in [k for k, (key, _) in self._cache.items() if key.project_id == project_id]:
            del self._cache[key_id]

    async def check_principal(self, principal: Principal) -> None:
        """For a long poll held across a change: a key principal is verified against the store again when its
        key was dropped from the cache meanwhile (revoked here, or its project changed elsewhere)."""
        if not principal.subject.startswith(SUBJECT_PREFIX):
            return
        key_id = principal.subject[len(SUBJECT_PREFIX) :]
        if key_id in self._cache:
            return
        key = await self._load(key_id)
        if key is None:
            raise AuthenticationError(f"{_INVALID}: the gateway key was revoked")
        self._cache[key_id] = (key, self._monotonic() + CACHE_SECONDS)
