"""Access keys (AK/SK, Huawei IAM's permanent access keys): their lifecycle, and the check of a request signed
with one (SDK-HMAC-SHA256) into the same Principal a JWT of that project and role gives.

The secret is generated here, returned once, and stored only as a KeyVault envelope bound to (project, access
id); a signed request decrypts it for the one HMAC comparison and keeps nothing: no cache of secrets or of
verified requests, so a key disabled or deleted stops working with the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import UTC, datetime, timedelta

from gatewaycerts.core.audit import AuditLog
from gatewaycerts.core.authz import authorize
from gatewaycerts.core.clock import Clock, system_clock
from gatewaycerts.core.common import retry_on_conflict
from gatewaycerts.domain.access_keys import AccessKey, AccessKeyNotFoundError, AccessKeyStatus, SignedRequest
from gatewaycerts.domain.errors import (
    AuthenticationError,
    InvalidInputError,
    MissingParameterError,
    ParameterTooLongError,
    PermissionDeniedError,
)
from gatewaycerts.domain.models import Action, Principal, Role
from gatewaycerts.keyvault import KeyVault, KeyVaultError
from gatewaycerts.store.interfaces import AccessKeyStore

ALGORITHM = "SDK-HMAC-SHA256"
SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_SDK_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z", re.ASCII)
SIGNATURE_WINDOW = timedelta(minutes=15)  # X-Sdk-Date may be this far from now, either way (as Huawei's APIG)
ACCESS_LENGTH, SECRET_LENGTH = 20, 40  # the shapes of Huawei's AK and SK
ACCESS_ALPHABET = string.ascii_uppercase + string.digits
SECRET_ALPHABET = string.ascii_letters + string.digits  # 40 of 62 symbols: 238 bits
ROLES = (Role.ADMIN, Role.EDITOR, Role.VIEWER)
MAX_DESCRIPTION = 255
SUBJECT_PREFIX = "ak:"
# One message for every refusal after the header parsed: it tells the client what to check without telling
# a prober whether an access id exists or is disabled.
BAD_SIGNATURE = (
    "Incorrect IAM authentication information: the signature does not match (unknown or disabled access key, "
    "wrong secret key, or the request was changed after signing)"
)


def access_key_context(project_id: str, access: str) -> str:
    return f"access-key:{project_id}:{access}"


def principal_of(key: AccessKey) -> Principal:
    """What a JWT with the key's project and role would give."""
    return Principal(
        subject=SUBJECT_PREFIX + key.access, projects=frozenset({key.project_id}), roles=frozenset({key.role})
    )


def _role(value: str | None) -> Role:
    if not value:
        raise MissingParameterError("the parameter must be specified, parameterName:credential.role", field="role")
    if value not in {r.value for r in ROLES}:
        raise InvalidInputError(
            "Invalid parameter value, parameterName:credential.role. Use one of: " + ", ".join(r.value for r in ROLES),
            field="role",
        )
    return Role(value)


