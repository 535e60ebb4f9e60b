"""Webhook endpoints, the delivery of each change event to each of them, and the bookkeeping
that keeps time-based triggers from firing twice for the same customer and occasion."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JsonType, UTCDateTime, utcnow


class Webhook(Base):
    """An endpoint that receives the change events of `kinds`, signed with `secret`.

    The secret is kept as given (it signs every request) and never shown again; a deleted
    webhook keeps its row so that its delivery history stays readable."""

    __tablename__ = "webhooks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2000))
    kinds: Mapped[list[str]] = mapped_column(JsonType, default=list)
    secret: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(200))
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookDelivery(Base):
    """One outbox event for one webhook: PENDING until DELIVERED, DEAD after the last failed
    attempt, CANCELLED when its webhook is deleted first.

    `next_attempt_at` is both the backoff and the lease of a dispatcher working on it: a claim
    pushes it past the request timeout, so a dispatcher that dies mid-flight only delays it.
    `customer_id` is copied from the event: deliveries to one webhook go out in order per
    customer."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id"))
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(16), default="PENDING")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("webhook_id", "outbox_id"),
        Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_customer_id", "webhook_id", "customer_id", "id"),
        Index("ix_webhook_deliveries_outbox_id", "outbox_id"),  # pruning the outbox
    )


class TriggerFiring(Base):
    """A time-based trigger that fired for a customer; `key` names the occasion (the local
    date of a birthday, the last activity an inactivity refers to, the cart's event)."""

    __tablename__ = "trigger_firings"

    trigger: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
