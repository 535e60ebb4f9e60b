"""Erasing a person (GDPR's right to erasure), and not bringing them back by mistake.

`erase_customer` removes what identifies the person and keeps what only counts:
- cleared: names, email, phone, birthday, custom attributes; every identity value; event
  properties; values of PII tags (assignments and history); the undo snapshots of merges that
  involve the profile (they copy its data); the same on every profile merged into it;
- kept: the profile's id and status (ERASED), gender, locale, country, region, city, stage and
  its history, tags without values, orders and metrics: the anonymous aggregates reports need.

Each identity leaves an HMAC-SHA256 of `type:value` under a secret salt (a setting, never in
the database), so the identity is recognized later without being stored: identify refuses it
with ERASED_IDENTITY, or creates a fresh profile when re-identification is allowed
(`ErasurePolicy`). An identity that a live profile holds again is not an erased one.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.changes import Change, record_changes
from domain.errors import NotFound
from domain.merging import lock_profiles
from domain.privacy import PII_COLUMNS
from domain.profile import merged_family, resolve_live_id
from domain.resolution import Key
from store.db import Database
from store.models import (
    Customer,
    ErasedIdentity,
    Event,
    Identity,
    MergeRecord,
    TagAssignment,
    TagDefinition,
    TagHistory,
)
from store.sqlfuncs import pair_in
from store.types import utcnow


@dataclass(frozen=True, slots=True)
class ErasurePolicy:
    """How identify treats identities of erased customers."""

    salt: str
    allow_reidentify: bool = False


def identity_hash(salt: str, type_key: str, value: str) -> str:
    message = f"{type_key}:{value}".encode()
    return hmac.new(salt.encode(), message, hashlib.sha256).hexdigest()


async def erased_keys(
    session: AsyncSession, keys: Iterable[Key], policy: ErasurePolicy
) -> set[Key]:
    """Those of `keys` (none held by a live profile) that belonged to an erased customer and
    may not come back."""
    if policy.allow_reidentify:
        return set()
    by_hash = {(k.type, identity_hash(policy.salt, k.type, k.value)): k for k in keys}
    if not by_hash:
        return set()
    return {by_hash[pair] for pair in await _known(session, set(by_hash))}


async def _known(session: AsyncSession, pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of the (type, hash) pairs already kept."""
    dialect = session.get_bind().dialect.name
    rows = await session.execute(
        select(ErasedIdentity.type, ErasedIdentity.value_hash).where(
            pair_in(dialect, ErasedIdentity.type, ErasedIdentity.value_hash, list(pairs))
        )
    )
    return {(t, h) for t, h in rows}


async def _keep_hashes(session: AsyncSession, profiles: list[uuid.UUID], salt: str) -> None:
    rows = await session.execute(
        select(Identity.type, Identity.value).where(Identity.customer_id.in_(profiles))
    )
    hashes = {(t, identity_hash(salt, t, v)) for t, v in rows}
    if not hashes:
        return
    known = await _known(session, hashes)
    now = utcnow()
    session.add_all(ErasedIdentity(type=t, value_hash=h, erased_at=now) for t, h in hashes - known)
    await session.flush()


async def _clear(session: AsyncSession, profiles: list[uuid.UUID]) -> None:
    await session.execute(delete(Identity).where(Identity.customer_id.in_(profiles)))
    await session.execute(
        update(Customer)
        .where(Customer.id.in_(profiles))
        .values(
            **dict.fromkeys(PII_COLUMNS),
            attributes={},
            field_times={},
            updated_at=utcnow(),
            version=Customer.version + 1,
        )
    )
    await session.execute(
        update(Event).where(Event.customer_id.in_(profiles)).values(properties={})
    )
    pii_tags = select(TagDefinition.id).where(TagDefinition.pii.is_(True))
    await session.execute(
        update(TagAssignment)
        .where(TagAssignment.customer_id.in_(profiles), TagAssignment.tag_id.in_(pii_tags))
        .values(value=None)
    )
    await session.execute(
        update(TagHistory)
        .where(TagHistory.customer_id.in_(profiles), TagHistory.tag_id.in_(pii_tags))
        .values(old_value=None, new_value=None)
    )
    await session.execute(
        update(MergeRecord)
        .where(or_(MergeRecord.survivor_id.in_(profiles), MergeRecord.merged_id.in_(profiles)))
        .values(snapshot={})
    )


async def erase_customer(
    db: Database, customer_id: uuid.UUID, actor: str | None, salt: str
) -> uuid.UUID:
    """Erase the person behind `customer_id` (a merged-away id stands for its survivor);
    erasing twice changes nothing more. Returns the erased profile's id."""

    async def work(session: AsyncSession) -> uuid.UUID:
        live = await resolve_live_id(session, customer_id)
        if live is None:
            raise NotFound("no such customer", field=["id"])
        await lock_profiles(session, {live})
        status = await session.scalar(select(Customer.status).where(Customer.id == live))
        if status == "ERASED":
            return live
        profiles = await merged_family(session, live)
        await _keep_hashes(session, profiles, salt)
        await _clear(session, profiles)
        await session.execute(update(Customer).where(Customer.id == live).values(status="ERASED"))
        await record_changes(
            session,
            [Change("customer.erased", live, {"customerId": str(live), "actor": actor})],
        )
        return live

    return await db.transact(work)
