"""Events, orders and what is derived from them: metrics and per-channel summaries."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JsonType, UTCDateTime, utcnow

Money = Numeric(18, 2)


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    properties: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    idempotency_key: Mapped[str | None] = mapped_column(String(200))

    # PostgreSQL partitions events by month of `occurred_at` (migration c14_partitions,
    # store.partitions): its primary key there is (id, occurred_at), and a trigger keeps the
    # idempotency key unique, as this constraint does on SQLite, whatever month a retry names.
    __table_args__ = (
        UniqueConstraint("idempotency_key").ddl_if(dialect="sqlite"),
        Index("ix_events_idempotency_key", "idempotency_key").ddl_if(dialect="postgresql"),
        Index("ix_events_customer_id_occurred_at", "customer_id", "occurred_at"),
        Index("ix_events_customer_id_type_occurred_at", "customer_id", "type", "occurred_at"),
        # Who had an event of a type in a window (the condition language's event leaf over a
        # whole population): one index-only range scan instead of a scan of all events.
        Index("ix_events_type_occurred_at", "type", "occurred_at", "customer_id"),
        # Event conditions' `where` (an EQ on a text or boolean property, also asked as JSONB
        # containment: store.condition_funcs.json_contains_hint). PostgreSQL only.
        Index(
            "ix_events_properties",
            "properties",
            postgresql_using="gin",
            postgresql_ops={"properties": "jsonb_path_ops"},
        ).ddl_if(dialect="postgresql"),
    )


class EventRollup(Base):
    """What retention keeps of a retired month's events (domain.activity.retention): per
    customer, type, channel and month, how many there were and the first and last. The readers
    that count or date a customer's events over all time add these in (last activity, channel
    summaries, event conditions without a window or property filter); merges move them with
    the events. No key over (customer, type, channel, month): a merge may give a survivor two."""

    __tablename__ = "event_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    type: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str | None] = mapped_column(String(64))
    month: Mapped[datetime] = mapped_column(UTCDateTime)
    events: Mapped[int] = mapped_column(BigInteger)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_event_rollups_customer_id_type", "customer_id", "type"),)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    source: Mapped[str] = mapped_column(String(64), default="")
    external_id: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    base_amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(32), default="completed")
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_orders_customer_id_placed_at", "customer_id", "placed_at"),
    )


class CustomerMetrics(Base):
    """Derived from events and orders; kept current after writes by the derived-state worker,
    rebuilt by recompute-metrics."""

    __tablename__ = "customer_metrics"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[Decimal] = mapped_column(Money, default=Decimal(0))
    first_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_order_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    rfm_recency: Mapped[int | None] = mapped_column(Integer)
    rfm_frequency: Mapped[int | None] = mapped_column(Integer)
    rfm_monetary: Mapped[int | None] = mapped_column(Integer)
    rfm_segment: Mapped[str | None] = mapped_column(String(32), index=True)
    clv: Mapped[Decimal | None] = mapped_column(Money)
    churn_risk: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_customer_metrics_total_spent", "total_spent"),)


class CustomerChannel(Base):
    """One customer's activity through one channel (an event's channel, an order's source):
    kept at ingest in the write that stores the events and orders, rebuilt on merge and
    unmerge. Customer.channels reads it, and segment insights count channels from it rather
    than from the events table."""

    __tablename__ = "customer_channels"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    events: Mapped[int] = mapped_column(Integer, default=0)
    orders: Mapped[int] = mapped_column(Integer, default=0)
