"""A page of profiles' nested lists in one statement, on PostgreSQL.

Reading a page of fifty profiles list by list (identities_of, assignments_of, history_of,
metrics_of) costs a statement per list, and most of a statement's cost here is not
PostgreSQL's but the driver's and SQLAlchemy's, row by row and column by column: a page
brings back about six hundred rows. `store.profile_bundle` reads a page's lists in one
statement, as plain column values; here they become records. The records are the very ones
the per-list functions return (a test compares them), so whoever reads them cannot tell the
difference. Timestamps arrive as microseconds since the epoch and money as text, so nothing
is rounded or shifted to the session's time zone on the way.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.activity.metrics import MetricsRecord, RfmRecord
from domain.lifecycle.model import TransitionRecord
from domain.profile import IdentityRecord
from domain.tags import AssignmentRecord
from store.db import Database
from store.profile_bundle import PARTS, read_lists, supported

__all__ = ["PARTS", "Bundle", "bundles_of", "supported"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


async def bundles_of(
    db: Database, customer_ids: Sequence[uuid.UUID], parts: Collection[str], now: datetime
) -> dict[uuid.UUID, Bundle]:
    """`parts` (of PARTS) for each profile of `customer_ids`; a profile with no metrics row
    gets metrics None, as metrics_of leaves it out."""
    found = {}
    for customer_id, values in (await read_lists(db, customer_ids, parts, now)).items():
        found[customer_id] = Bundle(
            identities=_identities(customer_id, values["identities"])
            if "identities" in values
            else None,
            tags=_tags(customer_id, values["tags"]) if "tags" in values else None,
            history=_history(customer_id, values["history"]) if "history" in values else None,
            metrics=_metrics(values["metrics"]) if values.get("metrics") else None,
        )
    return found
