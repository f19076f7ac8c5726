"""KEK rotation (re-wrap every stored envelope under the active KEK) and the start-up KEK check.

Rotation finds the records still under an old KEK by the label every store keeps beside each envelope
(an indexed KEK id), pages through them by id and replaces each envelope with a compare-and-swap on the
envelope it read: a record re-encrypted or deleted meanwhile is skipped, never overwritten or re-created.
Nothing is remembered between runs except the labels themselves, so an interrupted run is finished by
running again: what was re-wrapped is no longer under the old KEK, what was not is found again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gatewaycerts.core.access_keys import access_key_context
from gatewaycerts.core.acme.service import eab_context as acme_eab_context
from gatewaycerts.core.certificates import apic_key_context
from gatewaycerts.core.issuance import certificate_key_context
from gatewaycerts.core.notifications import secret_context as webhook_secret_context
from gatewaycerts.core.orders import order_context, secret_context
from gatewaycerts.core.renewal.acme_client import eab_context as acme_account_eab_context
from gatewaycerts.core.renewal.acme_client import key_context as acme_account_key_context
from gatewaycerts.core.renewal.acme_client import tsig_context
from gatewaycerts.core.revocation import authority_key_context
from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome, StoredEnvelope
from gatewaycerts.keyvault import KeyVault, KeyVaultError, envelope_kek_id
from gatewaycerts.store.interfaces import (
    AccessKeyStore,
    AcmeClientStore,
    AcmeStore,
    CertificateStore,
    EnvelopeStore,
    NotificationStore,
    OrderStore,
    PcaStore,
)

log = logging.getLogger("gatewaycerts.kek")

CONTEXTS: dict[EnvelopeKind, Callable[[str, str], str]] = {
    EnvelopeKind.APIC_CERTIFICATE: apic_key_context,
    EnvelopeKind.AUTHORITY: authority_key_context,
    EnvelopeKind.ISSUED_CERTIFICATE: certificate_key_context,
    EnvelopeKind.SECRET: secret_context,
    EnvelopeKind.ORDER: order_context,
    EnvelopeKind.ACCESS_KEY: access_key_context,
    EnvelopeKind.WEBHOOK_SECRET: webhook_secret_context,
    EnvelopeKind.ACME_ACCOUNT_KEY: acme_account_key_context,
    EnvelopeKind.ACME_ACCOUNT_EAB: acme_account_eab_context,
    EnvelopeKind.DNS_UPDATE_TSIG: tsig_context,
}
# Kinds whose envelope context names a parent beside the record (StoredEnvelope.scope): (project, scope, id).
SCOPED_CONTEXTS: dict[EnvelopeKind, Callable[[str, str, str], str]] = {
    EnvelopeKind.ACME_EAB_KEY: acme_eab_context,
}
CANARY = b"gatewaycerts key-encryption key canary"
DEFAULT_BATCH = 100
MAX_PASSES = 5  # a pass that lost races to concurrent writers is followed by another for what they left


def canary_context(kek_id: str) -> str:
    return f"kek-canary:{kek_id}"


def context_of(env: StoredEnvelope) -> str:
    if env.kind in SCOPED_CONTEXTS:
        return SCOPED_CONTEXTS[env.kind](env.project_id, env.scope or "", env.record_id)
    return CONTEXTS[env.kind](env.project_id, env.record_id)


class KekCheckError(KeyVaultError):
    """The configured KEKs cannot serve this database (missing, or other key bytes under a stored id)."""


@dataclass(frozen=True, slots=True)
class EnvelopeStores:
    certificates: CertificateStore
    pca: PcaStore
    orders: OrderStore
    access_keys: AccessKeyStore | None = None  # None: a caller that opened no access-key store (older callers)
    notifications: NotificationStore | None = None  # webhook secrets; None: a caller that opened none
    acme_client: AcmeClientStore | None = None  # ACME client account keys, their EAB HMACs, TSIG secrets
    acme: AcmeStore | None = None  # the ACME server's EAB HMAC keys

    def by_kind(self) -> list[tuple[EnvelopeKind, EnvelopeStore]]:
        kinds: list[tuple[EnvelopeKind, EnvelopeStore]] = [
            (EnvelopeKind.APIC_CERTIFICATE, self.certificates),
            (EnvelopeKind.AUTHORITY, self.pca),
            (EnvelopeKind.ISSUED_CERTIFICATE, self.pca),
            (EnvelopeKind.SECRET, self.orders),
            (EnvelopeKind.ORDER, self.orders),
        ]
        if self.access_keys is not None:
            kinds.append((EnvelopeKind.ACCESS_KEY, self.access_keys))
        if self.notifications is not None:
            kinds.append((EnvelopeKind.WEBHOOK_SECRET, self.notifications))
        if self.acme_client is not None:
            kinds.append((EnvelopeKind.ACME_ACCOUNT_KEY, self.acme_client))
            kinds.append((EnvelopeKind.ACME_ACCOUNT_EAB, self.acme_client))
            kinds.append((EnvelopeKind.DNS_UPDATE_TSIG, self.acme_client))
        if self.acme is not None:
            kinds.append((EnvelopeKind.ACME_EAB_KEY, self.acme))
        return kinds


@dataclass(slots=True)
class KindReport:
    kind: EnvelopeKind
    rewrapped: int = 0
    gone: int = 0  # deleted while the rotation ran: skipped, stays deleted
    remaining: int = 0  # still under an old KEK (or not labelled yet) when the run ended
    remaining_by_kek: dict[str, int] = field(default_factory=dict)  # "?" for records not labelled yet
    changed_ids: set[str] = field(default_factory=set)
    failed_ids: set[str] = field(default_factory=set)

    @property
    def changed(self) -> int:
        """Skipped because a concurrent request changed the record (and no later pass re-wrapped it)."""
        return len(self.changed_ids)

    @property
    def failed(self) -> int:
        """Envelopes that do not decrypt with the configured KEKs (logged with their ids)."""
        return len(self.failed_ids)


@dataclass(slots=True)
class RotationReport:
    active_kek_id: str
    dry_run: bool
    kinds: dict[EnvelopeKind, KindReport]
    stopped_at_limit: bool = False

    @property
    def remaining(self) -> int:
        return sum(k.remaining for k in self.kinds.values())

    @property
    def done(self) -> bool:
        """Nothing is left under an old KEK: the old KEKs may be removed."""
        return self.remaining == 0 and not any(k.failed for k in self.kinds.values())


BeforeRewrap = Callable[[list[StoredEnvelope]], Awaitable[None]]


class _Stop(Exception):
    pass


class KekRotation:
    """Re-wraps every envelope that is not under the vault's active KEK.

    `before_rewrap` runs after a batch is read and before its compare-and-swaps (tests change records
    there to exercise the races); `on_batch` gets the kind's report after every batch (progress).
    """

    def __init__(
        self,
        stores: EnvelopeStores,
        vault: KeyVault,
        *,
        batch_size: int = DEFAULT_BATCH,
        before_rewrap: BeforeRewrap | None = None,
        on_batch: Callable[[KindReport], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._stores = stores
        self._vault = vault
        self._batch = batch_size
        self._before_rewrap = before_rewrap
        self._on_batch = on_batch or (lambda report: None)

    async def _old_labels(self, kind: EnvelopeKind, store: EnvelopeStore) -> list[str | None]:
        labels = [s.kek_id for s in await store.envelope_samples(kind)]
        return [label for label in labels if label != self._vault.active_kek_id]

    async def count_remaining(self, report: RotationReport) -> None:
        for kind, store in self._stores.by_kind():
            kind_report = report.kinds[kind]
            kind_report.remaining_by_kek = {}
            for label in await self._old_labels(kind, store):
                n = await store.count_envelopes(kind, label)
                if n:
                    kind_report.remaining_by_kek["?" if label is None else label] = n
            kind_report.remaining = sum(kind_report.remaining_by_kek.values())

    async def run(self, *, dry_run: bool = False, limit: int | None = None) -> RotationReport:
        """Re-wrap (or with dry_run only count) what is not under the active KEK; `limit` caps the records
        handled in this run (the next run continues)."""
        report = RotationReport(
            active_kek_id=self._vault.active_kek_id,
            dry_run=dry_run,
            kinds={kind: KindReport(kind) for kind, _ in self._stores.by_kind()},
        )
        if not dry_run:
            budget = [limit]
            try:
                for _ in range(MAX_PASSES):
                    raced = 0
                    for kind, store in self._stores.by_kind():
                        raced += await self._pass(kind, store, report.kinds[kind], budget)
                    if not raced:
                        break
            except _Stop:
                report.stopped_at_limit = True
        await self.count_remaining(report)
        return report

    async def _pass(
        self, kind: EnvelopeKind, store: EnvelopeStore, report: KindReport, budget: list[int | None]
    ) -> int:
        """One keyset walk over each old label of `kind`; returns how many compare-and-swaps lost a race."""
        raced = 0
        for label in await self._old_labels(kind, store):
            after = ""
            while True:
                if budget[0] is not None and budget[0] <= 0:
                    raise _Stop
                size = self._batch if budget[0] is None else min(self._batch, budget[0])
                batch = await store.envelopes(kind, label, after, size)
                if not batch:
                    break
                after = batch[-1].record_id
                if budget[0] is not None:
                    budget[0] -= len(batch)
                if self._before_rewrap is not None:
                    await self._before_rewrap(batch)
                raced += await self._rewrap_batch(store, batch, report)
                self._on_batch(report)
                if len(batch) < size:
                    break
        return raced

    async def _rewrap_batch(self, store: EnvelopeStore, batch: list[StoredEnvelope], report: KindReport) -> int:
        items: list[tuple[StoredEnvelope, bytes]] = []
        for env in batch:
            if env.record_id in report.failed_ids:
                continue  # reported in an earlier pass; it will not decrypt now either
            try:
                items.append((env, self._vault.rewrap(env.envelope, context=context_of(env))))
            except KeyVaultError as exc:
                log.error(
                    "%s %s (project %s, KEK %r) does not decrypt: %s",
                    env.kind.value,
                    env.record_id,
                    env.project_id,
                    envelope_kek_id(env.envelope) or "?",
                    exc,
                )
                report.failed_ids.add(env.record_id)
        outcomes = await store.rewrap_envelopes(items, self._vault.active_kek_id)
        raced = 0
        for (env, _), outcome in zip(items, outcomes, strict=True):
            if outcome is RewrapOutcome.REWRAPPED:
                report.rewrapped += 1
                report.changed_ids.discard(env.record_id)
            elif outcome is RewrapOutcome.CHANGED:
                report.changed_ids.add(env.record_id)
                raced += 1
            elif outcome is RewrapOutcome.GONE:
                report.gone += 1
        return raced


async def check_keks(stores: EnvelopeStores, vault: KeyVault, *, record_canary: bool = True) -> None:
    """Refuse (KekCheckError) KEKs that cannot serve the stored envelopes, before anything is served.

    Cheap: one sample envelope per KEK id in use and kind (found through the stores' KEK label index) is
    decrypted, plus the canary of each configured KEK: a small envelope written the first time a KEK is
    the active one, which catches other key bytes under the same id before they wrap anything.
    """
    configured = set(vault.kek_ids)
    for kind, store in stores.by_kind():
        for sample in await store.envelope_samples(kind):
            kek_id = sample.kek_id if sample.kek_id is not None else envelope_kek_id(sample.envelope)
            if not kek_id:
                continue  # not an envelope of ours: nothing any KEK could do about it
            if kek_id not in configured:
                raise KekCheckError(
                    f"stored keys are wrapped by KEK {kek_id!r}, which is not configured; add it to "
                    "GATEWAYCERTS_KEK_FILE (or GATEWAYCERTS_KEK) again and keep it until `gatewaycerts rotate-kek` "
                    "reports nothing left under it"
                )
            try:
                vault.decrypt(sample.envelope, context=context_of(sample))
            except KeyVaultError:
                raise KekCheckError(
                    f"KEK {kek_id!r} does not decrypt the stored keys (checked {kind.value} {sample.record_id}): "
                    "the key configured under that id is not the one that wrapped them"
                ) from None
    canaries = await stores.certificates.kek_canaries()
    active = vault.active_kek_id
    if active not in canaries and record_canary:
        canaries[active] = await stores.certificates.add_kek_canary(
            active, vault.encrypt(CANARY, context=canary_context(active))
        )
    for kek_id in vault.kek_ids:
        envelope = canaries.get(kek_id)
        if envelope is None:
            continue
        try:
            ok = vault.decrypt(envelope, context=canary_context(kek_id)) == CANARY
        except KeyVaultError:
            ok = False
        if not ok:
            raise KekCheckError(
                f"KEK {kek_id!r} is not the key that this database's keys under that id were wrapped with "
                "(its canary does not decrypt): configure the same key bytes on every replica"
            )
