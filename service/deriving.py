"""The derived-state worker as a loop: a background task of every `serve` process, or
`c360 work` on its own (the contract: domain.derived).

It works batches back to back while it finds a full one, then waits for a write: on
PostgreSQL the commit of any write that marks profiles sends NOTIFY c360_derived (migration
c14_derived), heard by `store.notify_listen`; polling every derived_poll_seconds is the
fallback, and SQLite's only path. Any number of workers may run against one database
(PostgreSQL: their claims never overlap; SQLite: one process, writes serialized). A batch that
fails is logged, its lease expires, and the loop carries on after a pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from domain.derived.batches import BatchResult, work_once
from service.periodic import keep_event_partitions_every
from service.settings import Settings
from store.db import Database
from store.notify_listen import listen

log = logging.getLogger("c360.derived")

CHANNEL = "c360_derived"  # the trigger of migration c14_derived names it too
PAUSE_AFTER_ERROR_SECONDS = 1.0


class DerivedWorker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        on_batch: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.on_batch = on_batch  # hears of every batch (the benchmark's lag figures)
        self._written = asyncio.Event()  # set by notifications (PostgreSQL)
        self.listening = asyncio.Event()  # set while those notifications are heard

    async def work_once(self) -> BatchResult:
        """One batch; what it brought up to date."""
        result = await work_once(
            self.db,
            self.settings.derived_batch_size,
            lease=timedelta(seconds=self.settings.derived_lease_seconds),
        )
        if result.customers and self.on_batch is not None:
            self.on_batch(result)
        return result

    async def run(self) -> None:
        """Until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if self.db.dialect == "postgresql":
                tasks.create_task(
                    listen(self.db.engine.url, CHANNEL, self._written, self.listening)
                )
            tasks.create_task(self._loop())

    async def _loop(self) -> None:
        poll = self.settings.derived_poll_seconds
        while True:
            self._written.clear()
            # A batch is never abandoned midway: cancelling waits for it to commit or roll back.
            running = asyncio.ensure_future(self.work_once())
            try:
                done = (await asyncio.shield(running)).customers
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await running
                raise
            except Exception:
                log.exception("derived-state worker: a batch failed; retrying")
                await asyncio.sleep(max(poll, PAUSE_AFTER_ERROR_SECONDS))
                continue
            if done < self.settings.derived_batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._written.wait(), poll)


async def run_process(db: Database, settings: Settings) -> None:
    """What `c360 work` runs until cancelled: the worker, and events' months kept (made ahead,
    retired past the retention) as `serve` keeps them, so that a deployment whose `serve`
    processes run without background work still has them."""
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(DerivedWorker(db, settings).run())
        if settings.event_partition_interval_seconds > 0:
            tasks.create_task(keep_event_partitions_every(db, settings))
