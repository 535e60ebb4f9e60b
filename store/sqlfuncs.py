"""The few SQL expressions whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, String, bindparam, cast, extract, func, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY

from store.types import UTCDateTime


def days_since(dialect: str, moment: Any, now: datetime) -> ColumnElement[Any]:
    """Fractional days from `moment` to `now` (NULL when `moment` is NULL)."""
    bound = bindparam(None, now, type_=UTCDateTime())
    if dialect == "postgresql":
        return cast(extract("epoch", bound - moment), Float) / 86400.0
    return func.julianday(bound) - func.julianday(moment)


def new_uuid(dialect: str) -> ColumnElement[Any]:
    """A random UUID made by the database, for rows written by INSERT ... SELECT."""
    if dialect == "postgresql":
        return func.gen_random_uuid()
    return func.lower(func.hex(func.randomblob(16)))  # how the Uuid type stores one on SQLite


def pair_in(
    dialect: str, first: Any, second: Any, pairs: Sequence[tuple[str, str]]
) -> ColumnElement[bool]:
    """(first, second) IN pairs. On PostgreSQL the pairs travel as two arrays and are joined
    from unnest(): a long literal IN list of row values plans as one index probe per pair."""
    if dialect != "postgresql":
        return tuple_(first, second).in_(pairs)
    left = bindparam(None, [p[0] for p in pairs], type_=ARRAY(String()))
    right = bindparam(None, [p[1] for p in pairs], type_=ARRAY(String()))
    rows = func.unnest(left, right).table_valued("a", "b").render_derived()
    return tuple_(first, second).in_(select(rows.c.a, rows.c.b))
