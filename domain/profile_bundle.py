"""A page of profiles' nested lists in one statement, on PostgreSQL.

Reading a page of fifty profiles list by list (identities_of, assignments_of, history_of,
metrics_of) costs a statement per list, and most of a statement's cost here is not
PostgreSQL's but the driver's and SQLAlchemy's, row by row and column by column: a page
brings back about six hundred rows. Here PostgreSQL builds, per profile, one JSON array per
list (correlated subqueries on the same indexes), the page comes back as fifty rows of text,
and the records are built from the parsed JSON. The records are the very ones the per-list
functions return (a test compares them), so whoever reads them cannot tell the difference.

Timestamps travel as microseconds since the epoch and money as text, so nothing is rounded or
shifted to the session's time zone on the way.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import BindParameter, Uuid, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY

from domain.activity.metrics import MetricsRecord, RfmRecord
from domain.lifecycle.model import TransitionRecord
from domain.profile import IdentityRecord
from domain.tags import AssignmentRecord
from store.db import Database
from store.types import UTCDateTime

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PARTS = ("identities", "tags", "history", "metrics")


def _micros(column: str) -> str:
    return f"(extract(epoch FROM {column}) * 1000000)::bigint"


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


@dataclass(frozen=True, slots=True)
class Bundle:
    """One profile's lists; a part that was not asked for is None."""

    identities: list[IdentityRecord] | None = None
    tags: list[AssignmentRecord] | None = None
    history: list[TransitionRecord] | None = None
    metrics: MetricsRecord | None = None


def _at(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=micros)


def _maybe_at(micros: int | None) -> datetime | None:
    return None if micros is None else _at(micros)


def _identities(customer_id: uuid.UUID, rows: list[list[Any]]) -> list[IdentityRecord]:
    return [
        IdentityRecord(customer_id, kind, value, source, verified, _at(first), _at(last))
        for kind, value, source, verified, first, last in rows
    ]


def _tags(customer_id: uuid.UUID, rows: list[list[Any]]) -> list[AssignmentRecord]:
    return [
        AssignmentRecord(
            customer_id,
            uuid.UUID(tag_id),
            value,
            source,
            confidence,
            _at(assigned),
            _maybe_at(expires),
        )
        for tag_id, value, source, confidence, assigned, expires in rows
    ]


def _history(customer_id: uuid.UUID, rows: list[list[Any]]) -> list[TransitionRecord]:
    return [
        TransitionRecord(
            customer_id,
            from_,
            to,
            _at(at),
            reason,
            actor,
            rule,
            uuid.UUID(merge) if merge else None,
        )
        for from_, to, at, reason, actor, rule, merge in rows
    ]


def _metrics(row: list[Any]) -> MetricsRecord:
    count, spent, first, last, activity, recency, frequency, monetary, segment, clv, churn = row
    rfm = None
    if recency and frequency and monetary and segment:
        rfm = RfmRecord(recency, frequency, monetary, segment)
    return MetricsRecord(
        order_count=count,
        total_spent=Decimal(spent),
        first_order_at=_maybe_at(first),
        last_order_at=_maybe_at(last),
        last_activity_at=_maybe_at(activity),
        rfm=rfm,
        clv=Decimal(clv) if clv is not None else None,
        churn_risk=churn,
    )


def supported(db: Database) -> bool:
    """The statement is PostgreSQL's; elsewhere the lists are read one by one."""
    return db.dialect == "postgresql"


async def bundles_of(
    db: Database, customer_ids: Sequence[uuid.UUID], parts: Collection[str], now: datetime
) -> dict[uuid.UUID, Bundle]:
    """`parts` (of PARTS) for each profile of `customer_ids`; a profile with no metrics row
    gets metrics None, as metrics_of leaves it out."""
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
    found = {}
    for row in rows:
        customer_id, values = row[0], dict(zip(wanted, row[1:], strict=True))
        found[customer_id] = Bundle(
            identities=_identities(customer_id, _list(values, "identities"))
            if "identities" in values
            else None,
            tags=_tags(customer_id, _list(values, "tags")) if "tags" in values else None,
            history=_history(customer_id, _list(values, "history"))
            if "history" in values
            else None,
            metrics=_metrics(orjson.loads(values["metrics"])) if values.get("metrics") else None,
        )
    return found


def _list(values: dict[str, str | None], part: str) -> list[list[Any]]:
    raw = values[part]
    return orjson.loads(raw) if raw else []
