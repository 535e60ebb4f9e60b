"""Profiles whose derived state (metrics, RULE tags, stage, materialized segments) is behind
their raw facts: written by every write, cleared by the derived-state worker
(domain.derived)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base
from store.types import UTCDateTime


class CustomerDirty(Base):
    """One row per profile waiting for the worker. `since` is when its derived state fell
    behind (the lag); `marked_at` the clock of the last write that marked it; `version`
    counts the writes that marked it, so that a worker clears a mark only if no write came in
    while it worked; `claimed_until` is a worker's lease, `claim` names the batch (its
    statements select their profiles by it) and `claimed_version` the version it saw;
    `remarked_at` when a write first marked it again during that lease (the lag of that
    write); `seen_first`/`seen_last` the span of the events and orders the marking writes
    stored (the worker widens the profile's seen window by it)."""

    __tablename__ = "customer_dirty"

    customer_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)
    actor: Mapped[str | None] = mapped_column(String(200))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claim: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    claimed_version: Mapped[int | None] = mapped_column(Integer)
    remarked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_first: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seen_last: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_customer_dirty_since", "since"),
        Index("ix_customer_dirty_claim", "claim"),
    )
