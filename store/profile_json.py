"""Profiles as their answer's JSON, built by PostgreSQL: the SQL (domain.profile_json says why).

`compile_customer` and `compile_page` turn a tree of `Pick`s (response key, field's Python
name, what is picked below it) into SQL expressions that build the JSON of a profile or of a
CustomerConnection, or say they cannot (None: the caller answers with the resolvers). The
statements return the JSON as text and the number of objects in it (itself included: api.costs
charges per object). This module knows tables, columns and how each value is written:
- global ids: base64 of `Type:uuid` (api.ids);
- DateTime: Python's `isoformat()` of a UTC datetime (microseconds only when not zero,
  `+00:00`); Date: `YYYY-MM-DD`;
- cursors: domain.pagination's, base64url (unpadded) of the JSON list of the sort values as
  `str()` writes them (timestamps, then the id);
- PII: decided when the plan is compiled, for a caller who sees PII (the PII fields of an
  erased profile are null) or not (null always; identities of PII types left out).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, literal_column, select, text

from store.db import Database


@dataclass(frozen=True, slots=True)
class Pick:
    """One field of a selection: its response key (an alias or its name), the field's Python
    name, and what is picked below it (empty for a leaf)."""

    key: str
    name: str
    below: tuple[Pick, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledCustomer:
    """The JSON of one profile, as an SQL expression over a row of customers aliased `c`."""

    sql: str


@dataclass(frozen=True, slots=True)
class CompiledPage:
    """A CustomerConnection's selection: per key, what it builds (see `_page_parts`)."""

    parts: tuple[tuple[str, str, Any], ...]


