"""setStage: a person moves one profile along the lifecycle model by hand.

Apart from the rules' moves (domain.lifecycle.moves) because what follows it runs through the
write cascade (domain.cascade), which sits above the rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.cascade import follow_stage_move
from domain.errors import InvalidInput, NotFound
from domain.lifecycle.model import TransitionRecord, load_model
from domain.lifecycle.moves import write_moves
from domain.profile import resolve_live_id
from store.db import Database
from store.locking import hold_lifecycle_model
from store.models import Customer
from store.types import utcnow


@dataclass(frozen=True, slots=True)
class StageChange:
    customer_id: uuid.UUID
    transition: TransitionRecord


async def set_stage(
    db: Database,
    customer_id: uuid.UUID,
    stage: str,
    *,
    reason: str | None,
    actor: str | None,
    force: bool = False,
    now: datetime | None = None,
) -> StageChange:
    """Move one profile by hand along an edge of the model; `force` (admins only, checked by
    the API) allows any stage of the model. A merged-away id moves its survivor."""
    now = now or utcnow()

    async def work(session: AsyncSession) -> StageChange:
        live = await resolve_live_id(session, customer_id)
        if live is None:
            raise NotFound("no such customer", field=["customer"])
        current = (
            await session.execute(
                select(Customer.status, Customer.stage).where(Customer.id == live).with_for_update()
            )
        ).one()
        if current.status != "ACTIVE":
            raise NotFound("no live customer with this id", field=["customer"])
        await hold_lifecycle_model(session, exclusive=False)
        model = await load_model(session)
        if model.stage(stage) is None:
            raise InvalidInput(
                f"the lifecycle model has no stage {stage!r}", field=["stage"], code="UNKNOWN_STAGE"
            )
        allowed = _allowed(model.edges, model.entry, current.stage, stage)
        if current.stage == stage or not (allowed or force):
            raise InvalidInput(
                f"no transition from {current.stage or 'no stage'} to {stage} in the model"
                + ("" if current.stage != stage else ": already there"),
                field=["stage"],
                code="INVALID_TRANSITION",
            )
        note = reason or "set by hand"
        note = note if allowed else f"forced: {note}"
        move = select(
            literal(live, Customer.id.type), literal(current.stage, String()), literal(stage),
            literal(note), literal(None, String()),
        )  # fmt: skip
        await write_moves(session, move, now=now, actor=actor)
        await follow_stage_move(session, [live], now)
        transition = TransitionRecord(live, current.stage, stage, now, note, actor, None, None)
        return StageChange(live, transition)

    return await db.transact(work)


def _allowed(
    edges: tuple[tuple[str, str], ...], entry: str, current: str | None, target: str
) -> bool:
    """A profile without a stage may only enter the model's entry stage."""
    if current is None:
        return target == entry
    return (current, target) in edges
