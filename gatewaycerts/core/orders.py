"""OrderService: Barbican-style orders (key, asymmetric, certificate), the secrets and containers they
produce, and the CAs they can use; OrderWorker: the asynchronous side that claims and fulfils orders.

An order is fulfilled exactly once, with several workers on one store: a worker claims it with a
compare-and-swap (`claimed_by`, `claim_until` = a lease, `attempts` + 1) and completes it with another from
the claimed revision. Products get ids derived from (order, attempt), so an attempt that lost its lease or
crashed leaves nothing that the next attempt does not remove, and a completion that loses the race removes
its own products. A PENDING order whose lease ran out (a crashed worker, a stopped service) is claimed again.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from gatewaycerts.core import pagination
from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authorities import AuthorityService, is_uuid, new_uuid
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor
from gatewaycerts.core.issuance import PrivateCertificateService, csr_subject
from gatewaycerts.core.loops import BackgroundLoop
from gatewaycerts.core.order_meta import (
    AsymmetricSpec,
    CertificateSpec,
    KeySpec,
    asymmetric_spec,
    certificate_spec,
    invalid,
    key_spec,
    order_type,
)
from gatewaycerts.core.validity import SUBORDINATE_CAP_YEARS, ValidityRequest, resolve_validity
from gatewaycerts.domain.audit import SYSTEM_ORDER_WORKER
from gatewaycerts.domain.errors import (
    ConflictError,
    ContainerNotFoundError,
    DomainError,
    InvalidInputError,
    NotAcceptableError,
    NotFoundError,
    OrderNotFoundError,
    SecretNotFoundError,
    StoreUnavailableError,
)
from gatewaycerts.domain.models import Action, Page, Principal
from gatewaycerts.domain.orders import Container, ContainerType, Order, OrderStatus, OrderType, Secret, SecretType
from gatewaycerts.domain.pca import Authority, DistinguishedName, PcaQuery, SanType, SubjectAltName
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.authority import CsrFacts, inspect_csr, new_key_pem, public_key_pem
from gatewaycerts.pki.keypair import csr_pem_from_request_data, generate_key_pair, parse_subject_dn
from gatewaycerts.pki.keypair import public_key_pem as checked_public_key_pem
from gatewaycerts.pki.profiles import validate_sans
from gatewaycerts.store.interfaces import OrderStore

log = logging.getLogger("gatewaycerts.orders")

LEASE = timedelta(seconds=60)
DEFAULT_LIMIT, MAX_LIMIT = 10, 100
PEM_TEXT = "text/plain"
OCTET_STREAM = "application/octet-stream"
_PRODUCTS = uuid.UUID("6f1d3b0e-8a41-4c55-9a57-2f7b4f3c9e10")  # namespace of derived product ids
_ROLES = ("secret", "private_key", "public_key", "private_key_passphrase", "certificate", "intermediates")
MAX_REASON = 255
_MISSING: dict[str, type[NotFoundError]] = {
    "order": OrderNotFoundError,
    "secret": SecretNotFoundError,
    "container": ContainerNotFoundError,
}


def product_id(order: Order, role: str, attempt: int | None = None) -> str:
    return str(uuid.uuid5(_PRODUCTS, f"{order.id}/{order.attempts if attempt is None else attempt}/{role}"))


def secret_context(project_id: str, secret_id: str) -> str:
    return f"secret:{project_id}:{secret_id}"


def order_context(project_id: str, order_id: str) -> str:
    return f"order:{project_id}:{order_id}"


def page_bounds(offset: int | None, limit: int | None) -> tuple[int, int]:
    return pagination.page_bounds(offset, limit, default_limit=DEFAULT_LIMIT, max_limit=MAX_LIMIT)


def error_code(exc: DomainError) -> str:
    """The HTTP status an order's error_status_code records for a failure found while processing it."""
    return "404" if isinstance(exc, NotFoundError) else "400"


