"""Keyset pagination with opaque cursors, shared by every connection the API serves.

A cursor encodes the sort key of a row (its ordering value and its id), so a page is one
indexed range scan, never an OFFSET, and it stays stable while rows are inserted.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, or_, tuple_
from sqlalchemy.orm import QueryableAttribute

from domain.errors import InvalidInput
from domain.values import check_moment, representable_number, unstorable_text

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int | None = None
    after: str | None = None
    last: int | None = None
    before: str | None = None

    def validated(self, default: int, maximum: int) -> PageRequest:
        for name, size in (("first", self.first), ("last", self.last)):
            if size is not None and size < 0:
                raise InvalidInput(f"`{name}` must not be negative", field=[name])
            if size is not None and size > maximum:
                raise InvalidInput(
                    f"`{name}` is {size}; a page holds at most {maximum} items",
                    field=[name],
                    code="PAGE_SIZE_EXCEEDED",
                )
        if self.first is not None and self.last is not None:
            raise InvalidInput("give `first` or `last`, not both", field=["last"])
        if self.first is None and self.last is None:
            return PageRequest(first=default, after=self.after, before=self.before)
        return self

    @property
    def backwards(self) -> bool:
        return self.last is not None

    @property
    def size(self) -> int:
        return self.last if self.last is not None else (self.first or 0)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next: bool
    has_previous: bool


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps(list(values), default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, width: int, field: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise InvalidInput(
            "not a cursor this API issued", field=[field], code="INVALID_CURSOR"
        ) from error
    if not isinstance(values, list) or len(values) != width:
        raise InvalidInput("not a cursor this API issued", field=[field], code="INVALID_CURSOR")
    return values


def parse_cursor(cursor: str, parsers: Sequence[Callable[[Any], Any]], field: str) -> list[Any]:
    """The values of `cursor`, each read by its parser, refused (INVALID_CURSOR) unless every
    one is a value the database can bind: a forged cursor never reaches a statement."""
    raw = decode_cursor(cursor, len(parsers), field)
    try:
        values = [parse(value) for parse, value in zip(parsers, raw, strict=True)]
    except (TypeError, ValueError, AttributeError, ArithmeticError):
        values = None
    if values is None or not all(_bindable(value) for value in values):
        raise InvalidInput("not a cursor this API issued", field=[field], code="INVALID_CURSOR")
    return values


def _bindable(value: Any) -> bool:
    if isinstance(value, str):
        return not unstorable_text(value)
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float | Decimal):
        return representable_number(value)
    if isinstance(value, datetime):
        try:
            check_moment(value, ())
        except InvalidInput:
            return False
    return True


@dataclass(frozen=True, slots=True)
class SortKey:
    """One ordering expression (never NULL: coalesce nullable columns) and how to read a
    cursor value back into something bindable."""

    expression: ColumnElement[Any] | QueryableAttribute[Any]
    descending: bool
    parse: Callable[[Any], Any]


def _after(keys: Sequence[SortKey], values: Sequence[Any], forward: bool) -> ColumnElement[bool]:
    """Rows strictly after `values` in the order of `keys` (before it when not `forward`)."""
    if len({key.descending for key in keys}) == 1:
        row, bound = tuple_(*(k.expression for k in keys)), tuple_(*values)
        return row > bound if forward != keys[0].descending else row < bound
    # Mixed directions: the lexicographic expansion (a > x) OR (a = x AND b < y) ...
    clauses = []
    for i, key in enumerate(keys):
        ahead = forward != key.descending
        step = key.expression > values[i] if ahead else key.expression < values[i]
        equal = [k.expression == v for k, v in zip(keys[:i], values[:i], strict=True)]
        clauses.append(and_(*equal, step))
    return or_(*clauses)


def apply_keyset(statement: Select[Any], keys: Sequence[SortKey], page: PageRequest) -> Select[Any]:
    """Order `statement` by `keys` and restrict it to the requested window, plus one row to
    tell whether there is more."""
    for name, cursor, forward in (("after", page.after, True), ("before", page.before, False)):
        if cursor is None:
            continue
        values = parse_cursor(cursor, [key.parse for key in keys], name)
        statement = statement.where(_after(keys, values, forward))
    return statement.order_by(*keyset_order(keys, page)).limit(page.size + 1)


def keyset_order(keys: Sequence[SortKey], page: PageRequest) -> list[ColumnElement[Any]]:
    """The order a page's rows are read in: the keys', reversed for a backwards page."""
    return [
        key.expression.desc() if key.descending != page.backwards else key.expression.asc()
        for key in keys
    ]


def build_page(rows: list[T], keys_of: Any, page: PageRequest) -> Page[T]:
    """Trim the extra row and put a backwards page back in display order."""
    more = len(rows) > page.size
    rows = rows[: page.size]
    if page.backwards:
        rows.reverse()
    cursors = [encode_cursor(keys_of(row)) for row in rows]
    if page.backwards:
        return Page(rows, cursors, has_next=page.before is not None, has_previous=more)
    return Page(rows, cursors, has_next=more, has_previous=page.after is not None)
