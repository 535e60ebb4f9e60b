"""Locks, one function per purpose: claiming rows for work when several processes poll the same
table, and the advisory locks that keep concurrent writers apart.

PostgreSQL locks rows or advisory keys; SQLite has neither, and needs neither: a write
transaction takes the database lock at BEGIN (`store.db`), so every writer is alone already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession

from store.sqlfuncs import on_postgresql


def skip_locked(
    session: AsyncSession, statement: Select[*tuple[Any, ...]]
) -> Select[*tuple[Any, ...]]:
    """Lock the selected rows and pass over rows another transaction holds.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent dispatchers split the work instead of
    queueing behind each other. SQLite has no row locks: a write transaction takes the database
    lock at BEGIN (`store.db`), so claims there are serialized whole and need nothing more.
    """
    if on_postgresql(session):
        return statement.with_for_update(skip_locked=True)
    return statement


LIFECYCLE_MODEL_LOCK = 0x6C69666563796C65  # "lifecycl": one key for the lifecycle model
RULE_TAGS_LOCK = 0x72756C6574616773  # "ruletags": one key for what RULE tags read
DELIVERY_QUEUE_LOCK = 0x686F6F6B71756575  # "hookqueu": one key for the webhook delivery queue


async def hold_lifecycle_model(session: AsyncSession, *, exclusive: bool) -> None:
    """Until the transaction ends, keep the lifecycle model from changing (shared: writers of
    stage transitions) or be the only one using it (exclusive: reconfiguration).

    PostgreSQL: a transaction-scoped advisory lock, in memory, no row is written. SQLite: the
    write transaction already excludes every other writer.
    """
    if not on_postgresql(session):
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {function}(:key)"), {"key": LIFECYCLE_MODEL_LOCK})


async def hold_rule_tags(session: AsyncSession) -> None:
    """Until the transaction ends, be the only one changing what RULE tags read (their
    conditions, the segments they name): two such changes checked side by side could each
    pass the cycle check and close a cycle together. PostgreSQL: an advisory lock; SQLite:
    the write transaction already excludes every other writer."""
    if on_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RULE_TAGS_LOCK})


async def hold_delivery_queue(session: AsyncSession) -> None:
    """Until the transaction ends, be the only one claiming webhook deliveries or recording
    their outcomes. Both take milliseconds; one after the other, each claim sees every lease
    and outcome before it, so a customer's later delivery is never claimed while an earlier
    one is being claimed or recorded elsewhere (row locks alone would let SKIP LOCKED pass
    over that earlier one). PostgreSQL: an advisory lock; SQLite: the write transaction
    already excludes every other writer."""
    if on_postgresql(session):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": DELIVERY_QUEUE_LOCK}
        )


def identity_lock_key(kind: str, value: str) -> int:
    """The advisory lock key of the identifier (kind, value): 64 bits of its hash."""
    digest = hashlib.blake2b(f"{kind}\x00{value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def hold_identities(session: AsyncSession, identifiers: Iterable[tuple[str, str]]) -> None:
    """Until the transaction ends, be the only one resolving these (kind, value) identifiers,
    attached to a profile or not yet: a row lock cannot hold an identifier nobody has written.

    PostgreSQL: one advisory lock per identifier, taken in key order in one statement so that
    two batches naming the same identifiers cannot deadlock. SQLite: the write transaction
    already excludes every other writer."""
    if not on_postgresql(session):
        return
    ordered = sorted({identity_lock_key(kind, value) for kind, value in identifiers})
    if not ordered:
        return
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY k) AS s"
        ),
        {"keys": ordered},
    )
