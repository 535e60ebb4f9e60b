"""Values the databases can't hold are refused at the edge, before a resolver runs.

A field extension that api.schema.root puts on every root query and mutation field, innermost
(after the permission check): it walks the field's arguments once, as the GraphQL layer
decoded them, and applies domain.values to each by kind. DateTime and JSON are the kinds no
schema type bounds:

    datetime    between domain.values.EARLIEST and LATEST once in UTC (year 1 at +14:00 is not)
    number      (Float, Decimal, a JSON value that is a number) finite, within ±MAX_NUMBER
    JSON        every number in it as above (NaN, Infinity, 2^70 and 400-digit numbers are not)

A refusal names the offending argument's path, as the client spelled it. A mutation answers
with its payload carrying the UserError and nothing else (api.payloads; it changes nothing);
any other field answers with a coded GraphQL error with the same `field`. Text (U+0000, lone
surrogates) is checked earlier, for every field, by api.limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info
from strawberry.types.base import has_object_definition
from strawberry.types.field import StrawberryField
from strawberry.utils.str_converters import to_camel_case

from domain.values import check_json, check_moment, check_number

Path = tuple[str | int, ...]


class ValueGuard(FieldExtension):
    field: StrawberryField

    def apply(self, field: StrawberryField) -> None:
        self.field = field

    def resolve(self, next_: Callable[..., Any], source: Any, info: Info, **kwargs: Any) -> Any:
        self._check(kwargs)
        return next_(source, info, **kwargs)

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info, **kwargs: Any
    ) -> Any:
        self._check(kwargs)
        return await next_(source, info, **kwargs)

    def _check(self, kwargs: dict[str, Any]) -> None:
        """Raises the DomainError of the first argument no database can hold."""
        for name, value in kwargs.items():
            check_value(value, (_argument_name(self.field, name),))


def check_value(value: Any, path: Path) -> None:
    """Refuse (DomainError at `path`) a value, or a value inside it, no database can hold."""
    if value is None or isinstance(value, bool | str) or type(value) is date:
        return
    if isinstance(value, datetime):
        check_moment(value, path)
    elif isinstance(value, int | float | Decimal):  # an Int is 32-bit: always within range
        check_number(value, path)
    elif isinstance(value, dict):
        check_json(value, path)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_value(item, (*path, index))
    elif has_object_definition(value):  # an input object
        for name, item in _input_fields(value):
            check_value(item, (*path, name))


def _input_fields(value: Any) -> Iterator[tuple[str, Any]]:
    for field in value.__strawberry_definition__.fields:
        yield (
            field.graphql_name or to_camel_case(field.python_name),
            getattr(value, field.python_name, None),
        )


def _argument_name(field: Any, python_name: str) -> str:
    for argument in field.arguments:
        if argument.python_name == python_name:
            return str(argument.graphql_name or to_camel_case(python_name))
    return to_camel_case(python_name)
