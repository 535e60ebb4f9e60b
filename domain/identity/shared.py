"""Shared identifiers: the ones found linking more people than their type's shared limit.

Resolution finds them (domain.identity.resolution) and marks the identity row (`shared_at`);
from then on they link nothing, while their type keeps a limit. This module reads the marks:
for a batch under resolution, and for the admins' list.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identity.resolution import Key
from store.db import Database
from store.models import Identity
from store.sqlfuncs import pair_in


@dataclass(frozen=True, slots=True)
class SharedIdentifier:
    type: str
    value: str
    customer_id: uuid.UUID  # the profile holding it: it stays there (no profile is split)
    shared_at: datetime


async def shared_among(session: AsyncSession, keys: list[Key]) -> set[Key]:
    """Those of `keys` found shared earlier."""
    if not keys:
        return set()
    pairs = [(k.type, k.value) for k in keys]
    rows = await session.execute(
        select(Identity.type, Identity.value).where(
            Identity.shared_at.is_not(None),
            pair_in(session, Identity.type, Identity.value, pairs),
        )
    )
    return {Key(t, v) for t, v in rows}


async def mark_shared(session: AsyncSession, keys: list[Key], now: datetime) -> None:
    if keys:
        pairs = [(k.type, k.value) for k in keys]
        await session.execute(
            update(Identity)
            .where(pair_in(session, Identity.type, Identity.value, pairs))
            .values(shared_at=now)
        )


async def list_shared(db: Database, type_key: str | None, limit: int) -> list[SharedIdentifier]:
    """The most recently found first."""
    statement = (
        select(Identity.type, Identity.value, Identity.customer_id, Identity.shared_at)
        .where(Identity.shared_at.is_not(None))
        .order_by(Identity.shared_at.desc(), Identity.id.desc())
        .limit(limit)
    )
    if type_key is not None:
        statement = statement.where(Identity.type == type_key)
    async with db.read() as session:
        rows = await session.execute(statement)
        return [SharedIdentifier(t, v, c, at) for t, v, c, at in rows if at is not None]
