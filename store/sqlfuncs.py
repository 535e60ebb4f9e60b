"""The few SQL expressions whose spelling differs between SQLite and PostgreSQL.

Each takes the session the statement will run on and picks its spelling from the session's
dialect, so the domain builds one statement for both backends and never asks which one it is on.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Float,
    Select,
    String,
    bindparam,
    case,
    cast,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from store.types import UTCDateTime


def on_postgresql(session: AsyncSession) -> bool:
    """Whether `session` runs on PostgreSQL (otherwise: SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def days_since(session: AsyncSession, moment: Any, now: datetime) -> ColumnElement[Any]:
    """Fractional days from `moment` to `now` (NULL when `moment` is NULL)."""
    bound = bindparam(None, now, type_=UTCDateTime())
    if on_postgresql(session):
        return cast(extract("epoch", bound - moment), Float) / 86400.0
    return func.julianday(bound) - func.julianday(moment)


def new_uuid(session: AsyncSession) -> ColumnElement[Any]:
    """A random UUID made by the database, for rows written by INSERT ... SELECT."""
    if on_postgresql(session):
        return func.gen_random_uuid()
    return func.lower(func.hex(func.randomblob(16)))  # how the Uuid type stores one on SQLite


def any_of(session: AsyncSession, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """column IN values. On PostgreSQL the values travel as one array (`= ANY($1)`): one
    statement text whatever their number, so it is compiled and planned once, where an IN
    list of a thousand parameters is rendered, sent and parsed anew for every count."""
    if not on_postgresql(session):
        return column.in_(values)  # type: ignore[no-any-return]
    return column == func.any(bindparam(None, list(values), type_=ARRAY(column.type)))  # type: ignore[no-any-return]


def pair_in(
    session: AsyncSession, first: Any, second: Any, pairs: Sequence[tuple[str, str]]
) -> ColumnElement[bool]:
    """(first, second) IN pairs. On PostgreSQL the pairs travel as two arrays and are joined
    from unnest(): a long literal IN list of row values plans as one index probe per pair."""
    if not on_postgresql(session):
        return tuple_(first, second).in_(pairs)
    left = bindparam(None, [p[0] for p in pairs], type_=ARRAY(String()))
    right = bindparam(None, [p[1] for p in pairs], type_=ARRAY(String()))
    rows = func.unnest(left, right).table_valued("a", "b").render_derived()
    return tuple_(first, second).in_(select(rows.c.a, rows.c.b))


def days_between(session: AsyncSession, start: Any, end: Any) -> ColumnElement[Any]:
    """Fractional days from `start` to `end`, both expressions (NULL when either is)."""
    if on_postgresql(session):
        return cast(extract("epoch", end - start), Float) / 86400.0
    return func.julianday(end) - func.julianday(start)


def json_object(session: AsyncSession, /, **members: Any) -> ColumnElement[Any]:
    """A JSON object built in SQL from expressions, for rows written by INSERT ... SELECT."""
    arguments = [part for key, value in members.items() for part in (literal(key), value)]
    if on_postgresql(session):
        return func.jsonb_build_object(*arguments)
    return func.json_object(*arguments)


def medians(session: AsyncSession, source: Any, group: str, value: str) -> Select[Any]:
    """(group, median of value) per group of the subquery `source`; the median of an even
    count is the mean of its two middle values. PostgreSQL has the aggregate; SQLite ranks the
    values with window functions and averages the middle one or two."""
    key, number = source.c[group], source.c[value]
    if on_postgresql(session):
        return select(key, func.percentile_cont(0.5).within_group(number)).group_by(key)
    place = func.row_number().over(partition_by=key, order_by=number).label("place")
    size = func.count().over(partition_by=key).label("size")
    ranked = select(key.label("key"), number.label("value"), place, size).subquery()
    r = ranked.c
    middle = or_(r.place == (r.size + 1) // 2, r.place == (r.size + 2) // 2)
    return select(r.key, func.avg(r.value)).where(middle).group_by(r.key)


def upsert(session: AsyncSession, model: Any) -> Any:
    """An INSERT into `model` that takes `.on_conflict_do_update(...)` (and `.excluded`): both
    dialects spell ON CONFLICT alike, but each builds it with its own insert()."""
    if on_postgresql(session):
        return postgresql.insert(model)
    return sqlite.insert(model)


def least(session: AsyncSession, *values: Any) -> ColumnElement[Any]:
    """The smallest of the values (NULL only when all are: both dialects skip NULLs here)."""
    if on_postgresql(session):
        return func.least(*values)
    return func.coalesce(func.min(*values), *values)


def greatest(session: AsyncSession, *values: Any) -> ColumnElement[Any]:
    """The largest of the values (NULL only when all are)."""
    if on_postgresql(session):
        return func.greatest(*values)
    return func.coalesce(func.max(*values), *values)


def totals_by(
    session: AsyncSession,
    source: Any,
    dimensions: Sequence[str],
    measures: Sequence[Any],
    also: Sequence[Select[Any]] = (),
) -> CompoundSelect:
    """Rows (dimension, value, *measures): the measures (aggregates over `source`'s columns)
    for each value of each dimension (a column of `source`), and once more for all of `source`
    (dimension and value NULL), followed by the rows of `also` (selects of the same shape).
    One pass with GROUPING SETS on PostgreSQL; one GROUP BY per dimension, in a UNION ALL, on
    SQLite (which has no grouping sets)."""
    columns = [source.c[name] for name in dimensions]
    if on_postgresql(session):
        grouped = [func.grouping(column) == 0 for column in columns]
        which = case(*((g, literal(name)) for g, name in zip(grouped, dimensions, strict=True)))
        value = case(*((g, column) for g, column in zip(grouped, columns, strict=True)))
        sets = func.grouping_sets(*(tuple_(column) for column in columns), literal_column("()"))
        return union_all(select(which, value, *measures).select_from(source).group_by(sets), *also)
    parts: list[Select[Any]] = [
        select(literal(name), column, *measures).select_from(source).group_by(column)
        for name, column in zip(dimensions, columns, strict=True)
    ]
    nothing = literal(None, String())
    parts.append(select(nothing, nothing, *measures).select_from(source))
    return union_all(*parts, *also)
