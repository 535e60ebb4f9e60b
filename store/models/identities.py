"""Identity types (admin-defined data) and the identities profiles hold."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JsonType, UTCDateTime, utcnow


class IdentityType(Base):
    __tablename__ = "identity_types"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    normalizer: Mapped[str] = mapped_column(String(32))
    is_pii: Mapped[bool] = mapped_column(Boolean, default=True)
    unique: Mapped[bool] = mapped_column(Boolean, default=False)
    max_per_customer: Mapped[int | None] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    blocked_values: Mapped[list[str]] = mapped_column(JsonType, default=list)
    # Regular expressions (whole value, any case) of placeholders refused like blocked values.
    placeholder_patterns: Mapped[list[str]] = mapped_column(JsonType, default=list)
    # How many values of each stronger type one identifier may link before it is shared.
    shared_limit: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Identity(Base):
    """A normalized identifier. (type, value) is unique: merges move rows, never copy them."""

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), index=True)
    type: Mapped[str] = mapped_column(ForeignKey("identity_types.key"))
    value: Mapped[str] = mapped_column(String(512))
    source: Mapped[str | None] = mapped_column(String(64))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When it was found linking more people than its type's shared_limit: it links no more.
    shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)

    __table_args__ = (UniqueConstraint("type", "value"),)


class ErasedIdentity(Base):
    """Salted hash of an erased customer's identity, so it is never silently re-linked."""

    __tablename__ = "erased_identities"

    type: Mapped[str] = mapped_column(String(64), primary_key=True)
    value_hash: Mapped[str] = mapped_column(String(128), primary_key=True)
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IdempotencyKey(Base):
    """The first answer to a keyed batch mutation; a replay returns it and writes nothing."""

    __tablename__ = "idempotency_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)
