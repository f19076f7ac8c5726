"""Which certificates of a project each gateway instance receives: instance -> the ids of the certificates
with at least one binding delivered there (rules.receiving_instances, the set bindings_for agrees with).

DeliveryService keeps one per loaded project, in step with the project's certificates, so that a change
drops and rebuilds only the views of the instances the certificate's old and new revision reach, each from
the instance's own certificates instead of a scan of the whole project.
"""

from __future__ import annotations

from collections.abc import Iterable

from gatewaycerts.core.delivery.rules import receiving_instances
from gatewaycerts.domain.models import Certificate

_NONE: frozenset[str] = frozenset()


class InstanceIndex:
    __slots__ = ("_receives",)

    def __init__(self, certs: Iterable[Certificate] = ()) -> None:
        self._receives: dict[str, set[str]] = {}
        for cert in certs:
            self.add(cert)

    def add(self, cert: Certificate) -> frozenset[str]:
        """Index `cert` (not indexed yet); the instances it reaches."""
        instances = receiving_instances(cert)
        for instance in instances:
            self._receives.setdefault(instance, set()).add(cert.id)
        return instances

    def remove(self, cert: Certificate) -> frozenset[str]:
        """Drop `cert` (as it was indexed); the instances it reached."""
        instances = receiving_instances(cert)
        for instance in instances:
            ids = self._receives.get(instance)
            if ids is not None:
                ids.discard(cert.id)
                if not ids:
                    del self._receives[instance]
        return instances

    def replace(self, old: Certificate | None, new: Certificate | None) -> frozenset[str]:
        """`old` (None: not indexed) becomes `new` (None: gone); every instance either reaches."""
        touched = self.remove(old) if old is not None else _NONE
        if new is not None:
            touched = touched | self.add(new)
        return touched

    def certificates_of(self, instance_id: str) -> frozenset[str] | set[str]:
        """The ids of the certificates `instance_id` receives (do not modify)."""
        return self._receives.get(instance_id, _NONE)

    def as_dict(self) -> dict[str, frozenset[str]]:
        """A copy, for comparison with an index built afresh."""
        return {instance: frozenset(ids) for instance, ids in self._receives.items()}
