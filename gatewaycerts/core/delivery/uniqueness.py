"""One certificate per (instance, name, key algorithm): a domain may be bound on an instance to one RSA and
one ECC certificate at once, never to two of the same algorithm.

Bindings live inside each certificate's record, so the rule spans records. It is kept by binding keys
(`instance|name|algorithm`, unique per project in the store) that a write claims before it stores new
bindings and releases after it stored their removal. Two concurrent attaches of the same name by two
certificates race on the key's unique insert: exactly one wins, the other is refused and binds nothing.
A key left behind by a writer that stopped between claim and write (its record does not bind the name)
is taken over once its claim is older than CLAIM_TIMEOUT; one whose certificate is gone, at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from gatewaycerts.core.delivery.rules import binding_instances
from gatewaycerts.domain.errors import ConflictError, DuplicateAlgorithmBindingError, StoreUnavailableError
from gatewaycerts.domain.models import Certificate
from gatewaycerts.store.interfaces import CertificateStore, DeliveryStore

log = logging.getLogger("gatewaycerts.delivery")
CLAIM_TIMEOUT = timedelta(seconds=30)
_ATTEMPTS = 3


def binding_keys(cert: Certificate) -> frozenset[str]:
    """The keys the certificate's bindings hold: one per instance it is delivered to, per bound name."""
    algorithm = cert.info.algorithm_type.value
    return frozenset(
        f"{instance}|{b.url_domain}|{algorithm}" for b in cert.bindings for instance in binding_instances(cert, b)
    )


class BindingUniqueness:
    def __init__(self, keys: DeliveryStore, certificates: CertificateStore, clock: Callable[[], datetime]) -> None:
        self._keys = keys
        self._certificates = certificates
        self._clock = clock

    async def claim(self, before: Certificate, after: Certificate) -> frozenset[str]:
        """Claim the keys `after` holds that `before` did not (DuplicateAlgorithmBindingError when another
        certificate holds one); the claimed keys, to release if the write fails."""
        added = binding_keys(after) - binding_keys(before)
        if not added:
            return added
        project_id, cert_id = after.project_id, after.id
        for _ in range(_ATTEMPTS):
            now = self._clock()
            taken = await self._keys.claim_binding_keys(project_id, cert_id, sorted(added), now)
            if not taken:
                return added
            for key, holder in sorted(taken.items()):
                if not holder:
                    continue  # released meanwhile: claim again
                holder_cert = await self._certificates.get(project_id, holder)
                if holder_cert is not None and key in binding_keys(holder_cert):
                    raise _refusal(key, holder)
                # Gone: stale at once. Not binding it (yet): stale only when the claim is old, since the
                # holder's write may still be on its way.
                claimed_before = now + CLAIM_TIMEOUT if holder_cert is None else now - CLAIM_TIMEOUT
                if not await self._keys.take_over_binding_key(project_id, key, holder, cert_id, claimed_before, now):
                    raise _refusal(key, holder)
        raise ConflictError("the domain bindings were changed concurrently; retry")

    async def release(self, cert: Certificate, keys: frozenset[str]) -> None:
        """Give the keys back. A failure is logged, not raised: the write it follows stands, and a key its
        holder no longer binds is taken over by the next certificate that claims it."""
        if not keys:
            return
        try:
            await self._keys.release_binding_keys(cert.project_id, cert.id, sorted(keys))
        except StoreUnavailableError:
            log.warning("binding keys of certificate %s not released: the store is unavailable", cert.id)


def _refusal(key: str, holder: str) -> DuplicateAlgorithmBindingError:
    instance, name, algorithm = key.rsplit("|", 2)
    return DuplicateAlgorithmBindingError(
        f"the domain {name} is already bound on instance {instance} to the {algorithm} certificate {holder}; a "
        f"domain takes one RSA and one ECC certificate per instance: detach it there first",
        field="domain",
    )
