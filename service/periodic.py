"""Background jobs of `serve` (the lifecycle sweep, the tag sweep): run one every so often.

A job is never stopped midway: cancelling the task (the server shutting down) waits for the
run in hand to finish, so its transaction commits or rolls back instead of being abandoned
with its connection (on SQLite, with the database's write lock) to the garbage collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def run_every(
    seconds: float,
    job: Callable[[], Awaitable[T]],
    report: Callable[[T], None],
    log: logging.Logger,
    what: str,
) -> None:
    """`job` every `seconds` until cancelled; a failed run is logged and the next one runs on
    time."""
    while True:
        await asyncio.sleep(seconds)
        running = asyncio.ensure_future(job())
        try:
            result = await asyncio.shield(running)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await running
            raise
        except Exception:  # the task must outlive any one failure; the stack goes to the log
            log.exception("%s failed", what)
            continue
        report(result)
