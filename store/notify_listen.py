"""Hearing PostgreSQL notifications on one channel, as a wake-up for a background loop.

`listen` holds a dedicated asyncpg connection (outside the pool: a listening connection must
stay open) and sets an event on every notification on its channel. It is only a wake-up: a
notification missed while the connection is down costs the loop's polling interval, no more.
Each (re)connection sets the event once, so the loop looks for work as soon as it can hear
again. (store.outbox_notify listens on the outbox's channel with it; SQLite has no
notifications: polling is its only path.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg
from sqlalchemy.engine import URL

log = logging.getLogger("c360.listen")

RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0, 5.0)


async def listen(
    url: URL, channel: str, wake: asyncio.Event, listening: asyncio.Event | None = None
) -> None:
    """Set `wake` on every notification on `channel` until cancelled, reconnecting when the
    connection drops; `listening` is set while LISTEN is in place (tests wait for it)."""
    attempt = 0
    while True:
        try:
            connection = await asyncpg.connect(
                host=url.host,
                port=url.port or 5432,
                user=url.username,
                password=url.password,
                database=url.database,
            )
        except Exception as error:  # any failure to connect: keep polling, try again
            delay = RECONNECT_SECONDS[min(attempt, len(RECONNECT_SECONDS) - 1)]
            log.warning("cannot LISTEN on %s (%s); polling, retry in %.1f s", channel, error, delay)
            attempt += 1
            await asyncio.sleep(delay)
            continue
        attempt = 0
        try:
            await _hear(connection, channel, wake, listening)
        finally:
            if listening is not None:
                listening.clear()
            with contextlib.suppress(Exception):
                await connection.close(timeout=1)
        log.warning("the LISTEN connection on %s was lost; reconnecting", channel)


async def _hear(
    connection: asyncpg.Connection,
    channel: str,
    wake: asyncio.Event,
    listening: asyncio.Event | None,
) -> None:
    """Until `connection` ends: every notification on `channel` sets `wake`."""
    lost = asyncio.Event()
    connection.add_termination_listener(lambda _connection: lost.set())
    await connection.add_listener(channel, lambda *_args: wake.set())
    wake.set()  # anything committed while nobody was listening
    if listening is not None:
        listening.set()
    await lost.wait()
