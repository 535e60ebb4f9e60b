"""Tag definitions, current assignments and the history of every change to them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JsonType, UTCDateTime, utcnow


class TagDefinition(Base):
    __tablename__ = "tag_definitions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(200), index=True)
    value_type: Mapped[str] = mapped_column(String(16), default="FLAG")
    allowed_values: Mapped[list[str] | None] = mapped_column(JsonType)
    kind: Mapped[str] = mapped_column(String(16), default="MANUAL")
    condition: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    default_ttl_days: Mapped[int | None] = mapped_column(Integer)
    archived: Mapped[bool] = mapped_column(Boolean, default=False)
    # Values of a PII tag are personal data: masked for partners, cleared by erasure.
    pii: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TagAssignment(Base):
    __tablename__ = "tag_assignments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    tag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tag_definitions.id"))
    value: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(200))
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("customer_id", "tag_id"),
        Index("ix_tag_assignments_tag_id_value", "tag_id", "value"),
        Index("ix_tag_assignments_expires_at", "expires_at"),
    )


class TagHistory(Base):
    """ASSIGNED, CHANGED, EXPIRED or REMOVED; kept after the tag is archived."""

    __tablename__ = "tag_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    tag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tag_definitions.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    old_value: Mapped[str | None] = mapped_column(String(500))
    new_value: Mapped[str | None] = mapped_column(String(500))
    source: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_tag_history_customer_id_at", "customer_id", "at"),)
