"""Probable duplicates: the suggestions, the compared features of each live profile, and the
trained match model with how far the incremental scan has read."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import JsonType, UTCDateTime, utcnow


class DuplicateSuggestion(Base):
    """Two profiles that probably are one person; the pair (smaller id first) is suggested at
    most once, so a rejected pair is never suggested again."""

    __tablename__ = "duplicate_suggestions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer_a_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    customer_b_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    score: Mapped[float] = mapped_column(Float)
    evidence: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    status: Mapped[str] = mapped_column(String(16), default="OPEN")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(200))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision_reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("customer_a_id", "customer_b_id"),
        Index("ix_duplicate_suggestions_status_score", "status", "score", "id"),
        Index("ix_duplicate_suggestions_customer_b_id", "customer_b_id"),
    )


class DuplicateProfile(Base):
    """What duplicate detection compares of one live profile (domain.duplicates.features),
    kept so that an incremental run finds a changed profile's candidates by index."""

    __tablename__ = "duplicate_profiles"

    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"), primary_key=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email_local: Mapped[str | None] = mapped_column(String(320))
    phone_digits: Mapped[str | None] = mapped_column(String(32))
    birthday: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(200))
    first_initial: Mapped[str | None] = mapped_column(String(1))
    phone_prefix: Mapped[str | None] = mapped_column(String(7))

    __table_args__ = (
        Index("ix_duplicate_profiles_birthday", "birthday", "first_initial"),
        Index("ix_duplicate_profiles_email_local", "email_local"),
        Index("ix_duplicate_profiles_phone_prefix", "phone_prefix"),
        Index("ix_duplicate_profiles_name_city", "first_name", "last_name", "city"),
    )


class DuplicateScan(Base):
    """One row: the match model the last full run trained (Splink's JSON) and the time up to
    which changed profiles have been scanned."""

    __tablename__ = "duplicate_scan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    model: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    trained_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    trained_profiles: Mapped[int] = mapped_column(Integer, default=0)
    scanned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
