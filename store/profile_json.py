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
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, literal_column, select, text

from store.db import Database
from store.json_fields import Pick, customer_fields, iso, json_object, object_of

__all__ = [
    "CompiledCustomer",
    "CompiledPage",
    "PageRows",
    "Pick",
    "compile_customer",
    "compile_page",
    "customer_json",
    "page_json",
    "supported",
]


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


def compile_customer(picks: tuple[Pick, ...], sees_pii: bool) -> CompiledCustomer | None:
    """The profile's JSON for this selection and a caller who does (not) see PII, or None
    when a field of it does not compile."""
    built = object_of(picks, "Customer", customer_fields(sees_pii))
    return None if built is None else CompiledCustomer(built)


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
    """(OFFSET 0 keeps PostgreSQL from inlining the document into both columns: it would be
    built twice.)"""
    return f"SELECT {', '.join(_COUNTED)} FROM (SELECT {document} AS d {source} OFFSET 0) AS r"


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
    values = [f"{iso(f'c.k{i}', ' ')}" for i in range(width - 1)] + [f"c.k{width - 1}::text"]
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
            aggregated = f"json_agg({json_object(edge)} ORDER BY c.rn {display})"
            parts.append((key, f"(SELECT coalesce({aggregated}, '[]') FROM page c WHERE {shown})"))
        else:
            parts.append((key, json_object([(p.key, info[p.name]) for p in detail])))
    answer: list[Any] = [literal_column(json_object(parts)).label("d")]
    statement = select(*answer).offset(0).subquery("r")  # built once (`_counted`)
    columns: list[Any] = [literal_column(column) for column in _COUNTED]
    counted = select(*columns).select_from(statement)
    counted = counted.add_cte(page.rows.cte("page"))
    if page.total is not None:
        counted = counted.add_cte(page.total.cte("total"))
    found = await _run(db, counted)
    assert found is not None  # a connection is always an object
    return found
