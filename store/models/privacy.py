"""Custom attribute keys an admin declared PII (domain.access.privacy says what that changes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import UTCDateTime, utcnow


class PiiAttribute(Base):
    __tablename__ = "pii_attributes"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    declared_by: Mapped[str | None] = mapped_column(String(200))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