def supported(db: Database) -> bool:
    """Compiled reads are PostgreSQL's (domain.profile_json says why not SQLite's)."""
    return db.dialect == "postgresql"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _iso(column: str, separator: str = "T") -> str:
    """Python's isoformat() of a UTC timestamp (str() with a space separator); NULL stays."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"{separator}\"HH24:MI:SS') || CASE WHEN "
        f"date_trunc('second', {column}) = {column} THEN '' ELSE to_char({utc}, '.US') END"
        " || '+00:00')"
    )


def _global_id(type_name: str, column: str) -> str:
    return f"encode(convert_to('{type_name}:' || {column}::text, 'UTF8'), 'base64')"


def _object(parts: Sequence[tuple[str, str]]) -> str:
    """json_build_object of (key, expression) pairs; PostgreSQL takes at most 100 arguments,
    so a wider object is the concatenation of narrower ones (keys stay in order)."""
    chunks = [parts[i : i + 50] for i in range(0, len(parts), 50)] or [[]]
    built = [
        "json_build_object(" + ", ".join(f"{_quote(k)}, {v}" for k, v in chunk) + ")"
        for chunk in chunks
    ]
    if len(built) == 1:
        return built[0]
    return "(" + " || ".join(f"{b}::jsonb" for b in built) + ")::json"


# Customer's fields that are columns, by how they are written.
_PLAIN = {"status", "gender", "locale", "country", "region", "city"}
_PII_TEXT = {"display_name", "first_name", "last_name", "email", "phone"}
_TIMES = {"created_at", "updated_at", "first_seen_at", "last_seen_at", "stage_entered_at"}
_IDENTITY_TEXT = {"type", "value", "source", "verified"}
_IDENTITY_TIMES = {"first_seen_at", "last_seen_at"}


def _identities(picks: tuple[Pick, ...], sees_pii: bool) -> str | None:
    parts = []
    for pick in picks:
        if pick.name == "__typename":
            parts.append((pick.key, "'Identity'"))
        elif pick.name in _IDENTITY_TEXT and not pick.below:
            parts.append((pick.key, f"i.{pick.name}"))
        elif pick.name in _IDENTITY_TIMES and not pick.below:
            parts.append((pick.key, _iso(f"i.{pick.name}")))
        else:
            return None
    hidden = "" if sees_pii else " AND i.type NOT IN (SELECT key FROM identity_types WHERE is_pii)"
    return (
        f"(SELECT coalesce(json_agg({_object(parts)} ORDER BY i.type, i.first_seen_at, i.id),"
        f" '[]') FROM identities i WHERE i.customer_id = c.id{hidden})"
    )


def _customer_field(pick: Pick, sees_pii: bool) -> str | None:
    name = pick.name
    if pick.below or name == "identities":
        return _identities(pick.below, sees_pii) if name == "identities" else None
    shown = "CASE WHEN c.status = 'ERASED' THEN NULL ELSE {} END"
    if name == "__typename":
        return "'Customer'"
    if name == "id":
        return _global_id("Customer", "c.id")
    if name in _PLAIN:
        return f"c.{name}"
    if name in _TIMES:
        return _iso(f"c.{name}")
    if name in _PII_TEXT:
        return shown.format(f"c.{name}") if sees_pii else "NULL::text"
    if name == "birthday":
        return shown.format("to_char(c.birthday, 'YYYY-MM-DD')") if sees_pii else "NULL::text"
    if name == "attributes" and sees_pii:
        return "c.attributes"
    return None


def compile_customer(picks: tuple[Pick, ...], sees_pii: bool) -> CompiledCustomer | None:
    """The profile's JSON for this selection and a caller who does (not) see PII, or None
    when a field of it does not compile."""
    parts = []
    for pick in picks:
        built = _customer_field(pick, sees_pii)
        if built is None:
            return None
        parts.append((pick.key, built))
    return CompiledCustomer(_object(parts))


_PAGE_INFO = {"has_next_page", "has_previous_page", "start_cursor", "end_cursor", "__typename"}


def compile_page(picks: tuple[Pick, ...], sees_pii: bool) -> CompiledPage | None:
    """A CustomerConnection's JSON for this selection, or None when a field does not compile."""
    parts: list[tuple[str, str, Any]] = []
    for pick in picks:
        if pick.name == "__typename":
            parts.append((pick.key, "typename", "'CustomerConnection'"))
        elif pick.name == "total_count" and not pick.below:
            parts.append((pick.key, "total_count", None))
        elif pick.name == "page_info" and all(p.name in _PAGE_INFO for p in pick.below):
            parts.append((pick.key, "page_info", pick.below))
        elif pick.name == "edges":
            edge: list[tuple[str, str, Any]] = []
            for below in pick.below:
                if below.name == "__typename":
                    edge.append((below.key, "typename", "'CustomerEdge'"))
                elif below.name == "cursor" and not below.below:
                    edge.append((below.key, "cursor", None))
                elif below.name == "node":
                    node = compile_customer(below.below, sees_pii)
                    if node is None:
                        return None
                    edge.append((below.key, "node", node))
                else:
                    return None
            parts.append((pick.key, "edges", tuple(edge)))
        else:
            return None
    return CompiledPage(tuple(parts))


# The JSON `r.d` as text and the number of objects in it (itself included).
_COUNTED = (
    "r.d::text",
    "(SELECT count(*) FROM jsonb_path_query(r.d::jsonb, 'strict $.**') AS v"
    " WHERE jsonb_typeof(v) = 'object')",
)


def _counted(document: str, source: str) -> str:
    return f"SELECT {', '.join(_COUNTED)} FROM (SELECT {document} AS d {source}) AS r"


async def _run(db: Database, statement: Any, **binds: Any) -> tuple[bytes, int] | None:
    async with db.read() as session:
        row = (await session.execute(statement, binds)).first()
    return None if row is None or row[0] is None else (row[0].encode(), int(row[1]))


# A merged-away id answers with its survivor (domain.profile.get_customer): the chain of
# merges is followed in the same statement.
_LIVE_ID = """WITH RECURSIVE chain(id, status, merged_into_id, hops) AS (
    SELECT id, status, merged_into_id, 0 FROM customers WHERE id = :id
  UNION ALL
    SELECT n.id, n.status, n.merged_into_id, chain.hops + 1
    FROM chain JOIN customers n ON n.id = chain.merged_into_id
    WHERE chain.status = 'MERGED' AND chain.hops < 64)"""


