"""API keys, the audit log and the change-event outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JsonType, UTCDateTime, utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Cost this key may spend per minute; None: the service's default (api.limits).
    cost_budget_per_minute: Mapped[int | None] = mapped_column(Integer)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor: Mapped[str | None] = mapped_column(String(200), index=True)
    role: Mapped[str | None] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(64))
    customer_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    request_id: Mapped[str | None] = mapped_column(String(64))


class AuditCustomer(Base):
    """A customer an audited operation touched: what `auditLog(customer:)` reads by index."""

    __tablename__ = "audit_customers"

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    audit_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("audit_log.id", ondelete="CASCADE"), primary_key=True
    )


class OutboxEvent(Base):
    """One change event, written in the same transaction as the change it describes."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_outbox_undispatched", "dispatched_at", "id"),
        Index("ix_outbox_customer_id", "customer_id"),
    )
