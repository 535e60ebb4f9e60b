"""Claiming rows for work when several processes poll the same table: the one dialect
difference of the change dispatcher."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, text
from sqlalchemy.ext.asyncio import AsyncSession


def skip_locked(statement: Select[*tuple[Any, ...]], dialect: str) -> Select[*tuple[Any, ...]]:
    """Lock the selected rows and pass over rows another transaction holds.

    PostgreSQL: FOR UPDATE SKIP LOCKED, so concurrent dispatchers split the work instead of
    queueing behind each other. SQLite has no row locks: a write transaction takes the database
    lock at BEGIN (`store.db`), so claims there are serialized whole and need nothing more.
    """
    if dialect == "postgresql":
        return statement.with_for_update(skip_locked=True)
    return statement


LIFECYCLE_MODEL_LOCK = 0x6C69666563796C65  # "lifecycl": one key for the lifecycle model
RULE_TAGS_LOCK = 0x72756C6574616773  # "ruletags": one key for what RULE tags read


async def hold_lifecycle_model(session: AsyncSession, *, exclusive: bool) -> None:
    """Until the transaction ends, keep the lifecycle model from changing (shared: writers of
    stage transitions) or be the only one using it (exclusive: reconfiguration).

    PostgreSQL: a transaction-scoped advisory lock, in memory, no row is written. SQLite: the
    write transaction already excludes every other writer.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {function}(:key)"), {"key": LIFECYCLE_MODEL_LOCK})


async def hold_rule_tags(session: AsyncSession) -> None:
    """Until the transaction ends, be the only one changing what RULE tags read (their
    conditions, the segments they name): two such changes checked side by side could each
    pass the cycle check and close a cycle together. PostgreSQL: an advisory lock; SQLite:
    the write transaction already excludes every other writer."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RULE_TAGS_LOCK})