async def customer_json(
    db: Database, compiled: CompiledCustomer, customer_id: uuid.UUID
) -> tuple[bytes, int] | None:
    """The profile `customer_id` stands for, as JSON with its count of objects; None when
    there is none. One statement."""
    source = (
        "FROM customers c WHERE c.id = (SELECT id FROM chain WHERE NOT (status = 'MERGED'"
        " AND merged_into_id IS NOT NULL) LIMIT 1)"
    )
    statement = text(f"{_LIVE_ID} {_counted(compiled.sql, source)}")
    return await _run(db, statement, id=customer_id)


def _cursor(width: int) -> str:
    """domain.pagination.encode_cursor of the row's sort values k0.. (timestamps, then id)."""
    values = [f"{_iso(f'c.k{i}', ' ')}" for i in range(width - 1)] + [f"c.k{width - 1}::text"]
    listed = " || '\",\"' || ".join(values)
    raw = f"'[\"' || {listed} || '\"]'"
    return f"rtrim(translate(encode(convert_to({raw}, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"


@dataclass(frozen=True, slots=True)
class PageRows:
    """The rows of one page, as domain.pagination reads them: `rows` selects the customers'
    columns, their sort values k0.. (timestamps, then the id) and `rn`, their place in reading
    order, for `size` rows and one more; `total` counts every match (None: not asked for)."""

    rows: Select[Any]
    width: int
    size: int
    backwards: bool
    after: bool
    before: bool
    total: Select[Any] | None


async def page_json(db: Database, compiled: CompiledPage, page: PageRows) -> tuple[bytes, int]:
    """The page as the JSON of a CustomerConnection, with its count of objects. One
    statement."""
    size, backwards = page.size, page.backwards
    shown = f"c.rn <= {size}"
    display = "DESC" if backwards else "ASC"
    cursor = _cursor(page.width)
    more = f"((SELECT count(*) FROM page) > {size})"
    has_next = ("true" if page.before else "false") if backwards else more
    has_previous = more if backwards else ("true" if page.after else "false")
    first, last = ("DESC", "ASC") if backwards else ("ASC", "DESC")

    def edge_cursor(direction: str) -> str:
        return f"(SELECT {cursor} FROM page c WHERE {shown} ORDER BY c.rn {direction} LIMIT 1)"

    info = {
        "has_next_page": has_next,
        "has_previous_page": has_previous,
        "start_cursor": edge_cursor(first),
        "end_cursor": edge_cursor(last),
        "__typename": "'PageInfo'",
    }
    parts = []
    for key, kind, detail in compiled.parts:
        if kind == "typename":
            parts.append((key, detail))
        elif kind == "total_count":
            parts.append((key, "(SELECT n FROM total)"))
        elif kind == "edges":
            edge = []
            for edge_key, edge_kind, node in detail:
                built = {"typename": node, "cursor": cursor}.get(edge_kind)
                edge.append((edge_key, built if built is not None else node.sql))
            aggregated = f"json_agg({_object(edge)} ORDER BY c.rn {display})"
            parts.append((key, f"(SELECT coalesce({aggregated}, '[]') FROM page c WHERE {shown})"))
        else:
            parts.append((key, _object([(p.key, info[p.name]) for p in detail])))
    statement = select(literal_column(_object(parts)).label("d")).subquery("r")
    columns: list[Any] = [literal_column(column) for column in _COUNTED]
    counted = select(*columns).select_from(statement)
    counted = counted.add_cte(page.rows.cte("page"))
    if page.total is not None:
        counted = counted.add_cte(page.total.cte("total"))
    found = await _run(db, counted)
    assert found is not None  # a connection is always an object
    return found
