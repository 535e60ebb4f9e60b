"""Erasing a person (GDPR's right to erasure), and not bringing them back by mistake.

`erase_customer` removes what identifies the person and keeps what only counts:
- cleared: names, email, phone, birthday, custom attributes; every identity value; event
  properties; the features duplicate detection compares (domain.duplicates); the same on
  every profile merged into theirs;
- cleared or redacted wherever they were copied (domain.access.erasure_scrub): values of TEXT and
  PII tags (assignments and history), the undo snapshots and reasons of merges that involve the
  profiles, stage reasons, change-event payloads, webhook delivery errors, audit details,
  stored answers of idempotent mutations, event idempotency keys, birthday trigger keys;
- deleted: the rollups of their retired months of events (domain.activity.retention);
- reported (domain.access.erasure_conditions): admin-defined conditions whose literals name the
  person's values; literals equal to one are redacted;
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

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.access.erasure_conditions import ConditionReference, conditions_naming
from domain.access.erasure_scrub import gather_needles, scrub_copies
from domain.access.privacy import PII_COLUMNS
from domain.cascade import follow_write
from domain.changes import Change, record_changes
from domain.errors import NotFound
from domain.identity.merging import lock_profiles
from domain.identity.resolution import Key
from domain.profile import merged_family, resolve_live_id
from store.db import Database
from store.models import (
    Customer,
    DuplicateProfile,
    ErasedIdentity,
    Event,
    EventRollup,
    Identity,
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
    rows = await session.execute(
        select(ErasedIdentity.type, ErasedIdentity.value_hash).where(
            pair_in(session, ErasedIdentity.type, ErasedIdentity.value_hash, list(pairs))
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
        delete(DuplicateProfile).where(DuplicateProfile.customer_id.in_(profiles))
    )
    await session.execute(
        update(Customer)
        .where(Customer.id.in_(profiles))
        .values(
            **dict.fromkeys(PII_COLUMNS),
            attributes={},
            field_times={},
            field_sources={},
            updated_at=utcnow(),
            version=Customer.version + 1,
        )
    )
    await session.execute(
        update(Event).where(Event.customer_id.in_(profiles)).values(properties={})
    )
    await session.execute(delete(EventRollup).where(EventRollup.customer_id.in_(profiles)))


@dataclass(frozen=True, slots=True)
class Erasure:
    """The erased profile, and the admin-defined conditions that named the person."""

    customer_id: uuid.UUID
    conditions: tuple[ConditionReference, ...] = ()


async def erase_customer(
    db: Database, customer_id: uuid.UUID, actor: str | None, salt: str
) -> Erasure:
    """Erase the person behind `customer_id` (a merged-away id stands for its survivor);
    erasing twice changes nothing more."""

    async def work(session: AsyncSession) -> Erasure:
        live = await resolve_live_id(session, customer_id)
        if live is None:
            raise NotFound("no such customer", field=["id"])
        await lock_profiles(session, {live})
        status = await session.scalar(select(Customer.status).where(Customer.id == live))
        if status == "ERASED":
            return Erasure(live)
        profiles = await merged_family(session, live)
        needles = await gather_needles(session, profiles)
        await _keep_hashes(session, profiles, salt)
        await scrub_copies(session, profiles, needles)
        await _clear(session, profiles)
        conditions = await conditions_naming(session, needles)
        await session.execute(update(Customer).where(Customer.id == live).values(status="ERASED"))
        # No longer live: the person leaves materialized segments at once (RULE tags and the
        # stage stay as they were, like those of any profile that is no longer live).
        await follow_write(session, profiles, utcnow(), actor)
        await record_changes(
            session,
            [Change("customer.erased", live, {"customerId": str(live), "actor": actor})],
        )
        return Erasure(live, tuple(conditions))

    return await db.transact(work)
