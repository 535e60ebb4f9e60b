"""Writing many rows at once (COPY), updating many in one statement, moving rows between
owners in one statement, and the upsert that leaves decided rows alone: the spelling differs
between PostgreSQL (COPY, UPDATE ... FROM unnest, ON CONFLICT) and SQLite (executemany, CASE,
its ON CONFLICT)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from store.sqlfuncs import on_postgresql


async def copy_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
) -> None:
    """Insert `rows` (dicts keyed by column name) into `table`: COPY on PostgreSQL, which
    loads a million rows in seconds; one executemany INSERT on SQLite. `columns`: the ones
    written (default: all; leave out a generated key), each value passed through its column
    type's bind processing as a statement would (JSON to text, times to UTC)."""
    if not rows:
        return
    if not on_postgresql(session):
        await session.execute(insert(table), list(rows))
        return
    columns = list(columns) if columns is not None else [c.name for c in table.columns]
    connection = await session.connection()
    dialect = connection.dialect
    processors = [
        (name, table.columns[name].type._cached_bind_processor(dialect)) for name in columns
    ]
    raw = await connection.get_raw_connection()
    records = [
        tuple(p(row.get(name)) if p else row.get(name) for name, p in processors) for row in rows
    ]
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        table.name, records=records, columns=columns
    )


async def update_rows(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    key: str = "id",
    later_only: str | None = None,
) -> None:
    """Set each row's columns on the stored row whose `key` is the row's (every row names the
    same columns); with `later_only`, only where that column's stored value is NULL or earlier
    than the row's. PostgreSQL: one UPDATE … FROM unnest() of one array per column, where an
    executemany pays a round of parameter handling per row; SQLite: an executemany."""
    if not rows:
        return
    columns = [name for name in rows[0] if name != key]
    if not on_postgresql(session):
        values: dict[str, Any] = {name: bindparam(f"row_{name}") for name in columns}
        statement = update(table).where(table.c[key] == bindparam("row_key")).values(values)
        if later_only is not None:
            stored = table.c[later_only]
            statement = statement.where(or_(stored.is_(None), stored < values[later_only]))
        await session.execute(
            statement,
            [
                {"row_key": row[key], **{f"row_{name}": row[name] for name in columns}}
                for row in rows
            ],
        )
        return
    names = [key, *columns]
    arrays = [
        bindparam(None, [row[name] for row in rows], type_=ARRAY(table.c[name].type))
        for name in names
    ]
    source = func.unnest(*arrays).table_valued(*names).render_derived(name="source")
    statement = (
        update(table)
        .where(table.c[key] == source.c[key])
        .values({name: source.c[name] for name in columns})
    )
    if later_only is not None:
        stored = table.c[later_only]
        statement = statement.where(or_(stored.is_(None), stored < source.c[later_only]))
    await session.execute(statement)


async def upsert_unless(
    session: AsyncSession,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    update: Sequence[str],
    only_where: ColumnElement[bool],
) -> None:
    """Insert `rows`; a row whose `keys` already exist updates its `update` columns only where
    `only_where` holds of the stored row (else it is left as it is)."""
    if not rows:
        return
    dialect = postgresql if on_postgresql(session) else sqlite
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys),
        set_={name: statement.excluded[name] for name in update},
        where=only_where,
    )
    await session.execute(statement, list(rows))


async def move_rows(
    session: AsyncSession,
    table: Table,
    by: str,
    moves: Mapping[Any, Mapping[str, Any]],
) -> list[tuple[Any, Any]]:
    """For each value `old` of column `by` in `moves`, set the columns of `moves[old]` (every
    entry names the same columns) on the rows whose `by` is `old`; the (id, old) of each row
    changed. One UPDATE ... FROM unnest() on PostgreSQL, whatever the number of values (its
    RETURNING names the row's old value); a SELECT then one UPDATE with CASE on SQLite, whose
    RETURNING cannot read the old value and whose writer holds the whole database anyway."""
    if not moves:
        return []
    olds = list(moves)
    columns = list(moves[olds[0]])
    key = table.c[by]
    if on_postgresql(session):
        arrays = [bindparam(None, olds, type_=ARRAY(key.type))] + [
            bindparam(None, [moves[old][name] for old in olds], type_=ARRAY(table.c[name].type))
            for name in columns
        ]
        mapping = func.unnest(*arrays).table_valued("old", *columns).render_derived("moves")
        moved = await session.execute(
            update(table)
            .where(key == mapping.c.old)
            .values({name: mapping.c[name] for name in columns})
            .returning(table.c.id, mapping.c.old)
        )
        return [(row_id, old) for row_id, old in moved]
    found = [
        (row_id, old)
        for row_id, old in await session.execute(select(table.c.id, key).where(key.in_(olds)))
    ]
    if found:
        await session.execute(
            update(table)
            .where(key.in_(olds))
            .values(
                {
                    name: case(
                        {
                            old: bindparam(None, moves[old][name], type_=table.c[name].type)
                            for old in olds
                        },
                        value=key,
                    )
                    for name in columns
                }
            )
        )
    return found
