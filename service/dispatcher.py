"""The dispatcher: a background task of every `serve` worker, or `c360 dispatch` on its own.

Four loops, so that a slow webhook never holds up the live feed: the outbox (to subscribers
and into webhook deliveries, `domain.delivery.dispatch`), due webhook deliveries
(`domain.delivery.sending`, in DELIVERY_LANES batches side by side), the time-based triggers
(`domain.delivery.triggers`), and the pruning of events done with
(`domain.delivery.retention`). On PostgreSQL the outbox loop is woken by LISTEN/NOTIFY as soon
as a change commits (`store.outbox_notify`) and, while it hears them, polls only every
LISTENING_POLL_SECONDS as the fallback (dispatch_interval_seconds when it does not); on SQLite
polling is the only path. Any number of dispatchers may run against one database: claims
never overlap (PostgreSQL) or are serialized (SQLite, one process). A loop that fails logs it
and carries on after a pause."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import TracebackType
from urllib.request import getproxies

import aiohttp

from domain.delivery.dispatch import dispatch_outbox
from domain.delivery.retention import prune_outbox
from domain.delivery.sending import DeliveryPolicy, deliver_due
from domain.delivery.triggers import run_triggers
from service.settings import Settings
from store.db import Database
from store.outbox_notify import listen_for_outbox
from store.pubsub import Broker
from store.types import utcnow

log = logging.getLogger("c360.dispatch")
PAUSE_AFTER_ERROR_SECONDS = 1.0
# An idle webhook loop is woken by its own outbox loop when that queues deliveries; polling
# only has to find retries coming due (and work a dispatcher that died left behind).
DELIVERY_POLL_SECONDS = 1.0
# While LISTEN is in place every commit of change events wakes the outbox loop; polling then
# only finds events held back behind another dispatcher's batch, so it can be rarer than the
# configured interval (each idle poll is a query, in every process).
LISTENING_POLL_SECONDS = 1.0
# Batches of webhook deliveries in flight side by side: while one is being claimed or
# recorded, another's requests keep the connections busy.
DELIVERY_LANES = 2
USER_AGENT = "c360-webhooks/1"


class Dispatcher:
    def __init__(self, db: Database, broker: Broker, settings: Settings) -> None:
        self.db = db
        self.broker = broker
        self.settings = settings
        self.policy = DeliveryPolicy.of(settings, lanes=DELIVERY_LANES)
        self._client: aiohttp.ClientSession | None = None
        # Requests under way, all lanes together: never more than the pool's connections, so
        # that no request's timeout runs while it waits for one.
        self._in_flight = asyncio.Semaphore(self.policy.concurrency)
        self._queued = asyncio.Event()
        self._committed = asyncio.Event()  # set by outbox notifications (PostgreSQL)
        self.listening = asyncio.Event()  # set while those notifications are heard

    async def __aenter__(self) -> Dispatcher:
        # aiohttp: about a tenth of httpx's CPU per request, which was most of a delivery's
        # cost. The pool holds as many connections as requests may be in flight. Proxies
        # come from the environment (HTTP_PROXY, ...), as they did with httpx; aiohttp looks
        # them up in a thread on every request, so only when some are set.
        self._client = aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT},
            connector=aiohttp.TCPConnector(limit=self.policy.concurrency),
            trust_env=bool(getproxies()),
        )
        return self

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def dispatch_once(self, now: datetime | None = None) -> int:
        """One batch out of the outbox; how many events went out."""
        sent = await dispatch_outbox(
            self.db, self.broker, batch_size=self.settings.dispatch_batch_size, now=now
        )
        if sent:
            self._queued.set()
        return sent

    async def deliver_once(self, now: datetime | None = None) -> int:
        """One batch of due webhook deliveries; how many requests were made."""
        if self._client is None:
            raise RuntimeError("use the dispatcher as `async with Dispatcher(...)`")
        return await deliver_due(
            self.db,
            self._client,
            self.policy,
            batch_size=self.settings.dispatch_batch_size,
            in_flight=self._in_flight,
            now=now,
        )

    async def triggers_once(self, now: datetime | None = None) -> int:
        """Every time-based trigger; how many events they emitted."""
        return await run_triggers(self.db, self.settings, now or utcnow())

    async def prune_once(self, now: datetime | None = None) -> int:
        """One bounded batch of events done with before the retention; how many were pruned."""
        retention = timedelta(days=self.settings.outbox_retention_days)
        return await prune_outbox(self.db, retention=retention, now=now)

    def outbox_poll_seconds(self) -> float:
        """The outbox loop's pause when idle: longer while notifications are heard."""
        interval = self.settings.dispatch_interval_seconds
        return max(interval, LISTENING_POLL_SECONDS) if self.listening.is_set() else interval

    async def run(self) -> None:
        """Until cancelled."""
        interval = self.settings.dispatch_interval_seconds
        async with self, asyncio.TaskGroup() as loops:
            if self.db.dialect == "postgresql":
                loops.create_task(
                    listen_for_outbox(self.db.engine.url, self._committed, self.listening)
                )
            loops.create_task(
                _loop("outbox", self.dispatch_once, self.outbox_poll_seconds, wake=self._committed)
            )
            for _lane in range(DELIVERY_LANES):
                loops.create_task(
                    _loop(
                        "webhooks",
                        self.deliver_once,
                        max(interval, DELIVERY_POLL_SECONDS),
                        wake=self._queued,
                    )
                )
            loops.create_task(
                _loop(
                    "triggers",
                    self.triggers_once,
                    self.settings.trigger_interval_seconds,
                    always_pause=True,
                )
            )
            if self.settings.outbox_prune_interval_seconds > 0:
                loops.create_task(
                    _loop("prune", self.prune_once, self.settings.outbox_prune_interval_seconds)
                )


async def _loop(
    name: str,
    step: Callable[[], Awaitable[int]],
    interval: float | Callable[[], float],
    *,
    always_pause: bool = False,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `step` again at once while it finds work, else after `interval` (a number of
    seconds, or a function giving it each time) or when `wake` is set, whichever comes first."""
    while True:
        if wake is not None:
            wake.clear()
        seconds = interval() if callable(interval) else interval
        try:
            busy = await step()
        except Exception:
            log.exception("dispatcher: the %s loop failed; retrying", name)
            await asyncio.sleep(max(seconds, PAUSE_AFTER_ERROR_SECONDS))
            continue
        if always_pause or not busy:
            await _pause(seconds, wake)


async def _pause(seconds: float, wake: asyncio.Event | None) -> None:
    if wake is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), seconds)
