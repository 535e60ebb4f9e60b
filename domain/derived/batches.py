"""The worker's unit of work: claim dirty profiles, bring their derived state up to date in
one set-based pass, clear the marks no write has moved since (the contract: domain.derived).

A claim is its own short transaction (a lease: `claimed_until`), so that a write marking a
profile again never waits for a batch being worked on, and the batch's own transaction takes
the marks' row locks only at its end, for its last two statements. A claim is named (`claim`):
the batch's statements select their profiles by that name, a join on customer_dirty, instead
of each sending the batch's ids.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby
from typing import TypeVar

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import domain.activity.metrics as metrics
from domain.activity.seen import widen_seen
from domain.cascade import follow_write
from domain.derived.marks import MARKED
from store.db import Database
from store.models import CustomerDirty
from store.types import utcnow

T = TypeVar("T")
log = logging.getLogger("c360.derived")

DEFAULT_BATCH = 2000
# What a batch sends, whatever its number of profiles and of RULE tags and materialized
# segments: at most 42 statements (39 measured on SQLite, 36 on PostgreSQL) when no RULE tag
# reads another and no materialized segment reads another (one level each) and the lifecycle
# settles in three passes. Each further level adds up to 7 (RULE tags reading RULE tags) or 4
# (segments reading materialized segments), each further lifecycle pass 5
# (tests/integration/test_derived_state.py).
BATCH_STATEMENTS = 42
DEFAULT_LEASE = timedelta(seconds=60)
SETTLE_POLL_SECONDS = 0.02
INLINE_TIMEOUT_SECONDS = 30.0

# Seconds a request's writes wait for their derived state (read-your-writes), None: they do not
# wait. Set per request by the API (the X-Derived-State header).
wait_for_derived: ContextVar[float | None] = ContextVar("c360_wait_for_derived", default=None)


@dataclass(frozen=True, slots=True)
class Claim:
    customer_id: uuid.UUID
    version: int
    actor: str | None
    since: datetime
    marked_at: datetime
    token: uuid.UUID


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch brought up to date: its profiles, how long each had waited (seconds, from
    its mark to the batch's commit), and how long the batch took (claim to commit; set by
    `work_once`)."""

    customers: int = 0
    lags: tuple[float, ...] = field(default=())
    seconds: float = 0.0


async def claim(
    db: Database,
    limit: int = DEFAULT_BATCH,
    *,
    lease: timedelta = DEFAULT_LEASE,
    only: Collection[uuid.UUID] | None = None,
    now: datetime | None = None,
) -> list[Claim]:
    """Lease up to `limit` unclaimed (or lease-expired) dirty profiles, oldest first; `only`
    restricts the claim to these profiles. Rows another worker is claiming are skipped."""
    now = now or utcnow()
    token = uuid.uuid4()

    async def work(session: AsyncSession) -> list[Claim]:
        free = or_(CustomerDirty.claimed_until.is_(None), CustomerDirty.claimed_until < now)
        pick = select(CustomerDirty.customer_id).where(free)
        if only is not None:
            pick = pick.where(CustomerDirty.customer_id.in_(only))
        pick = pick.order_by(CustomerDirty.since).limit(limit).with_for_update(skip_locked=True)
        rows = await session.execute(
            update(CustomerDirty)
            .where(CustomerDirty.customer_id.in_(pick))
            .values(claimed_until=now + lease, claim=token, claimed_version=CustomerDirty.version)
            .returning(
                CustomerDirty.customer_id,
                CustomerDirty.version,
                CustomerDirty.actor,
                CustomerDirty.since,
                CustomerDirty.marked_at,
            )
        )
        return [Claim(*row, token=token) for row in rows]

    return await db.transact(work)


