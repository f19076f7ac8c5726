"""CRL publishing: one CRL per CA, rebuilt on every revocation and before it goes stale.

The CRL lives in the CA's record; each rebuild is a compare-and-swap on the CA's revision, so the CRL
number only ever grows, even with several replicas revoking at once. A rebuild that a crash skipped is
caught on the next read: a CRL whose entry count differs from the store's revoked serials is rebuilt.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import timedelta

from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import in_executor, retry_on_conflict
from gatewaycerts.domain.errors import AuthorityNotFoundError
from gatewaycerts.domain.pca import Authority, CrlState
from gatewaycerts.keyvault import KeyVault
from gatewaycerts.pki.authority import sign_crl
from gatewaycerts.store.interfaces import PcaStore

OnRevoked = Callable[[str], None]


def authority_key_context(project_id: str, ca_id: str) -> str:
    return f"pca-authority:{project_id}:{ca_id}"


class CrlPublisher:
    def __init__(
        self, store: PcaStore, vault: KeyVault, *, executor: Executor | None = None, clock: Clock = system_clock
    ) -> None:
        self._store = store
        self._vault = vault
        self._executor = executor
        self._clock = clock

    def is_stale(self, ca: Authority) -> bool:
        """Rebuild once half of the CRL's validity has passed, so relying parties never see it expire."""
        if ca.crl is None:
            return True
        half = (ca.crl.next_update - ca.crl.this_update) / 2
        return self._clock() >= ca.crl.this_update + half

    async def rebuild(self, project_id: str | None, ca_id: str) -> Authority:
        async def attempt() -> Authority:
            ca = await self._store.get_authority(project_id, ca_id)
            if ca is None or ca.certificate_pem is None:
                raise AuthorityNotFoundError("the CA does not exist or has no certificate yet")
            revoked = sorted(await self._store.revoked_serials(ca.id), key=lambda r: r.serial_number)
            now = self._clock()
            state = CrlState(
                number=(ca.crl.number + 1) if ca.crl else 1,
                this_update=now,
                next_update=now + timedelta(days=ca.crl_configuration.valid_days),
                der=b"",
                revoked_count=len(revoked),
            )
            key_pem = self._vault.decrypt(ca.encrypted_key, context=authority_key_context(ca.project_id, ca.id))
            der = await in_executor(
                self._executor,
                sign_crl,
                ca.certificate_pem,
                key_pem,
                ca.signature_algorithm,
                revoked,
                state.number,
                state.this_update,
                state.next_update,
            )
            updated = replace(ca, crl=replace(state, der=der), update_time=now)
            return await self._store.replace_authority(updated, expected_revision=ca.revision)

        return await retry_on_conflict(attempt, "the CA")

    async def current(self, ca: Authority) -> Authority:
        """The CA with a CRL that is fresh and lists every revoked serial; rebuilds when it is not."""
        if not self.is_stale(ca):
            revoked = await self._store.revoked_serials(ca.id)
            if ca.crl is not None and len(revoked) == ca.crl.revoked_count:
                return ca
        return await self.rebuild(ca.project_id, ca.id)
