"""Comparisons on one top-level key of a JSON document: a customer's custom attributes
(`attributes.<key>`) and an event's properties (an event condition's `where`).

A stored JSON value has no declared type, so a comparison takes the type of the condition's
values: 30 matches 30 (and 30.0), never "30"; a value of another type reads as no value. This
module only validates and types such a comparison; domain.conditions.sql compiles it.
"""

from __future__ import annotations

from typing import Any

from domain.conditions.tree import OPS_BY_KIND, Kind, Op, Test
from domain.errors import InvalidInput
from domain.values import MAX_NUMBER, representable_number

__all__ = ["checked_key", "is_number", "typed_test"]


def is_number(value: Any) -> bool:
    """A JSON number both backends compare exactly (domain.values); others are refused."""
    return isinstance(value, int | float) and representable_number(value)


def checked_key(key: Any, what: str, path: tuple[str | int, ...]) -> str:
    """A top-level key a JSON path can name without escaping."""
    if not isinstance(key, str) or not key or '"' in key or "\\" in key:
        raise InvalidInput(f"{key!r} is not {what}", field=path, code="UNKNOWN_FIELD")
    return key


def typed_test(
    op: Op, operands: tuple[Any, ...], path: tuple[str | int, ...]
) -> tuple[Kind | None, Test]:
    """The comparison `op operands` typed by its operands (None for EXISTS / NOT_EXISTS)."""
    if not operands:
        return None, Test(op, ())
    kind = _json_kind(operands, path)
    if op not in OPS_BY_KIND[kind]:
        raise InvalidInput(
            f"{op.value} does not apply to a {kind.value} value",
            field=path,
            code="INVALID_OPERATOR",
        )
    if kind is Kind.NUMBER:
        operands = tuple(float(v) for v in operands)  # 31 and 31.0 are one JSON number
    return kind, Test(op, operands)


def _json_kind(values: tuple[Any, ...], path: tuple[str | int, ...]) -> Kind:
    """One type for all the values of a comparison."""
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add(Kind.BOOLEAN)
        elif is_number(value):
            kinds.add(Kind.NUMBER)
        elif isinstance(value, int | float):
            raise InvalidInput(
                f"a number is finite and at most {MAX_NUMBER:.0e} in magnitude",
                field=path,
                code="INVALID_VALUE",
            )
        elif isinstance(value, str):
            kinds.add(Kind.TEXT)
        else:
            raise InvalidInput(
                "JSON values compare with a string, number or boolean",
                field=path,
                code="INVALID_VALUE",
            )
    if len(kinds) > 1:
        raise InvalidInput(
            "the values of one condition have one type", field=path, code="INVALID_VALUE"
        )
    return kinds.pop()
