"""Waking the dispatcher when change events are committed: PostgreSQL's LISTEN/NOTIFY.

A statement-level trigger on the outbox (migration `c13_outbox_notify`) sends `NOTIFY
c360_outbox` from every transaction that writes outbox rows; PostgreSQL delivers it when that
transaction commits, once per transaction, never for one that rolls back. The dispatcher hears
it through store.notify_listen: only a wake-up, polling stays the fallback (and SQLite's only
path).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.engine import URL

from store.notify_listen import listen

CHANNEL = "c360_outbox"  # the trigger of migration c13_outbox_notify names it too


async def listen_for_outbox(
    url: URL, wake: asyncio.Event, listening: asyncio.Event | None = None
) -> None:
    """Set `wake` on every outbox notification until cancelled (store.notify_listen.listen)."""
    await listen(url, CHANNEL, wake, listening)
