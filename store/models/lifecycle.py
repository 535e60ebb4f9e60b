"""The lifecycle model (stages, allowed edges, rules) and every stage transition."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from store.models.base import Base, BigId
from store.types import JsonType, UTCDateTime, utcnow


class LifecycleStage(Base):
    __tablename__ = "lifecycle_stages"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    terminal: Mapped[bool] = mapped_column(Boolean, default=False)
    # The stage's KPIs, as domain.lifecycle.kpis declares them: [{key, name, measure, ...}].
    kpis: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)


class LifecycleEdge(Base):
    __tablename__ = "lifecycle_edges"

    from_stage: Mapped[str] = mapped_column(ForeignKey("lifecycle_stages.key"), primary_key=True)
    to_stage: Mapped[str] = mapped_column(ForeignKey("lifecycle_stages.key"), primary_key=True)


class LifecycleRule(Base):
    __tablename__ = "lifecycle_rules"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    to_stage: Mapped[str] = mapped_column(ForeignKey("lifecycle_stages.key"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    condition: Mapped[dict[str, Any]] = mapped_column(JsonType)


class StageTransition(Base):
    __tablename__ = "stage_transitions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id"))
    # Stage keys are kept as text: history must survive a reconfigured model.
    from_stage: Mapped[str | None] = mapped_column(String(64))
    to_stage: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    rule_key: Mapped[str | None] = mapped_column(String(64))
    merge_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("merge_records.id"))

    __table_args__ = (
        Index("ix_stage_transitions_customer_id_at", "customer_id", "at"),
        Index("ix_stage_transitions_to_stage_at", "to_stage", "at"),
    )
