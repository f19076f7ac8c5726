"""The store Protocols the core depends on; adapters take and return domain objects only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gatewaycerts.domain.access_keys import AccessKey
from gatewaycerts.domain.acme import Account, AcmeCertificate, AcmeOrder, AcmePolicy, Authorization, EabKey
from gatewaycerts.domain.acme_client import AcmeAccount, ChallengeToken, DnsUpdateConfig
from gatewaycerts.domain.audit import AuditEvent, AuditQuery
from gatewaycerts.domain.delivery import GatewayKey
from gatewaycerts.domain.envelopes import EnvelopeKind, RewrapOutcome, StoredEnvelope
from gatewaycerts.domain.managed import ChainRevision, ManagedCertificate
from gatewaycerts.domain.models import Certificate, CertificateFilter, DeleteOutcome, Page
from gatewaycerts.domain.notifications import Delivery, ExpiringCertificate, Webhook
from gatewaycerts.domain.orders import Container, Order, Secret
from gatewaycerts.domain.pca import Authority, IssuedCertificate, PcaQuery, RevokedSerial, SerialStatus
from gatewaycerts.domain.requests import CertificateRequest


class EnvelopeStore(Protocol):
    """The key envelopes a store holds, for KEK rotation and the start-up KEK check.

    Every write of a record also stores the KEK id its envelope names (`keyvault.envelope_kek_id`) in an
    indexed field, so records under an old KEK are found by a query, never by decrypting everything.
    Each method takes an EnvelopeKind the store holds and raises ValueError for another.
    """

    async def envelopes(self, kind: EnvelopeKind, kek_id: str | None, after: str, limit: int) -> list[StoredEnvelope]:
        """Records of `kind` whose envelope is labelled `kek_id` (None: not labelled yet, envelope present),
        id greater than `after`, ascending id, at most `limit` (keyset pagination)."""

    async def envelope_samples(self, kind: EnvelopeKind) -> list[StoredEnvelope]:
        """One record per KEK label in use (the unlabelled, if any, count as one label: None); no others."""

    async def count_envelopes(self, kind: EnvelopeKind, kek_id: str | None) -> int:
        """How many records `envelopes(kind, kek_id, ...)` would page through."""

    async def rewrap_envelope(self, current: StoredEnvelope, envelope: bytes, kek_id: str) -> RewrapOutcome:
        """Replace the record's envelope with `envelope` (labelled `kek_id`) if it is still `current.envelope`.

        Only the envelope and its label change; fields changed concurrently are kept. CHANGED when the stored
        envelope differs (or the record is being changed right now), GONE when the record no longer exists:
        a deleted record is never re-created.
        """

    async def rewrap_envelopes(self, items: Sequence[tuple[StoredEnvelope, bytes]], kek_id: str) -> list[RewrapOutcome]:
        """rewrap_envelope for each (current, envelope) pair of one kind, in one round trip where the store
        can (one transaction on SQLite); the outcomes in the order of `items`."""


class ChangeStamps(Protocol):
    def change_stamp(self) -> object | None:
        """A value that stays equal exactly while nothing in the store changes, by any process (no query: cheap
        enough to ask on every request), or None when the store cannot tell. Something read after taking a stamp
        may be reused while the stamp is equal to it (core/stamped.py)."""


class CertificateStore(EnvelopeStore, ChangeStamps, Protocol):
    async def ensure_schema(self) -> None:
        """Create tables/collections and indexes; idempotent."""

    async def ping(self) -> None:
        """Raise StoreUnavailableError when the store cannot serve requests."""

    async def close(self) -> None: ...

    async def insert(self, cert: Certificate) -> None:
        """Raise DuplicateNameError when (project, scope, instance, name) is taken."""

    async def get(self, project_id: str, cert_id: str) -> Certificate | None: ...

    async def get_summary(self, project_id: str, cert_id: str) -> Certificate | None:
        """As get, as a summary: what list items carry (no chain, key, trusted root or bindings)."""

    async def list(self, project_id: str, flt: CertificateFilter, offset: int, limit: int) -> Page[Certificate]:
        """Newest first (create_time, then id, descending); items are summaries."""

    async def replace(self, cert: Certificate, *, expected_revision: int) -> Certificate:
        """Store `cert` with revision expected_revision + 1 if the stored revision is expected_revision.

        Raises ConflictError on a revision mismatch, CertificateNotFoundError when the record is gone,
        DuplicateNameError when the new name is taken.
        """

    async def delete_unbound(self, project_id: str, cert_id: str) -> DeleteOutcome:
        """Delete atomically, only while no domain is bound."""

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        """Per project: how many certificates have not_after before each of `boundaries` (ascending).

        Projects without a certificate before the last boundary are left out.
        """

    async def list_expiring(
        self, project_id: str, after: datetime, before: datetime, limit: int
    ) -> tuple[Certificate, ...]:
        """The project's certificates with after <= not_after < before, soonest first (then by id), at most
        `limit`; items are summaries."""

    async def kek_canaries(self) -> dict[str, bytes]:
        """The canary envelope stored for each KEK id that has wrapped keys in this database."""

    async def add_kek_canary(self, kek_id: str, envelope: bytes) -> bytes:
        """Store `envelope` as the canary of `kek_id` unless one exists; return the stored canary."""


class PcaStore(EnvelopeStore, ChangeStamps, Protocol):
    """The private CA registry: authorities, the certificates they issued, and serial reservations."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def reserve_serial(self, issuer_key: str, serial_number: str) -> None:
        """Record that `issuer_key` (a CA id, or a subject key id for a self-signed root) used a serial.

        Raises ConflictError when that serial was used already; serials stay unique per CA for ever.
        """

    async def insert_authority(self, ca: Authority) -> None: ...

    async def get_authority(self, project_id: str | None, ca_id: str) -> Authority | None:
        """project_id None looks the CA up in any project (only the public CRL endpoint does this)."""

    async def list_authorities(
        self, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int
    ) -> Page[Authority]: ...

    async def replace_authority(self, ca: Authority, *, expected_revision: int) -> Authority:
        """Compare-and-swap on revision; ConflictError on mismatch, AuthorityNotFoundError when gone."""

    async def insert_certificate(self, cert: IssuedCertificate) -> None: ...

    # True when insert_certificate_reserving_serial can store an audit event with the certificate (SQLite, on the
    # database of the audit store); False: it refuses one, and the caller records the event after the change.
    joins_audit: bool

    async def insert_certificate_reserving_serial(
        self, issuer_key: str, cert: IssuedCertificate, *, audit: AuditEvent | None = None
    ) -> bool:
        """Reserve `cert`'s serial under `issuer_key` (as reserve_serial) and insert `cert`, in one store round
        trip: False, with nothing stored, when the serial was used already (sign again with another);
        ConflictError when a certificate with this id exists (the serial may then stay reserved). `audit` (only
        where joins_audit): the event of this issuance, stored in the same transaction, both or neither."""

    async def get_certificate(self, project_id: str, cert_id: str) -> IssuedCertificate | None:
        """Deleted certificates (delete_time set) are invisible to get and list, but keep their serials."""

    async def list_certificates(
        self, project_id: str, query: PcaQuery, now: datetime, offset: int, limit: int
    ) -> Page[IssuedCertificate]: ...

    async def replace_certificate(self, cert: IssuedCertificate, *, expected_revision: int) -> IssuedCertificate:
        """Compare-and-swap on revision; ConflictError on mismatch, PrivateCertificateNotFoundError when gone."""

    async def revoked_serials(self, issuer_id: str) -> list[RevokedSerial]:
        """Serials revoked under `issuer_id`: its revoked certificates, its revoked subordinate CAs and the
        revoked certificates it signed for certificate requests (deleted records included)."""

    async def serial_status(self, issuer_id: str, serial_number: int) -> SerialStatus | None:
        """The status of a serial `issuer_id` signed (certificate, subordinate CA or signed request, deleted
        records included), revoked exactly when revoked_serials lists it; None when the CA never signed it."""

    async def count_expiring(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        """As CertificateStore.count_expiring, over issued certificates that are neither revoked nor deleted."""

    # -- certificate requests (the CSR review lifecycle) ---------------------------------------------

    async def insert_request(self, req: CertificateRequest) -> None:
        """Raise DuplicateRequestError when an Outstanding request of the project has the same CSR fingerprint."""

    async def get_request(self, project_id: str, request_id: str) -> CertificateRequest | None:
        """Deleted requests (delete_time set) are invisible to get and list."""

    async def list_requests(
        self, project_id: str, status: str | None, offset: int, limit: int
    ) -> Page[CertificateRequest]:
        """Newest first (create_time, then id, descending), optionally of one status."""

    async def replace_request(self, req: CertificateRequest, *, expected_revision: int) -> CertificateRequest:
        """Compare-and-swap on revision: ConflictError on mismatch, CertificateRequestNotFoundError when gone,
        DuplicateRequestError when the request becomes Outstanding again while another Outstanding request of
        the project has the same CSR."""

    async def count_outstanding_requests(self) -> dict[str, int]:
        """Per project, the Outstanding requests that are not deleted (projects with none are left out)."""

    async def count_expiring_requests(self, boundaries: Sequence[datetime]) -> dict[str, tuple[int, ...]]:
        """As count_expiring, over the certificates of Active requests that are not deleted."""


class OrderStore(EnvelopeStore, Protocol):
    """Asynchronous orders (Barbican style) and the secrets and containers they produce."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_order(self, order: Order) -> None: ...

    async def get_order(self, project_id: str, order_id: str) -> Order | None: ...

    async def list_orders(self, project_id: str, offset: int, limit: int) -> Page[Order]:
        """Newest first (create time, then id, descending)."""

    async def replace_order(self, order: Order, *, expected_revision: int) -> Order:
        """Compare-and-swap on revision: ConflictError on mismatch, OrderNotFoundError when gone."""

    async def delete_order(self, project_id: str, order_id: str) -> bool: ...

    async def claimable_orders(self, now: datetime, limit: int) -> list[Order]:
        """PENDING orders of every project that no live claim holds (claim_until unset or before `now`),
        oldest first. Claiming one is a replace_order with its revision."""

    async def put_secret(self, secret: Secret) -> None:
        """Insert, or overwrite a secret of the same id (a retried order attempt writes the same ids).

        Never interleaves with a rewrap_envelope of the same secret (the overwrite wins or comes after)."""

    async def get_secret(self, project_id: str, secret_id: str) -> Secret | None: ...

    async def delete_secret(self, project_id: str, secret_id: str) -> bool: ...

    async def put_container(self, container: Container) -> None:
        """Insert, or overwrite a container of the same id."""

    async def get_container(self, project_id: str, container_id: str) -> Container | None: ...

    async def delete_container(self, project_id: str, container_id: str) -> bool: ...

    async def set_preferred_ca(self, project_id: str, ca_id: str) -> None: ...

    async def preferred_ca(self, project_id: str) -> str | None: ...


class AuditStore(Protocol):
    """The audit trail: append-only events, listed per project newest first."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert(self, event: AuditEvent) -> None:
        """Store `event`; an event whose id is stored already is left as it is (a retried write is a no-op)."""

    async def list(self, project_id: str, query: AuditQuery, limit: int) -> tuple[AuditEvent, ...]:
        """Up to `limit` events of the project matching every filter of `query`, newest first (time, then id,
        descending), strictly after `query.after` in that order; each query is served by an index."""


class AccessKeyStore(EnvelopeStore, Protocol):
    """Access keys (AK/SK pairs): each secret is a KeyVault envelope (EnvelopeKind.ACCESS_KEY)."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert(self, key: AccessKey) -> None:
        """Raise ConflictError when the access id exists (in any project)."""

    async def get(self, access: str) -> AccessKey | None:
        """By access id alone, whatever its project (a signed request names the key before its project)."""

    async def list(self, project_id: str) -> list[AccessKey]:
        """The project's keys, oldest first (create_time, then access)."""

    async def replace(self, key: AccessKey, *, expected_revision: int) -> AccessKey:
        """Store the key's status and description with revision expected_revision + 1 if the stored revision is
        expected_revision (the secret is never changed here: only a rewrap re-encrypts it). ConflictError on a
        revision mismatch, AccessKeyNotFoundError when the key is gone."""

    async def delete(self, project_id: str, access: str) -> bool:
        """False when the project has no such key."""


class GatewayKeyStore(Protocol):
    """The keys gateways authenticate with (only their secrets' hashes)."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_key(self, key: GatewayKey) -> None:
        """Store a new key; also counts as a delivery change of its project (see DeliveryStore)."""

    async def get_key(self, key_id: str) -> GatewayKey | None:
        """The key of that id, in whatever project (the caller checks project and instance)."""

    async def list_keys(self, project_id: str, instance_id: str) -> list[GatewayKey]:
        """The instance's keys, oldest first."""

    async def delete_key(self, project_id: str, instance_id: str, key_id: str) -> bool:
        """Delete the key if it belongs to that project and instance (then a delivery change); False if absent."""


class DeliveryStore(Protocol):
    """What delivery to gateways reads besides the certificates: per-project change counters that every
    write of a bound certificate (and of a gateway key) moves, the bindings' uniqueness keys, and the record of
    which certificate revision was delivered to which instance."""

    async def ensure_schema(self) -> None:
        """Create tables/collections and indexes (and, on SQLite, the triggers that count certificate
        writes: run it after the certificate store's)."""

    async def close(self) -> None: ...

    async def bound_certificates(self, project_id: str) -> list[Certificate]:
        """Every certificate of the project with at least one domain bound, complete (chain, envelope)."""

    async def change_counters(self, project_ids: Sequence[str]) -> dict[str, int]:
        """The change counter of each project (a project never changed is left out)."""

    async def changed_certificates(self, project_id: str, after: int, latest: int) -> list[str] | None:
        """The ids of the certificates changed while the project's counter moved from `after` to `latest`
        (or beyond); None when the store cannot say (no log, or it was trimmed): reload the project."""

    async def certificates(self, project_id: str, cert_ids: Sequence[str]) -> list[Certificate]:
        """These certificates of the project, complete; ids that do not exist (any more) are left out."""

    async def mark_delivered(self, project_id: str, instance_id: str, cert_id: str, revision: int) -> bool:
        """Record that this revision of the certificate reached the instance; True only for the first record."""

    async def claim_binding_keys(
        self, project_id: str, cert_id: str, keys: Sequence[str], at: datetime
    ) -> dict[str, str]:
        """Make `cert_id` the holder of each key (instance|name|algorithm) it does not hold yet, claimed `at`;
        all or none. Returns {key: holder} for keys another certificate holds (then none is claimed)."""

    async def release_binding_keys(self, project_id: str, cert_id: str, keys: Sequence[str]) -> None:
        """Give up the keys `cert_id` holds among `keys`; keys of other holders are left alone."""

    async def take_over_binding_key(
        self, project_id: str, key: str, stale_holder: str, cert_id: str, claimed_before: datetime, at: datetime
    ) -> bool:
        """Move `key` to `cert_id` if `stale_holder` still holds it under a claim made before `claimed_before`."""


class NotificationStore(EnvelopeStore, Protocol):
    """Webhooks, the deliveries of events to them, and the expiry watch's notices (core/notifications.py).

    A delivery is claimed by `replace_delivery` from the revision that was read (the compare-and-swap every
    adapter makes atomic), so several replicas deliver each once; `due_deliveries` returns those whose
    `next_attempt` has come, which includes a claim whose lease ran out.
    """

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_webhook(self, hook: Webhook) -> None: ...

    async def get_webhook(self, project_id: str, webhook_id: str) -> Webhook | None: ...

    async def list_webhooks(self, project_id: str) -> list[Webhook]:
        """The project's webhooks, oldest first."""

    async def delete_webhook(self, project_id: str, webhook_id: str) -> bool:
        """Delete the webhook and its deliveries; False when the project has no such webhook."""

    async def insert_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        """Store new deliveries; one whose id exists already is left as it is (emitting twice is harmless).
        Returns how many were new."""

    async def due_deliveries(self, now: datetime, limit: int) -> list[Delivery]:
        """PENDING deliveries of every project with next_attempt <= now, soonest first, at most `limit`."""

    async def replace_delivery(self, delivery: Delivery, *, expected_revision: int) -> Delivery:
        """Store `delivery` with revision expected_revision + 1 if the stored one is at expected_revision.
        ConflictError on a mismatch, NotFoundError when it is gone."""

    async def get_delivery(self, project_id: str, delivery_id: str) -> Delivery | None: ...

    async def list_deliveries(self, project_id: str, webhook_id: str, offset: int, limit: int) -> Page[Delivery]:
        """The webhook's deliveries, newest first (create_time, then id, descending)."""

    async def count_pending(self) -> int:
        """PENDING deliveries of every project (the pending-deliveries gauge)."""

    async def expiring_certificates(
        self, after: datetime, before: datetime, cursor: str | None, limit: int
    ) -> tuple[list[ExpiringCertificate], str | None]:
        """APIC certificates of every project with after <= not_after < before, read from the certificates'
        not_after index in its order, at most `limit`; and the cursor of the next page (None: no more)."""

    async def seen_notices(self, keys: Sequence[str]) -> set[str]:
        """Which of these expiry-notice keys are recorded."""

    async def record_notice(self, key: str, at: datetime) -> bool:
        """Record an expiry-notice key; True only for the first record of it."""


class AcmeStore(EnvelopeStore, Protocol):
    """The ACME server's records (domain/acme.py), per CA. Changes are compare-and-swap on `revision`
    (ConflictError on a mismatch or a taken unique key, NotFoundError when gone); uniqueness is only ever
    decided by an insert (FerretDB-compatible: no transactions). EAB keys' HMAC keys are KEK envelopes
    (EnvelopeKind.ACME_EAB_KEY, scope: the CA)."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def get_policy(self, ca_id: str) -> AcmePolicy | None: ...

    async def put_policy(self, policy: AcmePolicy, *, expected_revision: int | None) -> AcmePolicy:
        """Insert (expected_revision None; ConflictError when one exists) or compare-and-swap."""

    async def insert_eab_key(self, key: EabKey) -> None: ...

    async def get_eab_key(self, ca_id: str, kid: str) -> EabKey | None: ...

    async def list_eab_keys(self, ca_id: str) -> list[EabKey]:
        """Oldest first."""

    async def replace_eab_key(self, key: EabKey, *, expected_revision: int) -> EabKey: ...

    async def insert_account(self, account: Account) -> None:
        """ConflictError when the CA has an account with the same key thumbprint."""

    async def get_account(self, ca_id: str, account_id: str) -> Account | None: ...

    async def account_by_thumbprint(self, ca_id: str, thumbprint: str) -> Account | None: ...

    async def replace_account(self, account: Account, *, expected_revision: int) -> Account:
        """A new thumbprint (key change) is taken first: ConflictError when another account has it."""

    async def insert_order(self, order: AcmeOrder, authorizations: Sequence[Authorization]) -> None:
        """The authorizations first, then the order (an order is never seen without them)."""

    async def get_order(self, ca_id: str, order_id: str) -> AcmeOrder | None: ...

    async def replace_order(self, order: AcmeOrder, *, expected_revision: int) -> AcmeOrder: ...

    async def list_orders(self, ca_id: str, account_id: str, after: str, limit: int) -> list[AcmeOrder]:
        """The account's orders, ascending id, ids greater than `after`."""

    async def get_authorization(self, ca_id: str, authz_id: str) -> Authorization | None: ...

    async def replace_authorization(self, authz: Authorization, *, expected_revision: int) -> Authorization: ...

    async def claimable_authorizations(self, now: datetime, limit: int) -> list[Authorization]:
        """Authorizations of every CA with a challenge in `processing` that no live claim holds (claim_until
        unset or before `now`), oldest first. Claiming one is a replace_authorization with its revision."""

    async def claimable_finalizations(self, now: datetime, limit: int) -> list[AcmeOrder]:
        """Orders of every CA in `processing` that no live finalizer holds (claim_until unset or before `now`),
        oldest first. Claiming one is a replace_order with its revision."""

    async def insert_certificate(self, cert: AcmeCertificate) -> None: ...

    async def get_certificate(self, ca_id: str, serial_number: str) -> AcmeCertificate | None: ...

    async def mark_replaced(self, ca_id: str, serial_number: str, order_id: str) -> bool:
        """Record that `order_id` replaces the certificate (ARI); False when an order did already."""

    async def use_nonce(self, nonce: bytes) -> bool:
        """Record `nonce` as used; False when it was used already (by any worker or replica). Its first 8
        bytes are its expiry (Unix seconds, big-endian), so that nonces sort by expiry (`purge_nonces`)."""

    async def purge_nonces(self, before: datetime) -> int:
        """Forget used nonces that expired before `before` (they fail their own expiry check)."""

    async def nonce_key(self, candidate: bytes) -> bytes:
        """The MAC key all replicas share for nonces: `candidate` when none is stored yet, else the stored one."""


class ManagedCertificateStore(Protocol):
    """Managed certificates (the renewal loop's records, keyed by the APIC certificate id) and the history of
    the chains each certificate held. Lives on the certificate store's database."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_managed(self, managed: ManagedCertificate) -> None:
        """Raise DuplicateNameError when a managed certificate of the project, scope and instance has the name."""

    async def get_managed(self, project_id: str, cert_id: str) -> ManagedCertificate | None: ...

    async def list_managed(self, project_id: str, offset: int, limit: int) -> Page[ManagedCertificate]:
        """Newest first (create_time, then id, descending)."""

    async def replace_managed(self, managed: ManagedCertificate, *, expected_revision: int) -> ManagedCertificate:
        """Compare-and-swap on revision: ConflictError on mismatch, CertificateNotFoundError when gone."""

    async def delete_managed(self, project_id: str, cert_id: str) -> bool: ...

    async def due_managed(self, now: datetime, limit: int) -> list[ManagedCertificate]:
        """Managed certificates of every project with due_at <= now and no live claim (claim_until unset or
        before `now`), soonest first; read through the due-time index. Claiming one is a replace_managed."""

    async def add_chain_revision(self, entry: ChainRevision) -> None:
        """Record the chain a certificate held at a revision; an entry stored already is left as it is."""

    async def chain_revisions(self, project_id: str, cert_id: str, limit: int) -> list[ChainRevision]:
        """The certificate's recorded chains, newest revision first, at most `limit`."""

    async def delete_chain_revisions(self, project_id: str, cert_id: str) -> None: ...


class AcmeClientStore(EnvelopeStore, Protocol):
    """The ACME client's records: per-project ACME accounts and DNS update configurations (secrets as KEK
    envelopes: EnvelopeKind.ACME_ACCOUNT_KEY, ACME_ACCOUNT_EAB, DNS_UPDATE_TSIG), and the http-01 tokens any
    replica's gateway route answers."""

    async def ensure_schema(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_account(self, account: AcmeAccount) -> None:
        """ConflictError when the id exists."""

    async def get_account(self, project_id: str, account_id: str) -> AcmeAccount | None: ...

    async def list_accounts(self, project_id: str) -> list[AcmeAccount]:
        """Oldest first (create_time, then id)."""

    async def delete_account(self, project_id: str, account_id: str) -> bool: ...

    async def insert_dns_config(self, config: DnsUpdateConfig) -> None:
        """ConflictError when the id exists."""

    async def get_dns_config(self, project_id: str, config_id: str) -> DnsUpdateConfig | None: ...

    async def list_dns_configs(self, project_id: str) -> list[DnsUpdateConfig]:
        """Oldest first (create_time, then id)."""

    async def delete_dns_config(self, project_id: str, config_id: str) -> bool: ...

    async def put_token(self, token: ChallengeToken) -> None:
        """Insert or overwrite the (project, token) record."""

    async def get_token(self, project_id: str, token: str) -> ChallengeToken | None:
        """The record as stored (expired ones too: the caller compares expire_time)."""

    async def delete_token(self, project_id: str, token: str) -> None: ...

    async def delete_expired_tokens(self, before: datetime) -> int:
        """Delete tokens whose expire_time is before `before`; how many."""
