"""What a merge record's snapshot holds, and the one list of tables whose rows a merge moves.

A merge writes the snapshot (domain.identity.merge_batch) and an unmerge reads it back
(domain.identity.merging); both go through this module so that the two never disagree on a
key or a column. A table added to `MOVED_TABLES` is moved by every merge and given back by
every unmerge; snapshots written before it was added lack its key and restore none of its rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date

from domain.identity.traits import COLUMNS
from store.models import Customer, Event, EventRollup, Identity, Order, StageTransition
from store.types import UTCDateTime

# Survivor columns a merge may change, restored on unmerge if nothing changed them since.
SURVIVOR_COLUMNS = (
    *COLUMNS,
    "attributes",
    "field_times",
    "field_sources",
    "email",
    "phone",
    "first_seen_at",
    "last_seen_at",
)
CUSTOMER_COLUMNS = tuple(c.name for c in Customer.__table__.columns if c.name != "id")
TAG_COLUMNS = ("tag_id", "value", "source", "confidence", "actor", "assigned_at", "expires_at")


@dataclass(frozen=True, slots=True)
class MovedTable:
    """A table whose rows follow their customer into the survivor and go back on unmerge (it
    has `id` and `customer_id` columns). `key`: the snapshot entry listing the ids moved;
    `merge_column`: a column set to the merge's id while the rows are moved (cleared on undo)."""

    model: Any
    key: str
    merge_column: str | None = None


MOVED_TABLES = (
    MovedTable(Identity, "identities"),
    MovedTable(Event, "events"),
    MovedTable(EventRollup, "rollups"),  # retired months (domain.activity.retention)
    MovedTable(Order, "orders"),
    MovedTable(StageTransition, "transitions", merge_column="merge_id"),
)


def to_json(values: Mapping[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """These columns of a row, as the snapshot stores them (times ISO, ids as text)."""
    out: dict[str, Any] = {}
    for name in columns:
        value = values[name]
        out[name] = (
            value.isoformat()
            if isinstance(value, date | datetime)
            else (str(value) if isinstance(value, uuid.UUID) else value)
        )
    return out


def from_json(model: Any, data: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's row of `model` back as column values."""
    out: dict[str, Any] = {}
    for name, value in data.items():
        column_type = model.__table__.c[name].type
        if value is not None and isinstance(column_type, UTCDateTime):
            value = datetime.fromisoformat(value)
        elif value is not None and isinstance(column_type, Date):
            value = date.fromisoformat(value)
        elif value is not None and name.endswith("_id") and isinstance(value, str):
            value = uuid.UUID(value)
        out[name] = value
    return out
