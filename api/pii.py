"""PII masking, declared where the fields are declared.

- `pii()` on a field that holds PII: null for callers without PII access (partners) and for
  erased profiles, whoever asks.
- `pii_identities()` on Customer.identities: identities of PII types are left out for partners
  (Identity.value is non-null in the contract, so the identity goes, not just its value).
- `no_pii_inference()` on root fields that filter, sort or look profiles up: refuses partners
  the inputs that would reveal PII without showing it (domain.privacy says which).

No resolver checks a role for PII itself: these extensions are the one place.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info

from api.execution import ReadGuard
from api.schema.conditions import condition_dict
from domain.access import Principal, Role
from domain.errors import Forbidden
from domain.privacy import PII_SORTS, pii_condition_paths

# Arguments that carry a condition, by their Python names.
CONDITION_ARGUMENTS = ("where", "condition")


def sees_pii(principal: Principal | None) -> bool:
    return principal is not None and principal.role is not Role.PARTNER


def _erased(source: Any) -> bool:
    """An erased profile shows no PII to anyone, even if a value were left behind."""
    status = getattr(source, "status", None)
    return getattr(status, "value", status) == "ERASED"


class Pii(ReadGuard):
    def allows(self, source: Any, context: Any) -> bool:
        """The value passes through unchanged: plain reads may skip this extension."""
        return sees_pii(context.principal) and not _erased(source)

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        if not sees_pii(info.context.principal) or _erased(source):
            return None
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        if not sees_pii(info.context.principal) or _erased(source):
            return None
        return await next_(source, info, **kwargs)


class PiiIdentities(FieldExtension):
    """Customer.identities resolves at once when its page was prefetched: so does this, for
    callers who see PII (the masking of the others needs the PII types, read on demand)."""

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        identities = next_(source, info, **kwargs)
        if sees_pii(info.context.principal):
            return identities
        return self._masked(identities, info)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        return self.resolve(next_, source, info, **kwargs)

    @staticmethod
    async def _masked(identities: Any, info: Info) -> list[Any]:
        if inspect.isawaitable(identities):
            identities = await identities
        hidden = await info.context.loaders.pii_identity_types()
        return [identity for identity in identities if identity.type not in hidden]


class NoPiiInference(FieldExtension):
    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        if not sees_pii(info.context.principal):
            await _refuse_pii_inputs(info, kwargs)
        return await next_(source, info, **kwargs)


async def _refuse_pii_inputs(info: Info, kwargs: dict[str, Any]) -> None:
    for name in CONDITION_ARGUMENTS:
        if kwargs.get(name) is not None:
            for path in pii_condition_paths(condition_dict(kwargs[name])):
                raise Forbidden("conditions on PII fields need PII access", field=[name, *path])
    for order in kwargs.get("order_by") or ():
        if order.field.value in PII_SORTS:
            raise Forbidden("sorting by a PII field needs PII access", field=["orderBy"])
    identity = kwargs.get("identity")
    if identity is not None and identity.type in await info.context.loaders.pii_identity_types():
        raise Forbidden("looking up by a PII identity needs PII access", field=["identity"])


def pii() -> list[FieldExtension]:
    return [Pii()]


def pii_identities() -> list[FieldExtension]:
    return [PiiIdentities()]


def no_pii_inference() -> list[FieldExtension]:
    return [NoPiiInference()]


__all__ = ["no_pii_inference", "pii", "pii_identities", "sees_pii"]
