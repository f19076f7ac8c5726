"""DeliveryService: the in-memory index of what each gateway instance receives, long polls, and the watch
that keeps the index in step with the store (and so with every other replica).

Per project the index holds the project's bound certificates as stored: chain PEM and the key *envelope*;
a private key is decrypted for each delivery and never kept in plain text. Projects are loaded on their
first delivery request and then followed by the watcher: every `poll_seconds` it reads the change counters
of the loaded projects (DeliveryStore.change_counters: one indexed read) and reloads those that moved.
A write through this process is applied at once by `certificate_changed` (CertificateService calls it after
the write returns), so a long poll on this replica wakes immediately and one on another within about
`poll_seconds` plus a reload.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NoReturn

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.delivery.index import InstanceIndex
from gatewaycerts.core.delivery.rules import (
    authorize_delivery,
    bindings_for,
    candidate_names,
    choose,
    normalise_server_name,
    parse_signature_schemes,
)
from gatewaycerts.domain.errors import (
    KeyUnavailableError,
    MissingParameterError,
    NoCertificateForNameError,
    StoreUnavailableError,
)
from gatewaycerts.domain.models import AlgorithmType, Certificate, Principal
from gatewaycerts.keyvault import KeyVault, KeyVaultError, ParsedEnvelope
from gatewaycerts.pki.keys import load_private_key, private_key_to_pkcs8_pem
from gatewaycerts.store.interfaces import DeliveryStore

log = logging.getLogger("gatewaycerts.delivery")

MAX_WAIT_SECONDS = 60.0
PEM_KEY_HEADER = b"-----BEGIN PRIVATE KEY-----"


def _key_context(project_id: str, cert_id: str) -> str:
    # The AAD the certificate service sealed the key with (core.certificates.apic_key_context).
    return f"apic-certificate:{project_id}:{cert_id}"


@dataclass(frozen=True, slots=True)
class DeliveredItem:
    """One certificate as an instance receives it: the names bound to it there with one client-verification
    setting (a certificate whose bindings differ in that setting is two items)."""

    cert: Certificate
    domains: tuple[str, ...]
    verify_client: bool

    @property
    def algorithm(self) -> AlgorithmType:
        return self.cert.info.algorithm_type


@dataclass(slots=True)
class InstanceView:
    version: str
    items: tuple[DeliveredItem, ...]
    names: dict[str, dict[AlgorithmType, DeliveredItem]]
    # Caddy's answers by its raw parameters (server name, signature schemes, cipher suites): the certificate
    # chosen, its chain ready as bytes and its key still as the envelope (None: nothing bound, a 404). Dropped
    # with the view on every change; bounded.
    answers: dict[tuple[str, str | None, str | None], _Ready | None] = field(default_factory=dict)
    lines: tuple[bytes, ...] = ()  # per item, what the version hashes (kept for _patch_view)


@dataclass(frozen=True, slots=True)
class _Ready:
    """A Caddy answer without its key: the chain as bytes (newline-terminated) and the key's envelope, parsed
    but still encrypted; the key is decrypted for each delivery and never kept in plain text."""

    cert: Certificate
    chain: bytes
    envelope: ParsedEnvelope | None  # None: the stored envelope is malformed (each delivery reports it)
    context: str


@dataclass(slots=True)
class _Project:
    certs: dict[str, Certificate]
    counter: int
    views: dict[str, InstanceView] = field(default_factory=dict)
    # What the held polls of each instance wait on: set (and replaced) when the instance's view may have changed
    waiting: dict[str, asyncio.Event] = field(default_factory=dict)
    # instance -> the ids of the certificates it receives, kept in step with `certs`
    index: InstanceIndex = field(default_factory=InstanceIndex)
    gen: int = 0  # local changes applied; a reload that raced one is dropped and redone
    dirty: bool = False  # read the store again at the next turn, even if the counter did not move
    full_reload: bool = False  # ... all of the project, not just what the change log names


@dataclass(frozen=True, slots=True)
class Bundle:
    version: str
    items: tuple[dict[str, Any], ...] | None  # None: unchanged since the client's version (304)
    stale_seconds: int


@dataclass(frozen=True, slots=True)
class CaddyAnswer:
    pem: bytes
    stale_seconds: int


@dataclass(frozen=True, slots=True)
class DocumentAnswer:
    version: str
    document: dict[str, Any]
    stale_seconds: int


def _order(cert: Certificate) -> tuple[datetime, str]:
    return (cert.create_time, cert.id)


def _items_of(cert: Certificate, instance_id: str) -> list[DeliveredItem]:
    """The certificate's items on the instance: one per client-verification setting, names sorted."""
    groups: dict[bool, list[str]] = {}
    for b in bindings_for(cert, instance_id):
        groups.setdefault(b.verified_client_certificate_enabled, []).append(b.url_domain)
    return [DeliveredItem(cert, tuple(sorted(domains)), verify) for verify, domains in sorted(groups.items())]


