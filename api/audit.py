"""The audit trail of mutations, as a field extension that `api.permissions.allow` attaches.

Every mutation carries `allow(...)` (the role matrix test makes sure none can skip it), so
every mutation is audited by the same extension that guards it: one row per mutation field,
written after it ran, with the outcome and the customers named in its arguments or its
payload. It wraps the permission check, so a FORBIDDEN attempt is recorded as refused.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from graphql import GraphQLError, OperationType
from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info

from api.ids import from_global_id
from api.schema.customers import Customer
from domain.access import audit
from domain.errors import DomainError

log = logging.getLogger("c360.audit")
PAYLOAD_DEPTH = 3  # payload -> results -> result -> customer


class AuditTrail(FieldExtension):
    """Audits the field when it runs as a mutation, or always when `always` (reads of a
    whole person, such as exportCustomer)."""

    def __init__(self, *, always: bool = False) -> None:
        self.always = always

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        if not (self.always or info.operation.operation is OperationType.MUTATION):
            return await next_(source, info, **kwargs)
        named = set(_customer_ids(kwargs.values(), 0))
        try:
            payload = await next_(source, info, **kwargs)
        except (DomainError, GraphQLError) as error:
            await _write(info, named, audit.Outcome.REFUSED, [_code(error)])
            raise
        except Exception:
            await _write(info, named, audit.Outcome.ERROR, ["INTERNAL_ERROR"])
            raise
        codes = [error.code for error in getattr(payload, "errors", None) or ()]
        outcome = audit.Outcome.REFUSED if codes else audit.Outcome.OK
        await _write(info, named | set(_customer_ids([payload], 0)), outcome, codes)
        return payload


def _code(error: DomainError | GraphQLError) -> str:
    if isinstance(error, DomainError):
        return error.code
    return str((error.extensions or {}).get("code", "GRAPHQL_ERROR"))


async def _write(
    info: Info, customers: set[uuid.UUID], outcome: audit.Outcome, codes: list[str]
) -> None:
    context = info.context
    principal = context.principal
    event = audit.AuditEvent(
        actor=principal.actor if principal else None,
        role=principal.role.value if principal else None,
        operation=info.field_name,
        customer_ids=tuple(sorted(customers)),
        outcome=outcome,
        codes=tuple(codes),
        request_id=context.request_id,
    )
    try:
        await audit.record(context.db, event)
    except Exception:  # the operation's own answer must still reach the caller
        log.exception("audit row not written [request %s]: %s", context.request_id, event)


def _customer_ids(values: Any, depth: int) -> Iterator[uuid.UUID]:
    """Customers named by global id (arguments) or returned as profiles (payloads)."""
    for value in values:
        if isinstance(value, Customer):
            yield value.uuid
        elif isinstance(value, str):
            yield from _customer_id(value)
        elif isinstance(value, list | tuple):
            yield from _customer_ids(value, depth)
        elif dataclasses.is_dataclass(value) and depth < PAYLOAD_DEPTH:
            fields = (getattr(value, f.name, None) for f in dataclasses.fields(value))
            yield from _customer_ids(fields, depth + 1)


def _customer_id(value: str) -> Iterator[uuid.UUID]:
    try:
        type_name, key = from_global_id(value)
        if type_name == "Customer":
            yield uuid.UUID(key)
    except (DomainError, ValueError):
        return
