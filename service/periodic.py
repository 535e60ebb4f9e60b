"""Background jobs of `serve` (the lifecycle sweep, the tag sweep, the duplicate scan, events'
partitions ahead): run one every so often.

A job is never stopped midway: cancelling the task (the server shutting down) waits for the
run in hand to finish, so its transaction commits or rolls back instead of being abandoned
with its connection (on SQLite, with the database's write lock) to the garbage collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import astuple
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from domain.activity import retention
from domain.duplicates import runs as duplicate_runs
from domain.lifecycle import rules as lifecycle_rules
from domain.tagging import bulk as tag_bulk
from store import partitions
from store.db import Database
from store.types import utcnow

if TYPE_CHECKING:
    from service.settings import Settings

T = TypeVar("T")

log = logging.getLogger("c360.periodic")


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


async def sweep_lifecycle_every(db: Database, seconds: float) -> None:
    """The lifecycle sweep every `seconds` until cancelled (a background task of `serve`)."""

    def report(result: lifecycle_rules.SweepResult) -> None:
        log.info("lifecycle sweep: %s customers, %s transitions", *astuple(result))

    await run_every(seconds, partial(lifecycle_rules.sweep, db), report, log, "lifecycle sweep")


async def sweep_tags_every(db: Database, seconds: float) -> None:
    """The tag sweep every `seconds` until cancelled (a background task of `serve`)."""

    def report(result: tag_bulk.SweepResult) -> None:
        assigned = sum(r.assigned for r in result.rules)
        removed = sum(r.removed for r in result.rules)
        log.info(
            "tag sweep: %s expired; RULE tags: %s assigned, %s removed",
            result.expired,
            assigned,
            removed,
        )

    await run_every(seconds, partial(tag_bulk.sweep, db), report, log, "tag sweep")


async def scan_duplicates_every(db: Database, settings: Settings) -> None:
    """The incremental duplicate scan of changed profiles every so often, until cancelled:
    suggestions follow writes without slowing them (a background task of `serve`)."""

    def report(result: duplicate_runs.FindResult) -> None:
        if result.profiles:
            log.info(
                "duplicate scan: %s changed profiles, %s candidates, %s suggested",
                result.profiles,
                result.candidates,
                result.suggested,
            )

    job = partial(duplicate_runs.scan_changed, db, settings)
    await run_every(settings.duplicate_scan_interval_seconds, job, report, log, "duplicate scan")


async def keep_event_partitions_every(db: Database, settings: Settings) -> None:
    """Events' partitions for the months ahead, made every so often until cancelled, so that
    ingest never meets a month without one (PostgreSQL); with a retention, the months before
    it rolled up and dropped (both backends). A background task of `serve` and `c360 work`."""

    def report(result: partitions.PartitionChanges) -> None:
        if result.created:
            log.info("event partitions created: %s", ", ".join(result.created))
        if result.dropped:
            log.info("event partitions retired: %s", ", ".join(result.dropped))

    async def job() -> partitions.PartitionChanges:
        ahead, kept = settings.event_partitions_ahead_months, settings.event_retention_months
        return await db.transact(
            lambda session: retention.keep_months(session, utcnow(), ahead, kept)
        )

    await run_every(settings.event_partition_interval_seconds, job, report, log, "partitions")