def _line(item: DeliveredItem) -> bytes:
    """What the view's version hashes of an item."""
    return f"{item.cert.id}|{item.cert.revision}|{int(item.verify_client)}|{','.join(item.domains)}\n".encode()


def _build_view(certs: dict[str, Certificate], instance_id: str) -> InstanceView:
    items: list[DeliveredItem] = []
    for cert in sorted(certs.values(), key=_order):
        items.extend(_items_of(cert, instance_id))
    names: dict[str, dict[AlgorithmType, DeliveredItem]] = {}
    for item in items:
        for domain in item.domains:
            # Records from before one-certificate-per-algorithm was enforced: the oldest certificate wins.
            names.setdefault(domain, {}).setdefault(item.algorithm, item)
    lines = tuple(_line(item) for item in items)
    return InstanceView(_version(lines), tuple(items), names, lines=lines)


def _version(lines: tuple[bytes, ...]) -> str:
    return hashlib.sha256(b"".join(lines)).hexdigest()[:24]


def _patch_view(view: InstanceView, instance_id: str, cert_id: str, cert: Certificate | None) -> InstanceView:
    """`view` with certificate `cert_id`'s items replaced by those of `cert` (None: gone): what _build_view
    gives for the instance's certificates with that one changed. The items stay in _build_view's order (by
    creation time and id; a certificate's items are consecutive), `names` is recomputed for the names the
    old or the new items bind (the oldest certificate still wins), the version hashes the same lines."""
    items: list[DeliveredItem] = []
    lines: list[bytes] = []
    gone: set[str] = set()
    for item, line in zip(view.items, view.lines, strict=True):
        if item.cert.id == cert_id:
            gone.update(item.domains)
        else:
            items.append(item)
            lines.append(line)
    added = _items_of(cert, instance_id) if cert is not None else []
    if added:
        assert cert is not None
        at = bisect.bisect_right(items, _order(cert), key=lambda item: _order(item.cert))
        items[at:at] = added
        lines[at:at] = [_line(item) for item in added]
    affected = gone.union(*(item.domains for item in added))
    names = dict(view.names)
    for domain in affected:
        names.pop(domain, None)
    for item in items:
        for domain in item.domains:
            if domain in affected:
                names.setdefault(domain, {}).setdefault(item.algorithm, item)
    frozen = tuple(lines)
    return InstanceView(_version(frozen), tuple(items), names, lines=frozen)


