"""Who holds the identifiers an input names, with their profiles locked (identify's first step).

A concurrent merge may move an identifier while we wait for its profile's lock, so the owners
are read again until the profiles locked are the profiles holding them.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.identity.merging import lock_profiles
from domain.identity.resolution import Key
from store.models import Identity
from store.sqlfuncs import pair_in


async def _owners(session: AsyncSession, keys: set[Key]) -> dict[Key, tuple[int, uuid.UUID]]:
    if not keys:
        return {}
    pairs = [(k.type, k.value) for k in keys]
    rows = await session.execute(
        select(Identity.type, Identity.value, Identity.id, Identity.customer_id).where(
            pair_in(session, Identity.type, Identity.value, pairs)
        )
    )
    return {Key(t, v): (i, c) for t, v, i, c in rows}


async def lock_owners(session: AsyncSession, keys: set[Key]) -> dict[Key, tuple[int, uuid.UUID]]:
    """Lock the profiles holding `keys`; a concurrent merge may move them while we wait, so
    look again until the owners we hold locks on are the owners. Only held keys need a second
    look: nobody else can attach an unheld one while we hold its advisory lock."""
    owners = await _owners(session, keys)
    locked: set[uuid.UUID] = set()
    while True:
        wanted = {customer for _, customer in owners.values()}
        if wanted <= locked:
            return owners
        await lock_profiles(session, wanted - locked)
        locked |= wanted
        owners = await _owners(session, set(owners))
