"""A page of profiles' nested lists in one statement, on PostgreSQL: the statement and its run.

Reading a page of fifty profiles list by list costs a statement per list, and most of a
statement's cost here is not PostgreSQL's but the driver's and SQLAlchemy's, row by row and
column by column: a page brings back about six hundred rows. Here PostgreSQL builds, per
profile, one JSON array per list (correlated subqueries on the same indexes), and the page comes
back as fifty rows of text, parsed here into plain lists. Turning them into records is the
domain's (`domain.profile_bundle`); this module knows tables and columns, never records.

Timestamps travel as microseconds since the epoch and money as text, so nothing is rounded or
shifted to the session's time zone on the way. SQLite has no such statement: there the lists
are read one by one (`supported`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import BindParameter, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

from store.db import Database
from store.types import UTCDateTime

PARTS = ("identities", "tags", "history", "metrics")


def _micros(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


# Per part, the columns of one row in the order they travel; metrics is one row, not a list.
_SQL = {
    "identities": f"""(SELECT json_agg(json_build_array(
            i.type, i.value, i.source, i.verified, {_micros("i.first_seen_at")},
            {_micros("i.last_seen_at")}) ORDER BY i.type, i.first_seen_at, i.id)
        FROM identities i WHERE i.customer_id = c.id)""",
    "tags": f"""(SELECT json_agg(json_build_array(
            a.tag_id, a.value, a.source, a.confidence, {_micros("a.assigned_at")},
            {_micros("a.expires_at")}) ORDER BY a.assigned_at, a.id)
        FROM tag_assignments a
        WHERE a.customer_id = c.id AND (a.expires_at IS NULL OR a.expires_at > :now))""",
    "history": f"""(SELECT json_agg(json_build_array(
            t.from_stage, t.to_stage, {_micros("t.at")}, t.reason, t.actor, t.rule_key,
            t.merge_id) ORDER BY t.at, t.id)
        FROM stage_transitions t WHERE t.customer_id = c.id)""",
    "metrics": f"""(SELECT json_build_array(
            m.order_count, m.total_spent::text, {_micros("m.first_order_at")},
            {_micros("m.last_order_at")}, {_micros("m.last_activity_at")}, m.rfm_recency,
            m.rfm_frequency, m.rfm_monetary, m.rfm_segment, m.clv::text, m.churn_risk)
        FROM customer_metrics m WHERE m.customer_id = c.id)""",
}


def supported(db: Database) -> bool:
    """The statement is PostgreSQL's; elsewhere the lists are read one by one."""
    return db.dialect == "postgresql"


async def read_lists(
    db: Database, customer_ids: Sequence[uuid.UUID], parts: Collection[str], now: datetime
) -> dict[uuid.UUID, dict[str, Any]]:
    """Per profile of `customer_ids` found, per part of `parts` (of PARTS) asked for: the rows
    of identities, tags (those not expired at `now`) and history as lists of column values
    ([] when there are none), and metrics as one list of column values (None without a row).
    One statement; none when nothing is asked for."""
    wanted = [part for part in PARTS if part in parts]
    if not wanted or not customer_ids:
        return {}
    columns = ", ".join(f"{_SQL[part]}::text AS {part}" for part in wanted)
    statement = text(f"SELECT c.id, {columns} FROM unnest(:ids) AS c(id)")
    binds: list[BindParameter[Any]] = [bindparam("ids", type_=ARRAY(Uuid()))]
    if "tags" in wanted:
        binds.append(bindparam("now", type_=UTCDateTime()))
    statement = statement.bindparams(*binds)
    async with db.read() as session:
        rows = (await session.execute(statement, {"ids": list(customer_ids), "now": now})).all()
    found: dict[uuid.UUID, dict[str, Any]] = {}
    for row in rows:
        values = dict(zip(wanted, row[1:], strict=True))
        found[row[0]] = {
            part: orjson.loads(raw) if raw else (None if part == "metrics" else [])
            for part, raw in values.items()
        }
    return found