class DeliveryService:
    def __init__(
        self,
        store: DeliveryStore,
        vault: KeyVault,
        *,
        audit: AuditLog | None = None,
        poll_seconds: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
        on_stale: Callable[[float], None] | None = None,
    ) -> None:
        self._store = store
        self._vault = vault
        self._audit = audit or AuditLog(None)
        self.poll_seconds = poll_seconds
        self._monotonic = monotonic
        self._on_stale = on_stale
        self._projects: dict[str, _Project] = {}
        self._loading: dict[str, asyncio.Future[_Project]] = {}
        # Counters seen per watched project (loaded ones, and those whose gateway keys are cached).
        self._seen: dict[str, int] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._fresh_at: float | None = None
        self._reported = -1  # the staleness last given to on_stale
        self._delivered: set[tuple[str, str, str, int]] = set()
        self._marking: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        # A handshake's parameters repeat (the same names, the same clients' lists): their parsed forms are
        # remembered, bounded (public values only; a name that did not parse is never remembered).
        self._names: dict[str, tuple[str, ...]] = {}
        # Each delivered key's envelope, decoded from its JSON text once (still encrypted), by certificate.
        self._envelopes: dict[str, tuple[bytes, ParsedEnvelope]] = {}
        self._ready: dict[str, _Ready] = {}  # Caddy answers without their keys, by certificate
        self._lists: dict[str, frozenset[int] | None] = {}
        # A principal that authenticated with a gateway key is checked again before a held poll answers.
        self.principal_check: Callable[[Principal], Awaitable[None]] = _no_check
        # `gatewaycerts serve` sets it: after a project is loaded, every object of the process is moved out of
        # the cyclic collector's generations (gc.freeze), so that its full collections no longer walk the
        # project's thousands of long-lived objects (certificates, bindings, names, dates). Process-wide, so
        # off by default (a test process would keep each test's cyclic garbage alive at that moment).
        self.freeze_loaded = False

    # -- state ------------------------------------------------------------------------------------

    def on_project_change(self, listener: Callable[[str], None]) -> None:
        """Call `listener(project_id)` whenever the watcher sees a project's counter move."""
        self._listeners.append(listener)

    async def watch_project(self, project_id: str) -> None:
        """Follow the project's counter from now on (read it now if it is not followed yet)."""
        if project_id in self._seen:
            return
        counters = await self._store.change_counters([project_id])
        self._seen.setdefault(project_id, counters.get(project_id, 0))

    def stale_seconds(self) -> int:
        """How long since the index was last confirmed current with the store (0 while the watch keeps up)."""
        if self._fresh_at is None:
            return 0
        age = self._monotonic() - self._fresh_at
        stale = int(age) if age > max(2.0, 4 * self.poll_seconds) else 0
        if stale != self._reported and self._on_stale is not None:
            # The gauge follows what answers say, not only the watch's turns (a turn may hang on a store
            # that is down for as long as the driver's timeout).
            self._reported = stale
            self._on_stale(float(stale))
        return stale

    async def _project(self, project_id: str) -> _Project:
        project = self._projects.get(project_id)
        if project is not None:
            return project
        pending = self._loading.get(project_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Project] = asyncio.get_running_loop().create_future()
        self._loading[project_id] = future
        try:
            counters = await self._store.change_counters([project_id])  # first: a later write moves it again
            certs = await self._store.bound_certificates(project_id)
        except BaseException as exc:
            failure = (
                exc
                if isinstance(exc, StoreUnavailableError)
                else StoreUnavailableError("the delivery state could not be loaded")
            )
            future.set_exception(failure)
            future.exception()  # waiters may be none: the failure is theirs to see, not the loop's to log
            del self._loading[project_id]
            if not isinstance(exc, Exception):
                raise  # this request was cancelled (its client left): the waiters got the failure above
            if not isinstance(exc, StoreUnavailableError):
                log.exception("loading the delivery state of a project failed")
            raise failure from None
        counter = counters.get(project_id, 0)
        project = _Project(certs={c.id: c for c in certs}, counter=counter, index=InstanceIndex(certs))
        self._projects[project_id] = project
        if self.freeze_loaded:
            gc.freeze()
        self._seen.setdefault(project_id, counter)
        if self._fresh_at is None:
            self._fresh_at = self._monotonic()
        del self._loading[project_id]
        future.set_result(project)
        return project

    def _view(self, project: _Project, instance_id: str) -> InstanceView:
        view = project.views.get(instance_id)
        if view is None:
            # Only the certificates the instance receives: the others add nothing to its view.
            certs = project.certs
            own = {cert_id: certs[cert_id] for cert_id in project.index.certificates_of(instance_id)}
            view = project.views[instance_id] = _build_view(own, instance_id)
        return view

    @staticmethod
    def _replace(project: _Project, cert_id: str, previous: Certificate | None, cert: Certificate | None) -> set[str]:
        """Certificate `cert_id` (`previous` as held, None: not held) becomes `cert` (None: not delivered): the
        index follows, and so does each view held of an instance the old or the new revision reaches (only
        that certificate's items replaced); those instances are returned. No other instance's view can differ."""
        if cert is None:
            del project.certs[cert_id]
        else:
            project.certs[cert_id] = cert
        touched = project.index.replace(previous, cert)
        for instance_id in touched:
            view = project.views.get(instance_id)
            if view is not None:
                project.views[instance_id] = _patch_view(view, instance_id, cert_id, cert)
        return set(touched)

    @staticmethod
    def _changed(project: _Project, touched: set[str] | None) -> None:
        """Wake the held polls of the `touched` instances, whose views were brought up to date (None: every
        instance's, and every view is dropped); each compares its instance's version again. No other
        instance's poll is woken."""
        if touched is None:
            project.views.clear()
            woken = list(project.waiting.values())
            project.waiting.clear()
        else:
            woken = [event for i in touched if (event := project.waiting.pop(i, None)) is not None]
        for event in woken:
            event.set()

    def certificate_changed(self, project_id: str, cert_id: str, cert: Certificate | None) -> None:
        """A write through this process has returned: `cert` as stored now (None: deleted)."""
        project = self._projects.get(project_id)
        if project is None:
            return
        project.gen += 1
        previous = project.certs.get(cert_id)
        if cert is not None and cert.bindings:
            if previous is not None and previous.revision > cert.revision:
                return  # a reload already brought something newer
        elif previous is None:
            return
        else:
            cert = None
        self._changed(project, self._replace(project, cert_id, previous, cert))

    # -- the watch --------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """One turn of the watch: read the followed projects' counters, reload those that moved."""
        ids = list(self._seen)
        if not ids:
            self._fresh_at = self._monotonic()
            self._report_stale()
            return
        try:
            counters = await self._store.change_counters(ids)
        except StoreUnavailableError:
            self._report_stale()
            return
        complete = True
        for project_id in ids:
            counter = counters.get(project_id, 0)
            project = self._projects.get(project_id)
            if counter != self._seen.get(project_id):
                self._seen[project_id] = counter
                for listener in self._listeners:
                    listener(project_id)
            if project is not None and (counter != project.counter or project.dirty):
                try:
                    await self._reload(project_id, project, counter)
                except StoreUnavailableError:
                    complete = False
        if complete:
            self._fresh_at = self._monotonic()
        self._report_stale()

    def _report_stale(self) -> None:
        self.stale_seconds()

    async def _reload(self, project_id: str, project: _Project, counter: int) -> None:
        """Bring the project to `counter`: the certificates the store's change log names, or (no log, or
        this process is too far behind) every bound certificate of the project."""
        gen = project.gen
        fresh: dict[str, Certificate] | None = None
        found: dict[str, Certificate] = {}
        try:
            changed = (
                None
                if project.full_reload
                else await self._store.changed_certificates(project_id, project.counter, counter)
            )
            if changed is None:
                fresh = {c.id: c for c in await self._store.bound_certificates(project_id)}
            else:
                found = {c.id: c for c in await self._store.certificates(project_id, changed)}
        except StoreUnavailableError:
            project.dirty = True
            raise
        if project.gen != gen:
            project.dirty = True  # a local write landed meanwhile: this read may predate it; read again
            return
        project.dirty = project.full_reload = False
        project.counter = counter
        if fresh is not None:
            # Everything read again: adopted whole (every view rebuilt) when any revision moved.
            if {k: c.revision for k, c in fresh.items()} != {k: c.revision for k, c in project.certs.items()}:
                project.certs = fresh
                project.index = InstanceIndex(fresh.values())
                self._changed(project, None)
            return
        touched: set[str] = set()
        for cert_id in dict.fromkeys(changed or ()):
            cert: Certificate | None = found.get(cert_id)
            if cert is not None and not cert.bindings:
                cert = None
            previous = project.certs.get(cert_id)
            if (None if previous is None else previous.revision) == (None if cert is None else cert.revision):
                continue  # as held (or absent both times)
            touched |= self._replace(project, cert_id, previous, cert)
        if touched:
            self._changed(project, touched)

    async def run(self) -> None:
        """The watch loop, until stop(); an aiohttp cleanup context runs it as a task."""
        while not self._stop.is_set():
            self.stale_seconds()  # before a turn that may wait on a store that is down
            try:
                await self.refresh()
            except Exception:
                log.exception("delivery watch turn failed")
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self._stop.wait()
            except TimeoutError:
                pass
        for task in list(self._marking):
            task.cancel()

    def stop(self) -> None:
        self._stop.set()

    # -- deliveries -------------------------------------------------------------------------------

    def _key_pem(self, cert: Certificate) -> bytes:
        try:
            parsed = self._envelopes.get(cert.id)
            if parsed is None or parsed[0] is not cert.encrypted_private_key:
                if len(self._envelopes) >= 100_000:
                    self._envelopes.clear()  # certificates deleted since leave entries behind: start over
                parsed = self._envelopes[cert.id] = (
                    cert.encrypted_private_key,
                    self._vault.parse(cert.encrypted_private_key),
                )
        except KeyVaultError:
            self._undecryptable(cert)
        return self._open(cert, parsed[1], _key_context(cert.project_id, cert.id))

    def _open(self, cert: Certificate, envelope: ParsedEnvelope | None, context: str) -> bytes:
        """The PKCS#8 PEM of a certificate's key, decrypted now (for this delivery only)."""
        if envelope is None:
            self._undecryptable(cert)
        try:
            pem = self._vault.open(envelope, context=context)
        except KeyVaultError:
            self._undecryptable(cert)
        if not pem.startswith(PEM_KEY_HEADER) and not pem.lstrip().startswith(PEM_KEY_HEADER):
            # Every upload stores PKCS#8 (pki.bundle), so no key is parsed per delivery; a record stored
            # otherwise (PKCS#1/SEC1) is converted, at the cost of one key load.
            pem = private_key_to_pkcs8_pem(load_private_key(pem.decode()))
        return pem

    def _undecryptable(self, cert: Certificate) -> NoReturn:
        # Re-wrapped under a KEK this process lacks, or a record changed under us: read it again.
        project = self._projects.get(cert.project_id)
        if project is not None:
            project.dirty = project.full_reload = True
        self._ready.pop(cert.id, None)
        log.error("the key of certificate %s does not decrypt with the configured KEKs", cert.id)
        raise KeyUnavailableError("the certificate's key cannot be decrypted right now; retry") from None

    def _ready_of(self, cert: Certificate) -> _Ready:
        ready = self._ready.get(cert.id)
        if ready is None or ready.cert is not cert:
            if len(self._ready) >= 100_000:
                self._ready.clear()  # certificates deleted since leave entries behind: start over
            chain = cert.chain_pem.encode()
            if not chain.endswith(b"\n"):
                chain += b"\n"
            try:
                envelope: ParsedEnvelope | None = self._vault.parse(cert.encrypted_private_key)
            except KeyVaultError:
                envelope = None
            ready = self._ready[cert.id] = _Ready(cert, chain, envelope, _key_context(cert.project_id, cert.id))
        return ready

    def _first_delivery(self, principal: Principal, project_id: str, instance_id: str, cert: Certificate) -> None:
        """Put the first delivery of each certificate revision to an instance on the audit trail, once across
        replicas (the store's mark decides), off the request path."""
        mark = (project_id, instance_id, cert.id, cert.revision)
        if mark in self._delivered:
            return
        self._delivered.add(mark)

        async def record() -> None:
            try:
                first = await self._store.mark_delivered(*mark)
            except Exception:  # noqa: BLE001 - try again on a later delivery
                self._delivered.discard(mark)
                return
            if first:
                await self._audit.record(
                    principal,
                    project_id,
                    "gateway.certificate.deliver",
                    "ssl_certificate",
                    cert.id,
                    object_name=cert.name,
                    instance_id=instance_id,
                    revision=cert.revision,
                    fingerprint_sha256=cert.info.fingerprint_sha256,
                )

        task = asyncio.get_running_loop().create_task(record())
        self._marking.add(task)
        task.add_done_callback(self._marking.discard)

    async def caddy(
        self,
        principal: Principal,
        project_id: str,
        instance_id: str,
        *,
        server_name: str | None,
        signature_schemes: str | None,
        local_ip: str | None = None,
        cipher_suites: str | None = None,
    ) -> CaddyAnswer:
        """Caddy's get_certificate: the chain and PKCS#8 key for the name, or NoCertificateForNameError."""
        authorize_delivery(principal, project_id, instance_id)
        raw = server_name or local_ip  # a client that connected by IP sends no server name
        if not raw:
            raise MissingParameterError(
                "the parameter must be specified, parameterName:server_name", field="server_name"
            )
        if raw not in self._names:  # a malformed name is refused before anything else (400, even if the store is down)
            _remember(self._names, raw, candidate_names(normalise_server_name(raw)))
        project = self._projects.get(project_id) or await self._project(project_id)  # loaded: no coroutine
        view = self._view(project, instance_id)
        asked = (raw, signature_schemes, cipher_suites)
        ready = view.answers.get(asked, _UNKNOWN)
        if ready is _UNKNOWN:
            ready = self._resolve(view, raw, signature_schemes, cipher_suites)
            if len(view.answers) >= _REMEMBERED:
                view.answers.clear()  # a flood of distinct values costs a lookup, never unbounded memory
            view.answers[asked] = ready
        if ready is None:
            name = (self._names.get(raw) or candidate_names(normalise_server_name(raw)))[0]
            raise NoCertificateForNameError(f"no certificate is bound on this instance for {name}")
        assert isinstance(ready, _Ready)
        answer = CaddyAnswer(ready.chain + self._open(ready.cert, ready.envelope, ready.context), self.stale_seconds())
        self._first_delivery(principal, project_id, instance_id, ready.cert)
        return answer

    def _resolve(
        self, view: InstanceView, raw: str, signature_schemes: str | None, cipher_suites: str | None
    ) -> _Ready | None:
        """The certificate (ready but for its key) that Caddy's parameters ask for; None when none is bound.
        InvalidInputError for a server name that is not one (never remembered)."""
        candidates = self._names.get(raw)
        if candidates is None:
            candidates = _remember(self._names, raw, candidate_names(normalise_server_name(raw)))
        schemes = self._lists.get(signature_schemes) if signature_schemes else None
        if schemes is None and signature_schemes:
            schemes = _remember(self._lists, signature_schemes, parse_signature_schemes(signature_schemes))
        suites = self._lists.get(cipher_suites) if cipher_suites else None
        if suites is None and cipher_suites:
            suites = _remember(self._lists, cipher_suites, parse_signature_schemes(cipher_suites))
        for candidate in candidates:
            bound = view.names.get(candidate)
            if bound:
                item = choose(bound, schemes, suites)  # type: ignore[arg-type]
                if item is not None:
                    assert isinstance(item, DeliveredItem)
                    return self._ready_of(item.cert)
        return None

    def _item_doc(self, item: DeliveredItem) -> dict[str, Any]:
        cert = item.cert
        return {
            "certificate_id": cert.id,
            "revision": cert.revision,
            "domains": list(item.domains),
            "algorithm": item.algorithm.value,
            "chain_pem": cert.chain_pem,
            "key_pem": self._key_pem(cert).decode(),
            "trusted_root_ca": cert.trusted_root_ca_pem if item.verify_client else None,
            "verify_client": item.verify_client,
            "not_after": _rfc3339(cert.info.not_after),
            "sha256_fingerprint": cert.info.fingerprint_sha256,
        }

    async def bundle(
        self,
        principal: Principal,
        project_id: str,
        instance_id: str,
        *,
        if_none_match: str | None = None,
        wait: float = 0.0,
    ) -> Bundle:
        """The instance's snapshot; with the client's version (If-None-Match) held up to `wait` seconds while
        it is unchanged, then answered as unchanged (items None)."""
        authorize_delivery(principal, project_id, instance_id)
        wait = min(max(wait, 0.0), MAX_WAIT_SECONDS)
        project = self._projects.get(project_id) or await self._project(project_id)  # loaded: no coroutine
        deadline = self._monotonic() + wait
        while True:
            view = self._view(project, instance_id)
            if view.version != if_none_match:
                break
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return Bundle(view.version, None, self.stale_seconds())
            changed = project.waiting.get(instance_id)
            if changed is None:
                changed = project.waiting[instance_id] = asyncio.Event()
            try:
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                pass
            await self.principal_check(principal)  # a key revoked while the poll was held answers 401
        items = tuple(self._item_doc(item) for item in view.items)
        for item in view.items:
            self._first_delivery(principal, project_id, instance_id, item.cert)
        return Bundle(view.version, items, self.stale_seconds())

    async def traefik(self, principal: Principal, project_id: str, instance_id: str) -> DocumentAnswer:
        """A Traefik dynamic configuration (HTTP provider) with every certificate inline; a client-verifying
        item also gets a TLS option `gc-mtls-<certificate_id>` that demands and verifies client certificates."""
        authorize_delivery(principal, project_id, instance_id)
        project = self._projects.get(project_id) or await self._project(project_id)  # loaded: no coroutine
        view = self._view(project, instance_id)
        certificates: list[dict[str, Any]] = []
        options: dict[str, Any] = {}
        seen: set[str] = set()
        for item in view.items:
            cert = item.cert
            if cert.id not in seen:
                seen.add(cert.id)
                certificates.append({"certFile": cert.chain_pem, "keyFile": self._key_pem(cert).decode()})
                self._first_delivery(principal, project_id, instance_id, cert)
            if item.verify_client and cert.trusted_root_ca_pem:
                options[f"gc-mtls-{cert.id}"] = {
                    "clientAuth": {
                        "caFiles": [cert.trusted_root_ca_pem],
                        "clientAuthType": "RequireAndVerifyClientCert",
                    }
                }
        tls: dict[str, Any] = {"certificates": certificates}
        if options:
            tls["options"] = options
        return DocumentAnswer(view.version, {"tls": tls}, self.stale_seconds())


_REMEMBERED = 10_000
_UNKNOWN: Any = object()


def _remember(memo: dict[str, Any], raw: str, parsed: Any) -> Any:
    if len(memo) >= _REMEMBERED:
        memo.clear()  # a flood of distinct values costs a re-parse, never unbounded memory
    memo[raw] = parsed
    return parsed


async def _no_check(principal: Principal) -> None:
    return None


def _rfc3339(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")
