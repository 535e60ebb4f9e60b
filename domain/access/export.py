"""Everything held on one person, as plain JSON (GDPR's right of access).

The export follows the person, not the row: a merged-away id stands for its survivor, and the
profiles merged into it come along (their rows are the person's data too). Each table's rows
are exported whole, column by column, so a column added later is exported without a change
here; only internal bookkeeping (field times, versions, merge undo snapshots) is left out.
Events of months retention retired are gone: their monthly rollups (eventRollups) say what was.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, or_, select

from domain.profile import merged_family, resolve_live_id
from store.db import Database
from store.models import (
    Customer,
    CustomerMetrics,
    Event,
    EventRollup,
    Identity,
    MergeRecord,
    Order,
    SegmentMembership,
    StageTransition,
    TagAssignment,
    TagDefinition,
    TagHistory,
)

INTERNAL = frozenset({"field_times", "field_sources", "version", "snapshot", "linked_by"})
# section -> the table whose rows with the person's customer_id it holds
SECTIONS: dict[str, Table] = {
    "identities": Identity.__table__,  # type: ignore[dict-item]
    "tags": TagAssignment.__table__,  # type: ignore[dict-item]
    "tagHistory": TagHistory.__table__,  # type: ignore[dict-item]
    "stageHistory": StageTransition.__table__,  # type: ignore[dict-item]
    "segments": SegmentMembership.__table__,  # type: ignore[dict-item]
    "events": Event.__table__,  # type: ignore[dict-item]
    # Retired months of events (domain.activity.retention): all that is kept of them.
    "eventRollups": EventRollup.__table__,  # type: ignore[dict-item]
    "orders": Order.__table__,  # type: ignore[dict-item]
    "metrics": CustomerMetrics.__table__,  # type: ignore[dict-item]
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    return value


def _rows(table: Table, rows: Any) -> list[dict[str, Any]]:
    names = [c.name for c in table.columns if c.name not in INTERNAL]
    return [{name: _plain(row._mapping[name]) for name in names} for row in rows]


async def export_customer(db: Database, customer_id: uuid.UUID) -> dict[str, Any] | None:
    """None when no such customer exists."""
    async with db.read() as session:
        live = await resolve_live_id(session, customer_id)
        if live is None:
            return None
        ids = await merged_family(session, live)
        customers: Table = Customer.__table__  # type: ignore[assignment]
        profiles = _rows(
            customers, await session.execute(select(customers).where(customers.c.id.in_(ids)))
        )
        out: dict[str, Any] = {
            "customerId": str(live),
            "profile": next(p for p in profiles if p["id"] == str(live)),
            "mergedProfiles": [p for p in profiles if p["id"] != str(live)],
        }
        for section, table in SECTIONS.items():
            statement = select(table).where(table.c.customer_id.in_(ids))
            out[section] = _rows(table, await session.execute(statement))
        merges: Table = MergeRecord.__table__  # type: ignore[assignment]
        statement = select(merges).where(
            or_(merges.c.survivor_id.in_(ids), merges.c.merged_id.in_(ids))
        )
        out["merges"] = _rows(merges, await session.execute(statement))
        tag_ids = {row["tag_id"] for row in out["tags"] + out["tagHistory"]}
        keys = await session.execute(
            select(TagDefinition.id, TagDefinition.key).where(
                TagDefinition.id.in_([uuid.UUID(t) for t in tag_ids])
            )
        )
        out["tagKeys"] = {str(i): k for i, k in keys}
        return out