async def bring_up_to_date(db: Database, claims: list[Claim]) -> BatchResult:
    """Seen times (domain.activity.seen), metrics, then RULE tags, lifecycle rules and
    materialized segments (domain.cascade.follow_write) for the claimed profiles, in one
    transaction; then clear the marks whose version did not move, and hand the others back
    for the next batch. The state is derived as of the clock of the latest write among the
    batch (a write stamped with a time of its own, an import or a test, derives as of that
    time)."""
    if not claims:
        return BatchResult()
    tokens = {c.token for c in claims}
    if len(tokens) != 1:
        raise ValueError("a batch is the profiles of one claim")
    ours = CustomerDirty.claim == tokens.pop()
    batch = select(CustomerDirty.customer_id).where(ours)

    async def work(session: AsyncSession) -> None:
        now = max(c.marked_at for c in claims)
        await widen_seen(session, batch, now)
        await metrics.recompute(session, batch, now)
        actors = {c.actor for c in claims}
        if len(actors) == 1:
            await follow_write(session, batch, now, actors.pop())
        else:  # several writers' actors: their profiles apart, by id
            by_actor = sorted(claims, key=lambda c: c.actor or "")
            for actor, group in groupby(by_actor, key=lambda c: c.actor):
                await follow_write(session, [c.customer_id for c in group], now, actor)
        await session.execute(
            delete(CustomerDirty).where(
                ours, CustomerDirty.version == CustomerDirty.claimed_version
            )
        )
        await session.execute(
            update(CustomerDirty)
            .where(ours)
            .values(
                claimed_until=None,
                claim=None,
                claimed_version=None,
                since=func.coalesce(CustomerDirty.remarked_at, CustomerDirty.since),
                remarked_at=None,
            )
        )

    await db.transact(work)
    done_at = utcnow()
    return BatchResult(len(claims), tuple((done_at - c.since).total_seconds() for c in claims))


async def work_once(
    db: Database, limit: int = DEFAULT_BATCH, *, lease: timedelta = DEFAULT_LEASE
) -> BatchResult:
    """One batch: claim, then bring up to date."""
    started = time.perf_counter()
    result = await bring_up_to_date(db, await claim(db, limit, lease=lease))
    return dataclasses.replace(result, seconds=time.perf_counter() - started)


async def drain(db: Database, limit: int = DEFAULT_BATCH) -> int:
    """Batches until no unclaimed profile is dirty; how many profiles were brought up to date."""
    total = 0
    while done := (await work_once(db, limit)).customers:
        total += done
    return total


async def settle(db: Database, customer_ids: Collection[uuid.UUID], timeout: float) -> bool:
    """Bring these profiles' derived state up to date now, in the caller's task, after the
    caller's write committed: claim the ones no worker holds and work them; wait for the ones
    a worker holds. A profile is done when it is no longer dirty, or dirty only since after
    this call began: a batch clears or restarts a mark only with every write marked before
    its claim, so a later start means the caller's write was in. (Waiting for "not dirty"
    alone would never end while other clients keep writing the same profile.) False when
    some still wait after `timeout` seconds."""
    wanted = set(customer_ids)
    begun = utcnow()
    deadline = asyncio.get_running_loop().time() + timeout
    while wanted:
        await bring_up_to_date(db, await claim(db, len(wanted), only=wanted))
        async with db.read() as session:
            waiting = await session.scalars(
                select(CustomerDirty.customer_id).where(
                    CustomerDirty.customer_id.in_(wanted), CustomerDirty.since <= begun
                )
            )
            wanted = set(waiting.all())
        if wanted and asyncio.get_running_loop().time() >= deadline:
            return False
        if wanted:
            await asyncio.sleep(SETTLE_POLL_SECONDS)
    return True


async def transact(db: Database, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """`db.transact(work)` for a writer that marks profiles dirty: when the caller asked for
    read-your-writes (`wait_for_derived`) or `db.settle_writes` is set, the profiles it marked
    are settled before this returns."""
    marked: set[uuid.UUID] = set()

    async def tracked(session: AsyncSession) -> T:
        marked.clear()  # a retried attempt marks afresh
        session.info[MARKED] = marked
        return await work(session)

    result = await db.transact(tracked)
    timeout = wait_for_derived.get()
    if marked and (timeout is not None or db.settle_writes):
        try:
            await settle(db, marked, INLINE_TIMEOUT_SECONDS if timeout is None else timeout)
        except Exception:  # the write has committed: its answer stands, the worker follows
            log.exception("settling %s profiles after a write failed", len(marked))
    return result