def _description(value: str | None) -> str:
    if value is None:
        return ""
    if len(value) > MAX_DESCRIPTION:
        raise ParameterTooLongError(
            f"Invalid parameter value, parameterName:credential.description. Use at most {MAX_DESCRIPTION} characters",
            field="description",
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInputError(
            "Invalid parameter value, parameterName:credential.description. Control characters are not allowed",
            field="description",
        )
    return value


def _status(value: str | None) -> AccessKeyStatus | None:
    if value is None:
        return None
    try:
        return AccessKeyStatus(value)
    except ValueError:
        raise InvalidInputError(
            "Invalid parameter value, parameterName:credential.status. Use active or inactive", field="status"
        ) from None


def parse_sdk_date(value: str) -> datetime:
    """Strictly YYYYMMDDTHHMMSSZ: the signer signs the header's text, so only its one spelling of a time is taken."""
    try:
        if not _SDK_DATE.fullmatch(value):
            raise ValueError(value)
        return datetime.strptime(value, SDK_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise AuthenticationError(
            "Incorrect IAM authentication information: X-Sdk-Date must be a UTC time as YYYYMMDDTHHMMSSZ"
        ) from None


class AccessKeyService:
    def __init__(
        self, store: AccessKeyStore, vault: KeyVault, *, clock: Clock = system_clock, audit: AuditLog | None = None
    ) -> None:
        self._store = store
        self._vault = vault
        self._clock = clock
        self._audit = audit or AuditLog(None)

    # -- the IAM API ------------------------------------------------------------------------------------

    async def create(
        self, principal: Principal, project_id: str, role: str | None, description: str | None = None
    ) -> tuple[AccessKey, str]:
        """A new active key and its secret: the only time the secret leaves the service."""
        authorize(principal, project_id, Action.MANAGE_ACCESS_KEYS)
        key_role, text = _role(role), _description(description)
        access = "".join(secrets.choice(ACCESS_ALPHABET) for _ in range(ACCESS_LENGTH))
        secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(SECRET_LENGTH))
        key = AccessKey(
            access=access,
            project_id=project_id,
            role=key_role,
            status=AccessKeyStatus.ACTIVE,
            description=text,
            create_time=self._clock(),
            created_by=principal.subject,
            encrypted_secret=self._vault.encrypt(
                secret.encode("ascii"), context=access_key_context(project_id, access)
            ),
        )
        await self._store.insert(key)
        await self._audit.record(
            principal, project_id, "iam.credential.create", "credential", access, role=key_role, status=key.status
        )
        return key, secret

    async def list(self, principal: Principal, project_id: str) -> list[AccessKey]:
        authorize(principal, project_id, Action.MANAGE_ACCESS_KEYS)
        return await self._store.list(project_id)

    async def get(self, principal: Principal, project_id: str, access: str) -> AccessKey:
        authorize(principal, project_id, Action.MANAGE_ACCESS_KEYS)
        return await self._get(project_id, access)

    async def _get(self, project_id: str, access: str) -> AccessKey:
        key = await self._store.get(access)
        if key is None or key.project_id != project_id:  # another project's key is as absent as none
            raise AccessKeyNotFoundError("The access key could not be found")
        return key

    async def update(
        self,
        principal: Principal,
        project_id: str,
        access: str,
        *,
        status: str | None,
        description: str | None = None,
    ) -> AccessKey:
        authorize(principal, project_id, Action.MANAGE_ACCESS_KEYS)
        new_status, text = _status(status), None if description is None else _description(description)
        if new_status is None and text is None:
            raise MissingParameterError(
                "the parameter must be specified, parameterName:credential.status", field="status"
            )

        async def attempt() -> AccessKey:
            key = await self._get(project_id, access)
            changed = AccessKey(
                access=key.access,
                project_id=key.project_id,
                role=key.role,
                status=new_status or key.status,
                description=key.description if text is None else text,
                create_time=key.create_time,
                created_by=key.created_by,
                encrypted_secret=key.encrypted_secret,
                revision=key.revision,
            )
            return await self._store.replace(changed, expected_revision=key.revision)

        key = await retry_on_conflict(attempt, "the access key")
        await self._audit.record(
            principal, project_id, "iam.credential.update", "credential", access, status=key.status
        )
        return key

    async def delete(self, principal: Principal, project_id: str, access: str) -> None:
        authorize(principal, project_id, Action.MANAGE_ACCESS_KEYS)
        if not await self._store.delete(project_id, access):
            raise AccessKeyNotFoundError("The access key could not be found")
        await self._audit.record(principal, project_id, "iam.credential.delete", "credential", access)

    # -- signed requests --------------------------------------------------------------------------------

    async def verify(self, signed: SignedRequest) -> Principal:
        """The principal of a request signed with an access key, or AuthenticationError (401) when the date is
        outside the window, the key is unknown, disabled or deleted, or the signature does not match;
        PermissionDeniedError (403) when X-Project-Id names another project than the key's."""
        signed_at = parse_sdk_date(signed.sdk_date)
        if abs(self._clock() - signed_at) > SIGNATURE_WINDOW:
            raise AuthenticationError(
                "Incorrect IAM authentication information: X-Sdk-Date is more than 15 minutes from the server's time"
            )
        key = await self._store.get(signed.access) if len(signed.access) <= 128 else None
        if key is None or key.status is not AccessKeyStatus.ACTIVE:
            raise AuthenticationError(BAD_SIGNATURE)
        try:
            secret = self._vault.decrypt(key.encrypted_secret, context=access_key_context(key.project_id, key.access))
        except KeyVaultError:
            raise AuthenticationError(BAD_SIGNATURE) from None
        expected = hmac.new(secret, signed.string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        del secret
        if not hmac.compare_digest(expected, signed.signature.lower().encode("ascii", "replace").decode()):
            raise AuthenticationError(BAD_SIGNATURE)
        if signed.project_header is not None and signed.project_header != key.project_id:
            raise PermissionDeniedError(
                "no permissions to request this method: X-Project-Id is not the project of the access key"
            )
        return principal_of(key)
