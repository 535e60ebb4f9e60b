"""Who may call what: one permission class, attached where each field is declared."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from api.audit import AuditTrail
from domain.access.keys import Role


class RoleIn(BasePermission):
    message = "your API key's role may not do this"
    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.role in self.roles


class ArgumentRoleIn(BasePermission):
    """An argument (such as setStage's `force`) that, when true, only some roles may pass."""

    message = "your API key's role may not use this argument"
    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, argument: str, *roles: Role) -> None:
        self.argument = argument
        self.roles = frozenset(roles)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        if not kwargs.get(self.argument):
            return True
        principal = info.context.principal
        return principal is not None and principal.role in self.roles


def allow(*roles: Role, **arguments: tuple[Role, ...]) -> list[FieldExtension]:
    """`extensions=allow(Role.ADMIN, ...)` on a field: everyone else gets FORBIDDEN; with
    `force=ADMIN_ONLY`, a true `force` argument also needs one of those roles. On a mutation
    it also writes the audit trail, refusals included (the last extension is the outermost)."""
    checks: list[BasePermission] = [RoleIn(*roles)]
    checks += [ArgumentRoleIn(name, *allowed) for name, allowed in arguments.items()]
    return [PermissionExtension(permissions=checks, use_directives=False), AuditTrail()]


WRITERS_OF_IDENTITY = (Role.ADMIN, Role.INTEGRATION)
ADMIN_ONLY = (Role.ADMIN,)
TAGGERS = (Role.ADMIN, Role.INTEGRATION, Role.FRONTEND)
PROFILE_EDITORS = (Role.ADMIN, Role.FRONTEND)
