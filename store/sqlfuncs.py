"""The few SQL expressions whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Float, bindparam, cast, extract, func

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
