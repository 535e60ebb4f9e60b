"""Customers (unified profiles) and the records of merges between them."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Date, ForeignKey, Index, Integer, String, Text, Uuid, func
from sqlalchemy import literal as sql_literal
from sqlalchemy.orm import InstrumentedAttribute, Mapped, mapped_column

from store.models.base import Base
from store.types import JsonType, UTCDateTime, utcnow


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"), index=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    gender: Mapped[str | None] = mapped_column(String(32))
    birthday: Mapped[date | None] = mapped_column(Date)
    locale: Mapped[str | None] = mapped_column(String(35))
    country: Mapped[str | None] = mapped_column(String(64))
    region: Mapped[str | None] = mapped_column(String(100))
    city: Mapped[str | None] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    # When each profile field was last set: field survivorship on merge compares these.
    field_times: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)
    # The source (channel) that set each field, keyed as field_times.
    field_sources: Mapped[dict[str, str | None]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stage: Mapped[str | None] = mapped_column(String(64))
    stage_entered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        Index("ix_customers_status_created_at", "status", "created_at", "id"),
        Index("ix_customers_status_last_seen_at", "status", "last_seen_at", "id"),
        Index("ix_customers_status_display_name", "status", "display_name", "id"),
        Index("ix_customers_status_stage_entered_at", "status", "stage_entered_at", "id"),
        Index("ix_customers_stage", "stage", "stage_entered_at"),
        # The incremental duplicate scan reads the profiles changed since it last ran.
        Index("ix_customers_updated_at", "updated_at"),
    )


# What a missing value sorts as: before every real time, or before every real name.
SORT_FLOORS: dict[str, Any] = {
    "last_seen_at": datetime(1970, 1, 1, tzinfo=UTC),
    "stage_entered_at": datetime(1970, 1, 1, tzinfo=UTC),
    "display_name": "",
}


def sort_value(column: InstrumentedAttribute[Any]) -> ColumnElement[Any]:
    """A nullable column as customer lists sort it: `coalesce(column, floor)`, the floor
    written into the SQL rather than bound, so that the index below matches the query (an
    index expression never matches a bound parameter in a generic plan)."""
    floor = sql_literal(SORT_FLOORS[column.key], column.type, literal_execute=True)
    return func.coalesce(column, floor)


for _name in SORT_FLOORS:
    Index(
        f"ix_customers_status_{_name}_sort",
        Customer.status,
        sort_value(getattr(Customer, _name)),
        Customer.id,
    )


class MergeRecord(Base):
    """One merge of `merged_id` into `survivor_id`, with what is needed to undo it."""

    __tablename__ = "merge_records"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    merged_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    via: Mapped[str] = mapped_column(String(16), default="manual")  # identify, manual, duplicate
    linked_by: Mapped[list[int]] = mapped_column(JsonType, default=list)  # identity ids


class SurvivorshipRule(Base):
    """Which value of a field survives a merge or an update (domain.identity.survivorship)."""

    __tablename__ = "survivorship_rules"

    field: Mapped[str] = mapped_column(String(120), primary_key=True)
    rule: Mapped[str] = mapped_column(String(16))


class SourceTrust(Base):
    """How far a source is trusted: a higher rank wins under the MOST_TRUSTED rule."""

    __tablename__ = "source_trust"

    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
