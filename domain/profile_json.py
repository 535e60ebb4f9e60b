"""Profiles read as their answer's JSON, built by PostgreSQL in one statement per root field.

The API turns what a query selects below `customer` or `customers` into a tree of `Pick`s
(response key, field name, what is picked below it); `compile_customer` turns that tree into
one SQL expression that builds the profile's JSON (`json_build_object`, and `json_agg` over
correlated subqueries for its lists), or says it cannot (None: the caller answers with the
resolvers). The statement returns the JSON as text, which goes into the HTTP response as it
is: no row, record or object is made of it in Python.

Every value is formatted as the resolvers' answer formats it, so that nobody can tell which
path answered (tests/api/test_compiled_reads.py compares the two):
- global ids: base64 of `Type:uuid` (api.ids);
- DateTime: Python's `isoformat()` of a UTC datetime (microseconds only when not zero,
  `+00:00`); Date: `YYYY-MM-DD`;
- cursors: domain.pagination's, base64url (unpadded) of the JSON list of the sort values as
  `str()` writes them; only the sorts on timestamps compile (a name or an amount would need
  Python's `json.dumps` escaping and Decimal text: those pages take the resolvers);
- PII (domain.access.privacy): decided per role when the plan is compiled. For a caller who
  sees PII, the PII fields of an erased profile are null; for one who does not, they are null
  always and identities of PII types are left out. What a partner may see of attributes, tags
  and segments depends on stored conditions (PiiPolicy): those selections take the resolvers.

Alongside its JSON, a statement counts the objects in it (api.costs charges per object), so
the cost of a compiled answer is the resolvers' too.

SQLite: not compiled (`supported`). Its JSON functions could build the same shape, but not the
same text of timestamps and ids without a second set of formatting rules, checked a second
time; SQLite serves development and tests, where the resolvers' speed is enough, and the
resolvers remain the reference the compiled answers are tested against.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import func, select

from domain.conditions.sql import CustomerFilter
from domain.pagination import PageRequest, apply_keyset, keyset_order
from domain.profile import Sort, SortField, listed_customers, sort_keys
from store import profile_json as store
from store.db import Database
from store.profile_json import (
    CompiledCustomer,
    CompiledPage,
    Pick,
    compile_customer,
    compile_page,
    supported,
)

__all__ = [
    "CompiledCustomer",
    "CompiledPage",
    "Pick",
    "compile_customer",
    "compile_page",
    "customer_json",
    "customers_json",
    "page_compiles",
    "supported",
]

_TIME_SORTS = {SortField.CREATED_AT, SortField.LAST_SEEN_AT, SortField.STAGE_ENTERED_AT}


def page_compiles(order: Sequence[Sort]) -> bool:
    """Whether a page in this order compiles: its cursors hold timestamps and an id only."""
    return all(sort.field in _TIME_SORTS for sort in order)


async def customer_json(
    db: Database, compiled: CompiledCustomer, customer_id: uuid.UUID
) -> tuple[bytes, int] | None:
    """The profile `customer_id` stands for (a merged-away id: its survivor, as
    domain.profile.get_customer finds it), as JSON with its count of objects; None when
    there is none. One statement."""
    return await store.customer_json(db, compiled, customer_id)


async def customers_json(
    db: Database,
    compiled: CompiledPage,
    order: Sequence[Sort],
    page: PageRequest,
    where: CustomerFilter | None,
) -> tuple[bytes, int]:
    """The page of live profiles domain.profile.list_customers reads, as the JSON of a
    CustomerConnection, with its count of objects. One statement. `page` is validated and
    the order compiles (`page_compiles`)."""
    keys = sort_keys(order)
    rows = apply_keyset(listed_customers(order, where), keys, page).add_columns(
        *(key.expression.label(f"k{i}") for i, key in enumerate(keys)),
        func.row_number().over(order_by=keyset_order(keys, page)).label("rn"),
    )
    total = None
    if any(kind == "total_count" for _, kind, _ in compiled.parts):
        total = select(func.count().label("n")).select_from(listed_customers((), where).subquery())
    shape = store.PageRows(
        rows,
        len(keys),
        page.size,
        page.backwards,
        page.after is not None,
        page.before is not None,
        total,
    )
    return await store.page_json(db, compiled, shape)
