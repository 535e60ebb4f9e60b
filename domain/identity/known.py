"""Ingest's shortcut through identity resolution: items addressed by an identifier a profile
already holds.

An event or an order names one identity. When a live profile holds it, and its type is not
one several people may share (those need the working set's judgement), resolution has one
answer: that profile. No working set, no profile state, no survivorship: the owner is looked
up and locked as `resolve_batch` would (advisory locks on the identifiers, then row locks on
the owners, in the same order, so the shortcut adds no new way to deadlock), and the
identity's `last_seen_at` moves forward (never back: an event from last week does not make a
phone seen last week after it was seen today). What the shortcut cannot answer (unknown
identifiers, bad values, shared types) goes through `resolve_batch` unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain.errors import InvalidInput
from domain.identity.linking import IDENTITIES
from domain.identity.owners import lock_owners
from domain.identity.resolution import Key
from domain.identity.types import IdentityTypeSpec, load_identity_types
from store.bulk_rows import update_rows
from store.locking import hold_identities


def _key(identity: tuple[str, str], types: dict[str, IdentityTypeSpec], region: str) -> Key | None:
    """The identifier as stored, or None when the shortcut must not answer for it."""
    type_key, raw = identity
    spec = types.get(type_key)
    if spec is None or spec.shared_limit is not None:
        return None
    try:
        value = spec.stored_value(raw, region)
    except InvalidInput:
        return None
    return Key(type_key, value)


async def land_on_holders(
    session: AsyncSession, items: Sequence[tuple[tuple[str, str], datetime]], region: str
) -> list[uuid.UUID | None]:
    """The profile holding each item's identity (None: ask `resolve_batch`), locked until the
    transaction ends; the identities seen move their `last_seen_at` up to the latest item."""
    types = await load_identity_types(session)
    keys = {identity: _key(identity, types, region) for identity in {i for i, _ in items}}
    wanted = {key for key in keys.values() if key is not None}
    await hold_identities(session, ((k.type, k.value) for k in wanted))
    owners = await lock_owners(session, wanted)
    landed: list[uuid.UUID | None] = []
    seen: dict[int, datetime] = {}
    for identity, at in items:
        key = keys[identity]
        held = owners.get(key) if key is not None else None
        if held is None:
            landed.append(None)
            continue
        identity_id, customer_id = held
        landed.append(customer_id)
        seen[identity_id] = max(seen.get(identity_id, at), at)
    rows = [{"id": identity_id, "last_seen_at": at} for identity_id, at in sorted(seen.items())]
    await update_rows(session, IDENTITIES, rows, later_only="last_seen_at")
    return landed
