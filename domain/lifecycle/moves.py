"""Moving profiles between lifecycle stages: the one writer of stage transitions, and setStage.

Every move, whoever makes it (a rule, a person, a reconfiguration), writes three things in the
caller's transaction: the transition row (history), the profile's denormalized `stage` and
`stage_entered_at` (for filtering and sorting), and a `stage.changed` outbox event. Moves are
given as a SELECT and written set-based, in three statements whatever their number: the moves
of a sweep batch or of a reconfiguration never travel through Python. Callers hold the
profiles' row locks (or the SQLite write lock) and the lifecycle model (`store.locking`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, String, and_, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from store.models import Customer, OutboxEvent, StageTransition
from store.sqlfuncs import json_object, new_uuid
from store.types import UTCDateTime


async def write_moves(
    session: AsyncSession, moves: Select[*tuple[Any, ...]], *, now: datetime, actor: str | None
) -> int:
    """Write `moves` at `now`: a SELECT of (customer id, from stage, to stage, reason, rule
    key), at most one row per profile. Returns how many were written.

    The new transitions are found again by (id above the largest before, at = now): ids only
    grow, and no other writer stamps a profile this transaction holds with this instant."""
    t = StageTransition
    before = (await session.execute(select(func.coalesce(func.max(t.id), 0)))).scalar_one()
    customer_id, from_stage, to_stage, reason, rule_key = moves.subquery("moves").c
    stamped = select(
        customer_id, from_stage, to_stage, literal(now, UTCDateTime()), reason,
        literal(actor, String()), rule_key,
    )  # fmt: skip
    columns = ["customer_id", "from_stage", "to_stage", "at", "reason", "actor", "rule_key"]
    inserted = await session.execute(insert(t).from_select(columns, stamped))
    ours = and_(t.id > before, t.at == now)
    count = inserted.rowcount  # type: ignore[attr-defined]
    if count < 0:  # SQLite reports no count for an INSERT that opens with WITH
        count = (await session.execute(select(func.count()).where(ours))).scalar_one()
    if not count:
        return 0
    await session.execute(
        update(Customer)
        .where(Customer.id == t.customer_id, ours)
        .values(stage=t.to_stage, stage_entered_at=now)
        .execution_options(synchronize_session=False)
    )
    data = json_object(session, **{"from": t.from_stage, "to": t.to_stage, "rule": t.rule_key,
                                   "reason": t.reason})  # fmt: skip
    await session.execute(
        insert(OutboxEvent).from_select(
            ["event_id", "kind", "customer_id", "payload", "created_at"],
            select(
                new_uuid(session), literal("stage.changed"), t.customer_id, data,
                literal(now, UTCDateTime()),
            ).where(ours),
        )
    )  # fmt: skip
    return int(count)


async def move_everyone_in(
    session: AsyncSession, old: str, new: str, *, now: datetime, actor: str | None, reason: str
) -> int:
    """Move every profile in stage `old` to `new` (a reconfigured model). Erased profiles move
    too (they keep an anonymous history); merged-away ones follow their survivor."""
    moves = select(
        Customer.id, Customer.stage, literal(new), literal(reason), literal(None, String())
    ).where(Customer.stage == old, Customer.status != "MERGED")
    return await write_moves(session, moves, now=now, actor=actor)
