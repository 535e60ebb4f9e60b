"""What follows a change of customers' data, inside the transaction of the write that made it.

Three things are derived from a profile's data and kept in step when a write touches it:
RULE tags (domain.tagging.rules), the lifecycle stage (domain.lifecycle.rules) and the members of
materialized segments (domain.segments.refresh). They run in that order: RULE tags read the
raw data, lifecycle rules and segments may read tags, and segments may read the stage. A RULE
tag reading a stage or a materialized segment sees it as it was before this write; the
periodic full runs (`c360 sweep-tags`, `sweep`, `refresh-segments`) settle such chains.

Writers (identify, ingest of events and orders, profile edits, tagging) call
`refresh_derived` once, at the end of their work, with the profiles they touched: a list of
ids, or a select of ids that reads no customers row (such as domain.tagging.records.touched).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.lifecycle.rules import apply_rules
from domain.segments.refresh import refresh_for_customers
from domain.tagging.rules import reevaluate_for_customers

__all__ = ["refresh_derived"]


async def refresh_derived(
    session: AsyncSession,
    customers: Collection[uuid.UUID] | Select[Any],
    now: datetime,
    actor: str | None,
) -> None:
    """RULE tags, then lifecycle rules, then materialized segments, for these profiles."""
    await reevaluate_for_customers(session, customers, now, actor)
    await apply_rules(session, customers, now, actor)
    await refresh_for_customers(session, customers, now)
