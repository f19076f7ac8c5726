"""Who may do what in which project: the single authorization decision point."""

from __future__ import annotations

from gatewaycerts.domain.errors import PermissionDeniedError
from gatewaycerts.domain.models import Action, Principal, Role

_ALLOWED: dict[Role, frozenset[Action]] = {
    Role.ADMIN: frozenset(Action),
    Role.EDITOR: frozenset({Action.READ, Action.WRITE}),
    Role.VIEWER: frozenset({Action.READ}),
}


def authorize(principal: Principal, project_id: str, action: Action) -> None:
    """Raise PermissionDeniedError unless `principal` may perform `action` in `project_id`."""
    if project_id not in principal.projects:
        raise PermissionDeniedError("no permissions to request this method: the token is not valid for this project")
    if not any(action in _ALLOWED.get(role, frozenset()) for role in principal.roles):
        raise PermissionDeniedError(f"no permissions to request this method: the token's roles may not {action.value}")


def authorize_owned(principal: Principal, project_id: str, owner: str, action: Action, on_others: Action) -> None:
    """`action` on a record `owner` created; on somebody else's record the principal also needs `on_others`."""
    authorize(principal, project_id, action)
    if owner != principal.subject and not any(on_others in _ALLOWED.get(role, frozenset()) for role in principal.roles):
        raise PermissionDeniedError(
            f"no permissions to request this method: only its submitter or a role that may {on_others.value} may"
        )


def project_of(principal: Principal, requested: str | None) -> str:
    """The project of an API whose URLs carry none (CCM, Notary, Barbican): the token's only project, or
    the one named by the X-Project-Id header when the token covers several."""
    if requested:
        if requested not in principal.projects:
            raise PermissionDeniedError(
                "no permissions to request this method: the token is not valid for this project"
            )
        return requested
    if len(principal.projects) == 1:
        return next(iter(principal.projects))
    raise PermissionDeniedError(
        "the token covers several projects; name one with the X-Project-Id header"
        if principal.projects
        else "the token names no project"
    )