class OrderService:
    def __init__(
        self,
        store: OrderStore,
        vault: KeyVault,
        authorities: AuthorityService,
        issuance: PrivateCertificateService,
        *,
        executor: Executor | None = None,
        clock: Clock = system_clock,
        new_id: Callable[[], str] = new_uuid,
        on_created: Callable[[], None] | None = None,
        on_issued: Callable[[str], None] | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self._authorities = authorities
        self._issuance = issuance
        self._executor = executor
        self._clock = clock
        self._new_id = new_id
        self.on_created = on_created or (lambda: None)
        self._on_issued = on_issued or (lambda kind: None)
        self._audit = audit or AuditLog(None)

    # -- orders -----------------------------------------------------------------------------------

    async def create(self, principal: Principal, project_id: str, type_: Any, meta: Any) -> Order:
        authorize(principal, project_id, Action.WRITE)
        kind = order_type(type_)
        if meta is None:
            raise InvalidInputError("Missing property 'meta'", field="meta")
        if not isinstance(meta, Mapping):
            raise InvalidInputError("Invalid property 'meta': must be an object", field="meta")
        now = self._clock()
        echoed: dict[str, Any] = dict(meta)
        private: dict[str, str] = {}
        if kind is OrderType.KEY:
            key_spec(meta, now)
        elif kind is OrderType.ASYMMETRIC:
            spec = asymmetric_spec(meta, now)
            if spec.passphrase:
                private["pass_phrase"] = spec.passphrase
            # never echoed: the pass phrase travels encrypted beside the order
            echoed.pop("pass_phrase", None)
            echoed.pop("passphrase", None)
        else:
            try:
                await self._check_certificate(project_id, certificate_spec(meta, parse_subject_dn))
            except NotFoundError as exc:  # a reference in meta, not the URL: the order is what is wrong
                raise InvalidInputError(exc.message, field=exc.field) from None
        order_id = self._new_id()
        order = Order(
            id=order_id,
            project_id=project_id,
            type=kind,
            meta=echoed,
            status=OrderStatus.PENDING,
            creator_id=principal.subject,
            create_time=now,
            update_time=now,
            encrypted_params=(
                self._vault.encrypt(json.dumps(private).encode(), context=order_context(project_id, order_id))
                if private
                else None
            ),
        )
        await self._store.insert_order(order)
        await self._audit.record(
            principal,
            project_id,
            "barbican.order.create",
            "order",
            order.id,
            object_name=_name(meta),
            status=order.status,
            type=kind,
            ca_id=_text(meta.get("ca_id")) if kind is OrderType.CERTIFICATE else None,
        )
        self.on_created()
        return order

    async def _check_certificate(self, project_id: str, spec: CertificateSpec) -> None:
        """What can be known now is checked now: the CA, the CSR, the source container."""
        await self._issuer(project_id, spec.ca_id)
        if spec.request_type == "simple-cmc":
            assert spec.request_data is not None
            csr = csr_pem_from_request_data(spec.request_data, "meta.request_data")
            facts = await in_executor(self._executor, inspect_csr, csr)
            cmc_subject(facts)
        elif spec.request_type == "stored-key":
            assert spec.container_id is not None
            await self._stored_public_key(project_id, spec.container_id)

    async def _found(self, kind: str, project_id: str, record_id: str) -> Any:
        """The project's order, secret or container `record_id`, or the dialect's not-found error."""
        fetch = {
            "order": self._store.get_order,
            "secret": self._store.get_secret,
            "container": self._store.get_container,
        }
        record = await fetch[kind](project_id, record_id) if is_uuid(record_id) else None
        if record is None:
            raise _MISSING[kind](f"Not Found. Sorry but your {kind} is in another castle.")
        return record

    async def _delete(self, principal: Principal, project_id: str, kind: str, record_id: str) -> None:
        authorize(principal, project_id, Action.WRITE)
        delete = {
            "order": self._store.delete_order,
            "secret": self._store.delete_secret,
            "container": self._store.delete_container,
        }
        if not (is_uuid(record_id) and await delete[kind](project_id, record_id)):
            raise _MISSING[kind](f"Not Found. Sorry but your {kind} is in another castle.")
        await self._audit.record(principal, project_id, f"barbican.{kind}.delete", kind, record_id)

    async def get(self, principal: Principal, project_id: str, order_id: str) -> Order:
        authorize(principal, project_id, Action.READ)
        return await self._found("order", project_id, order_id)

    async def list(
        self, principal: Principal, project_id: str, offset: int | None, limit: int | None
    ) -> tuple[Page[Order], int, int]:
        authorize(principal, project_id, Action.READ)
        off, lim = page_bounds(offset, limit)
        return await self._store.list_orders(project_id, off, lim), off, lim

    async def delete(self, principal: Principal, project_id: str, order_id: str) -> None:
        await self._delete(principal, project_id, "order", order_id)

    # -- secrets and containers -------------------------------------------------------------------------

    async def get_secret(self, principal: Principal, project_id: str, secret_id: str) -> Secret:
        authorize(principal, project_id, Action.READ)
        return await self._found("secret", project_id, secret_id)

    async def secret_payload(
        self, principal: Principal, project_id: str, secret_id: str, accept: str | None
    ) -> tuple[bytes, str]:
        """(payload, content type). Reading key material is a write-level permission, never a viewer's."""
        authorize(principal, project_id, Action.WRITE)
        secret: Secret = await self._found("secret", project_id, secret_id)
        content_type = negotiate(accept, secret.content_type)
        payload = self._vault.decrypt(secret.encrypted_payload, context=secret_context(project_id, secret.id))
        # A read, but of key material: the trail says who took which secret (never the payload itself).
        await self._audit.record(
            principal,
            project_id,
            "barbican.secret.read_payload",
            "secret",
            secret.id,
            object_name=secret.name,
            secret_type=secret.secret_type,
            content_type=content_type,
        )
        return payload, content_type

    async def delete_secret(self, principal: Principal, project_id: str, secret_id: str) -> None:
        await self._delete(principal, project_id, "secret", secret_id)

    async def get_container(self, principal: Principal, project_id: str, container_id: str) -> Container:
        authorize(principal, project_id, Action.READ)
        return await self._found("container", project_id, container_id)

    async def delete_container(self, principal: Principal, project_id: str, container_id: str) -> None:
        await self._delete(principal, project_id, "container", container_id)

    # -- CAs ----------------------------------------------------------------------------------------

    async def list_cas(
        self, principal: Principal, project_id: str, offset: int | None, limit: int | None
    ) -> tuple[Page[Authority], int, int]:
        off, lim = page_bounds(offset, limit)
        return await self._authorities.list(principal, project_id, PcaQuery(), off, lim), off, lim

    async def get_ca(self, principal: Principal, project_id: str, ca_id: str) -> Authority:
        return await self._authorities.get(principal, project_id, ca_id)

    async def set_preferred_ca(self, principal: Principal, project_id: str, ca_id: str) -> None:
        authorize(principal, project_id, Action.MANAGE_CA)
        ca = await self._issuance.issuer(project_id, ca_id, field="ca_id")
        await self._store.set_preferred_ca(project_id, ca.id)
        await self._audit.record(
            principal,
            project_id,
            "barbican.ca.set_preferred",
            "private_ca",
            ca.id,
            object_name=ca.distinguished_name.common_name,
        )

    async def preferred_ca(self, principal: Principal, project_id: str) -> Authority:
        authorize(principal, project_id, Action.READ)
        ca_id = await self._store.preferred_ca(project_id)
        if ca_id is None:
            raise NotFoundError("the project has no preferred CA; set one with POST /v1/cas/{ca_id}/set-preferred")
        return await self._authorities.load(project_id, ca_id)

    async def _issuer(self, project_id: str, ca_id: str | None) -> Authority:
        """meta.ca_id, else the project's preferred CA, else its only CA that can issue."""
        if ca_id:
            return await self._issuance.issuer(project_id, ca_id, field="meta.ca_id")
        preferred = await self._store.preferred_ca(project_id)
        if preferred:
            return await self._issuance.issuer(project_id, preferred, field="meta.ca_id")
        candidates = await self._authorities.issuing_authorities(project_id, 2)
        if len(candidates) == 1:
            return await self._issuance.issuer(project_id, candidates[0].id, field="meta.ca_id")  # the full record
        raise invalid(
            "ca_id",
            "is required: the project has "
            + ("no CA that can issue" if not candidates else "several CAs and no preferred one")
            + "; give meta.ca_id or set a preferred CA with POST /v1/cas/{ca_id}/set-preferred",
        )

    # -- fulfilment (the worker's side) -------------------------------------------------------------------

    async def fulfil(self, order: Order) -> Order:
        """Produce what the order asks for (attempt `order.attempts`); the order as it should be stored:
        ACTIVE with its secret or container, or ERROR with the reason. Store outages propagate."""
        await self.remove_products(order, range(1, order.attempts))
        now = self._clock()
        try:
            if order.type is OrderType.KEY:
                return replace(order, status=OrderStatus.ACTIVE, secret_id=await self._make_key(order, now))
            if order.type is OrderType.ASYMMETRIC:
                container_id = await self._make_key_pair(order, now)
            else:
                container_id = await self._make_certificate(order, now)
            return replace(order, status=OrderStatus.ACTIVE, container_id=container_id)
        except StoreUnavailableError:
            raise
        except DomainError as exc:
            await self.remove_products(order, [order.attempts])
            return replace(
                order,
                status=OrderStatus.ERROR,
                error_status_code=error_code(exc),
                error_reason=exc.message[:MAX_REASON],
            )

    async def record_outcome(self, order: Order, worker_id: str) -> None:
        """The audit event of an order the worker has completed (ACTIVE) or failed (ERROR) and stored."""
        failed = order.status is OrderStatus.ERROR
        await self._audit.record(
            SYSTEM_ORDER_WORKER,
            order.project_id,
            "barbican.order.fail" if failed else "barbican.order.complete",
            "order",
            order.id,
            object_name=_name(order.meta),
            status=order.status,
            type=order.type,
            on_behalf_of=order.creator_id,
            worker=worker_id,
            attempt=order.attempts,
            secret_id=order.secret_id,
            container_id=order.container_id,
            error_status_code=order.error_status_code if failed else None,
            error_reason=order.error_reason if failed else None,
        )

    async def remove_products(self, order: Order, attempts: Iterable[int]) -> None:
        for attempt in attempts:
            await self._store.delete_container(order.project_id, product_id(order, "container", attempt))
            for role in _ROLES:
                await self._store.delete_secret(order.project_id, product_id(order, role, attempt))

    async def _secret(
        self,
        order: Order,
        role: str,
        payload: bytes,
        secret_type: SecretType,
        content_type: str,
        now: datetime,
        **attrs: Any,
    ) -> str:
        secret_id = product_id(order, role)
        await self._store.put_secret(
            Secret(
                id=secret_id,
                project_id=order.project_id,
                name=attrs.pop("name", None),
                secret_type=secret_type,
                content_type=content_type,
                encrypted_payload=self._vault.encrypt(payload, context=secret_context(order.project_id, secret_id)),
                creator_id=order.creator_id,
                create_time=now,
                **attrs,
            )
        )
        return secret_id

    async def _container(
        self, order: Order, kind: ContainerType, refs: list[tuple[str, str]], now: datetime, name: str | None
    ) -> str:
        container_id = product_id(order, "container")
        await self._store.put_container(
            Container(container_id, order.project_id, name, kind, order.creator_id, now, tuple(refs))
        )
        return container_id

    async def _make_key(self, order: Order, now: datetime) -> str:
        spec: KeySpec = key_spec(order.meta, order.create_time)
        return await self._secret(
            order,
            "secret",
            os.urandom(spec.bit_length // 8),
            SecretType.SYMMETRIC,
            OCTET_STREAM,
            now,
            name=spec.name,
            algorithm=spec.algorithm,
            bit_length=spec.bit_length,
            mode=spec.mode,
            expiration=spec.expiration,
        )

    def _private_params(self, order: Order) -> dict[str, str]:
        if order.encrypted_params is None:
            return {}
        raw = self._vault.decrypt(order.encrypted_params, context=order_context(order.project_id, order.id))
        return json.loads(raw)

    async def _make_key_pair(self, order: Order, now: datetime) -> str:
        spec: AsymmetricSpec = asymmetric_spec(order.meta, order.create_time)
        passphrase = self._private_params(order).get("pass_phrase")
        private, public = await in_executor(
            self._executor, generate_key_pair, spec.algorithm, spec.bit_length, passphrase
        )
        attrs = {"name": spec.name, "algorithm": spec.algorithm, "bit_length": spec.bit_length}
        attrs["expiration"] = spec.expiration
        refs = [
            (
                "private_key",
                await self._secret(order, "private_key", private, SecretType.PRIVATE, PEM_TEXT, now, **attrs),
            ),
            ("public_key", await self._secret(order, "public_key", public, SecretType.PUBLIC, PEM_TEXT, now, **attrs)),
        ]
        if passphrase:
            secret_id = await self._secret(
                order,
                "private_key_passphrase",
                passphrase.encode(),
                SecretType.PASSPHRASE,
                PEM_TEXT,
                now,
                name=spec.name,
            )
            refs.append(("private_key_passphrase", secret_id))
        return await self._container(order, ContainerType.RSA, refs, now, spec.name)

    async def _stored_public_key(self, project_id: str, container_id: str) -> tuple[Container, bytes]:
        container = await self._store.get_container(project_id, container_id)
        if container is None:
            raise ContainerNotFoundError(
                "Invalid property 'meta.container_ref': no such container in this project", field="meta.container_ref"
            )
        if container.type is not ContainerType.RSA:
            raise invalid("container_ref", "must be an rsa container (public_key, private_key)")
        refs = dict(container.secret_refs)
        secret = await self._store.get_secret(project_id, refs.get("public_key", ""))
        if secret is None:
            raise invalid("container_ref", "the container's public_key secret no longer exists")
        pem = self._vault.decrypt(secret.encrypted_payload, context=secret_context(project_id, secret.id))
        return container, checked_public_key_pem(pem, "meta.container_ref")

    async def _make_certificate(self, order: Order, now: datetime) -> str:
        spec = certificate_spec(order.meta, parse_subject_dn)
        ca = await self._issuer(order.project_id, spec.ca_id)
        days = spec.validity_days or spec.profile.validity_days
        not_before, not_after = self._validity(ca, days, now)
        refs: list[tuple[str, str]] = []
        key_pem: bytes | None = None
        if spec.request_type == "simple-cmc":
            assert spec.request_data is not None
            csr = csr_pem_from_request_data(spec.request_data, "meta.request_data")
            facts = await in_executor(self._executor, inspect_csr, csr)
            subject, sans, public_pem = cmc_subject(facts), facts.sans, facts.public_key_pem
        elif spec.request_type == "stored-key":
            assert spec.container_id is not None and spec.subject is not None
            source, public_pem = await self._stored_public_key(order.project_id, spec.container_id)
            subject, sans = spec.subject, ()
            refs = [(n, i) for n, i in source.secret_refs if n in ("private_key", "private_key_passphrase")]
        else:
            assert spec.subject is not None and spec.key_algorithm is not None
            key_pem = await in_executor(self._executor, new_key_pem, spec.key_algorithm)
            public_pem = await in_executor(self._executor, public_key_pem, key_pem)
            subject, sans = spec.subject, spec.sans
        if not sans and spec.profile.extended_key_usage.server_auth:
            sans = host_name_of(subject)
        profile = self._issuance.key_profile(
            ca,
            public_pem,
            subject,
            sans,
            not_before,
            not_after,
            extended_key_usage=spec.profile.extended_key_usage,
        )
        cert_pem, _serial = await self._issuance.sign(ca, profile, public_key_pem=public_pem)
        self._on_issued("order")
        if key_pem is not None:
            refs.append(
                (
                    "private_key",
                    await self._secret(
                        order, "private_key", key_pem, SecretType.PRIVATE, PEM_TEXT, now, name=spec.name
                    ),
                )
            )
        certificate = await self._secret(
            order, "certificate", cert_pem.encode(), SecretType.CERTIFICATE, PEM_TEXT, now, name=spec.name
        )
        chain = ((ca.certificate_pem or "") + ca.chain_pem).encode()
        intermediates = await self._secret(
            order, "intermediates", chain, SecretType.CERTIFICATE, PEM_TEXT, now, name=spec.name
        )
        refs = [("certificate", certificate), ("intermediates", intermediates), *refs]
        return await self._container(order, ContainerType.CERTIFICATE, refs, now, spec.name)

    def _validity(self, ca: Authority, days: int, now: datetime) -> tuple[datetime, datetime]:
        end = now + timedelta(days=days)
        if ca.not_after is not None and end > ca.not_after:
            end = ca.not_after  # a profile's default never outlives the CA
        return resolve_validity(
            ValidityRequest(None, None, not_after=end),
            now,
            cap_years=SUBORDINATE_CAP_YEARS,
            issuer_not_before=ca.not_before,
            issuer_not_after=ca.not_after,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(meta: Mapping[str, Any]) -> str | None:
    """An order's name is the one its meta gives its products (a client's label, never secret)."""
    return _text(meta.get("name"))


def cmc_subject(facts: CsrFacts) -> DistinguishedName:
    """The subject of a simple-cmc request: the CSR's, held to the rules of every CSR issuance (a CN)."""
    try:
        return csr_subject(facts, facts.sans)
    except InvalidInputError as exc:
        raise invalid("request_data", exc.message) from None


def host_name_of(subject: DistinguishedName) -> tuple[SubjectAltName, ...]:
    """The CN as a DNS name, when it is one: a server certificate without a SAN is refused by TLS clients."""
    san = SubjectAltName(SanType.DNS, subject.common_name)
    try:
        validate_sans((san,))
    except InvalidInputError:
        return ()
    return (san,) if "." in subject.common_name else ()


def negotiate(accept: str | None, content_type: str) -> str:
    """The representation of a secret payload for an Accept header: its own type, or its raw bytes."""
    if not accept:
        return content_type
    offered = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    main = content_type.split("/")[0]
    for media in offered:
        if media in ("*/*", content_type, f"{main}/*"):
            return content_type
        if media == OCTET_STREAM:
            return OCTET_STREAM
    raise NotAcceptableError(f"the secret's payload is {content_type}; Accept {accept} cannot be served")


class OrderWorker(BackgroundLoop):
    """Claims PENDING orders from the store and fulfils them; several workers (replicas) may share a store."""

    loop_name = "order worker"

    def __init__(
        self,
        store: OrderStore,
        service: OrderService,
        *,
        worker_id: str | None = None,
        clock: Clock = system_clock,
        lease: timedelta = LEASE,
        poll_seconds: float = 1.0,
        batch: int = 16,
    ) -> None:
        self._store = store
        self._service = service
        self.worker_id = worker_id or f"{os.uname().nodename}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._lease = lease
        self._poll = poll_seconds
        self._batch = batch
        self._init_loop()

    async def run_once(self) -> int:
        """Fulfil every order that is claimable now; how many this worker completed."""
        done = 0
        while True:
            claimed_any = False
            for order in await self._store.claimable_orders(self._clock(), self._batch):
                claimed = await self._claim(order)
                if claimed is None:
                    continue
                claimed_any = True
                done += await self._complete(claimed)
            if not claimed_any:
                return done

    async def _claim(self, order: Order) -> Order | None:
        now = self._clock()
        held = replace(
            order,
            claimed_by=self.worker_id,
            claim_until=now + self._lease,
            attempts=order.attempts + 1,
            update_time=now,
        )
        try:
            return await self._store.replace_order(held, expected_revision=order.revision)
        except (ConflictError, OrderNotFoundError):
            return None  # another worker was faster, or the order was deleted

    async def _complete(self, claimed: Order) -> int:
        try:
            result = await self._service.fulfil(claimed)
        except StoreUnavailableError:
            raise  # the claim runs out and the order is claimed again
        except Exception:
            log.exception("order %s failed unexpectedly", claimed.id)
            await self._service.remove_products(claimed, [claimed.attempts])
            result = replace(
                claimed,
                status=OrderStatus.ERROR,
                error_status_code="500",
                error_reason="internal error while processing the order; the service log has the details",
            )
        final = replace(result, claim_until=None, update_time=self._clock())
        try:
            stored = await self._store.replace_order(final, expected_revision=claimed.revision)
        except (ConflictError, OrderNotFoundError):
            # The lease ran out and another worker owns the order now, or it was deleted: ours is not the result.
            await self._service.remove_products(claimed, [claimed.attempts])
            return 0
        await self._service.record_outcome(stored, self.worker_id)
        return 1

    def poll_seconds(self) -> float:
        return self._poll
