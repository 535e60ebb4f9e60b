"""Customers (unified profiles) and the records of merges between them."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

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
