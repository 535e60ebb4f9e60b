"""A mutation's refusal answered in its payload: the one place a DomainError becomes `errors`.

api.schema.root puts `Refusals` on every root mutation field, inside the permission check and
the audit trail and outside api.value_guard. A resolver of a mutation only calls the domain
and maps what it returns; whatever DomainError it (or the value guard) raises comes back as
the field's payload with `errors` and nothing else: null objects, empty lists, zero counts,
false flags. A refused lifecycle model (several problems at once) lists every problem.

Where a field's errors point: an error whose path starts with one of the field's arguments
stays as it is; any other is placed under the argument `at` when the field names one (the
domain speaks of the input object's own fields: `key`, not `input.key`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info
from strawberry.types.base import StrawberryList, StrawberryOptional, has_object_definition
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from api.schema.common import UserError
from domain.errors import DomainError


class Refusals(FieldExtension):
    """A DomainError of the mutation becomes its payload's `errors` (see the module)."""

    field: StrawberryField

    def __init__(self, *, at: str | None = None) -> None:
        self.at = at

    def apply(self, field: StrawberryField) -> None:
        self.field = field
        self.arguments = {
            argument.graphql_name or to_camel_case(argument.python_name)
            for argument in field.arguments
        }

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        try:
            return next_(source, info, **kwargs)
        except DomainError as error:
            return refused_payload(self.field.type, self._placed(error))

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        try:
            return await next_(source, info, **kwargs)
        except DomainError as error:
            return refused_payload(self.field.type, self._placed(error))

    def _placed(self, error: DomainError) -> DomainError:
        if self.at is None or (error.field and error.field[0] in self.arguments):
            return error
        return error.at(self.at)


def refused_payload(payload_type: Any, error: DomainError) -> Any:
    """`payload_type` holding only `error`: null objects, empty lists, zero counts."""
    if not dataclasses.is_dataclass(payload_type) or not has_object_definition(payload_type):
        raise error
    values: dict[str, Any] = {}
    for field in payload_type.__strawberry_definition__.fields:
        if field.base_resolver is not None:
            continue
        if field.python_name == "errors":
            values["errors"] = UserError.all_of(error)
        elif isinstance(field.type, StrawberryOptional):
            values[field.python_name] = None
        elif isinstance(field.type, StrawberryList):
            values[field.python_name] = []
        elif field.type is int:
            values[field.python_name] = 0
        elif field.type is bool:
            values[field.python_name] = False
        else:
            raise error  # no empty value to give: the error goes out as a GraphQL error
    return payload_type(**values)
