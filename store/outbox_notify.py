"""Waking the dispatcher when change events are committed: PostgreSQL's LISTEN/NOTIFY.

A statement-level trigger on the outbox (migration `c13_outbox_notify`) sends `NOTIFY
c360_outbox` from every transaction that writes outbox rows; PostgreSQL delivers it when that
transaction commits, once per transaction, never for one that rolls back. `listen_for_outbox`
holds a dedicated asyncpg connection (outside the pool: a listening connection must stay
open) and sets an event on every notification.

It is only a wake-up: a notification missed while the connection is down costs the polling
interval, no more. Each (re)connection sets the event once, so the dispatcher looks at the
outbox as soon as it can hear again. SQLite has no notifications: polling is its only path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg
from sqlalchemy.engine import URL

log = logging.getLogger("c360.dispatch")

CHANNEL = "c360_outbox"  # the trigger of migration c13_outbox_notify names it too
RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


def _connect_args(url: URL) -> dict[str, Any]:
    return {
        "host": url.host,
        "port": url.port or 5432,
        "user": url.username,
        "password": url.password,
        "database": url.database,
    }


async def listen_for_outbox(
    url: URL, wake: asyncio.Event, listening: asyncio.Event | None = None
) -> None:
    """Set `wake` on every outbox notification until cancelled, reconnecting when the
    connection drops; `listening` is set while LISTEN is in place (tests wait for it)."""
    attempt = 0
    while True:
        try:
            connection = await asyncpg.connect(**_connect_args(url))
        except Exception as error:  # any failure to connect: keep polling, try again
            delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
            log.warning("dispatcher: cannot LISTEN (%s); polling, retry in %.1f s", error, delay)
            attempt += 1
            await asyncio.sleep(delay)
            continue
        attempt = 0
        try:
            await _hear(connection, wake, listening)
        finally:
            if listening is not None:
                listening.clear()
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)
        log.warning("dispatcher: the LISTEN connection was lost; reconnecting")


async def _hear(
    connection: asyncpg.Connection, wake: asyncio.Event, listening: asyncio.Event | None
) -> None:
    """Until `connection` ends: every notification sets `wake`."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    await connection.add_listener(CHANNEL, lambda *_args: wake.set())
    wake.set()  # anything committed while nobody was listening
    if listening is not None:
        listening.set()
    await lost.wait()
