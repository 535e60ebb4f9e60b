"""Who may call what: one permission class, attached where each field is declared."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types import Info

from domain.access import Role


class RoleIn(BasePermission):
    message = "your API key's role may not do this"
    error_extensions = {"code": "FORBIDDEN"}

    def __init__(self, *roles: Role) -> None:
        self.roles = frozenset(roles)

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        principal = info.context.principal
        return principal is not None and principal.role in self.roles


def allow(*roles: Role) -> list[FieldExtension]:
    """`extensions=allow(Role.ADMIN, ...)` on a field: everyone else gets FORBIDDEN."""
    return [PermissionExtension(permissions=[RoleIn(*roles)], use_directives=False)]


WRITERS_OF_IDENTITY = (Role.ADMIN, Role.INTEGRATION)
ADMIN_ONLY = (Role.ADMIN,)
TAGGERS = (Role.ADMIN, Role.INTEGRATION, Role.FRONTEND)
PROFILE_EDITORS = (Role.ADMIN, Role.FRONTEND)
