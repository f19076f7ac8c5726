"""Hand a private certificate issued here to the gateway: import it, with its key, into the APIC store."""

from __future__ import annotations

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.certificates import CertificateDraft, CertificateService
from gatewaycerts.core.issuance import PrivateCertificateService
from gatewaycerts.domain.models import Action, Certificate, Principal


class GatewayImport:
    def __init__(
        self, issued: PrivateCertificateService, certificates: CertificateService, *, audit: AuditLog | None = None
    ) -> None:
        self._issued = issued
        self._certificates = certificates
        self._audit = audit or AuditLog(None)

    async def import_to_apic(
        self,
        principal: Principal,
        project_id: str,
        cert_id: str,
        *,
        target_project: str,
        name: str | None,
        scope: str | None,
        instance_id: str | None,
    ) -> Certificate:
        """One call: the issued certificate, its chain and its key become an APIC SSL certificate.

        The APIC upload checks run unchanged (key match, chain, expiry, name rules), so an imported
        certificate is exactly what an upload of the same PEMs would have stored. Two events: the key left the
        private certificate (in its project), and the APIC certificate was created (in the target project).
        """
        authorize(principal, target_project, Action.WRITE)
        cert_pem, chain_pem, key_pem = await self._issued.material_for_gateway(principal, project_id, cert_id)
        draft = CertificateDraft(
            name=name,
            cert_content=cert_pem + chain_pem,
            private_key=key_pem.decode(),
            type=scope,
            instance_id=instance_id,
        )
        created = await self._certificates.create(principal, target_project, draft)
        await self._audit.record(
            principal,
            project_id,
            "ccm.certificate.import_to_apic",
            "private_certificate",
            cert_id,
            object_name=created.info.common_name,  # the private certificate's subject CN, now the APIC one's
            target_project_id=target_project,
            ssl_certificate_id=created.id,
            ssl_certificate_name=created.name,
        )
        return created
