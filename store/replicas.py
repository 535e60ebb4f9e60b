"""PostgreSQL streaming replicas for reads: which one may answer a read, and from which WAL
position on.

A replica is asked about itself at most once per check interval (`ReplicaSet.check_seconds`):
whether it is reachable and in recovery, how far it has replayed the primary's WAL
(`pg_last_wal_replay_lsn()`) and how far behind it runs. The lag is zero when the replica has
replayed all it received, else the age of the last transaction it replayed: a quiet primary
is not mistaken for a lagging replica, and a replica whose replay stalls (or whose receiver
lost the primary) is seen to fall behind by the second. A replica that does not answer, or
lags more than `max_lag_seconds`, is skipped until its next check, and the primary answers.

Session consistency: a client that wrote sends back the primary's WAL position its write
returned (a consistency token); a replica answers it only once it has
replayed that far. Until then the replica is asked again for up to `wait_seconds`, then the
primary answers.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger("c360.replicas")

# The replica's own view of itself, in one round trip. `pg_last_wal_receive_lsn()` and the
# WAL receiver's status are NULL on a server not in recovery.
STATE_SQL = text(
    """
    SELECT pg_is_in_recovery() AS recovering,
           CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text
                ELSE pg_current_wal_insert_lsn()::text END AS replayed,
           CASE WHEN NOT pg_is_in_recovery() THEN 0
                WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn()
                     AND coalesce((SELECT status FROM pg_stat_wal_receiver), '') = 'streaming'
                THEN 0
                ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
           END AS lag
    """
)
REPLAYED_SQL = text("SELECT pg_last_wal_replay_lsn()::text")
# Where the primary's WAL stands after a commit, as far as that commit needs: committed with
# synchronous_commit on (or local, remote_*), it is flushed, and the flush position is past
# it and already on its way to the replicas; committed with it off, it may not be written yet,
# and only the insert position is sure to be past it (the write position,
# `pg_current_wal_lsn()`, may lag it). The insert position also counts other sessions'
# unflushed WAL, which replicas see only after the WAL writer flushes it (wal_writer_delay).
POSITION_SQL = text(
    "SELECT CASE WHEN current_setting('synchronous_commit') = 'off' "
    "THEN pg_current_wal_insert_lsn() ELSE pg_current_wal_flush_lsn() END::text"
)


def parse_position(token: str | None) -> int | None:
    """A WAL position as PostgreSQL writes it (`16/B374D848`) as one number; None for
    anything else."""
    if not token:
        return None
    high, slash, low = token.strip().partition("/")
    if not slash or not 0 < len(high) <= 8 or not 0 < len(low) <= 8:
        return None
    try:
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        return None


@dataclass(frozen=True)
class ReplicaState:
    healthy: bool
    replayed: int = 0
    lag_seconds: float = 0.0
    checked_at: float = 0.0


class Replica:
    """One replica's engine and what its last check found."""

    def __init__(self, name: str, engine: AsyncEngine) -> None:
        self.name = name
        self.engine = engine
        self.state = ReplicaState(healthy=False)
        self._check: asyncio.Task[ReplicaState] | None = None

    async def current(self, interval: float, timeout: float) -> ReplicaState:
        """The state, checked again when older than `interval`; concurrent callers share
        one check."""
        if time.monotonic() - self.state.checked_at < interval:
            return self.state
        if self._check is None or self._check.done():
            self._check = asyncio.create_task(self._checked(timeout))
        return await asyncio.shield(self._check)

    async def _checked(self, timeout: float) -> ReplicaState:
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as connection:
                row = (await connection.execute(STATE_SQL)).one()
            state = ReplicaState(
                healthy=True,
                replayed=parse_position(row.replayed) or 0,
                lag_seconds=float(row.lag),
                checked_at=time.monotonic(),
            )
        except Exception as error:  # unreachable, refusing, starting up: skipped until next check
            if self.state.healthy or not self.state.checked_at:
                log.warning("replica %s unavailable: %s", self.name, error)
            state = ReplicaState(healthy=False, checked_at=time.monotonic())
        self.state = state
        return state

    async def replayed(self, timeout: float) -> int | None:
        """How far the replica has replayed now (not as last checked); None if it cannot say."""
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as connection:
                value = (await connection.execute(REPLAYED_SQL)).scalar()
        except Exception:
            return None
        return parse_position(value)

    def mark_down(self) -> None:
        """A read could not reach it: skip it until its next check."""
        self.state = ReplicaState(healthy=False, checked_at=time.monotonic())


class ReplicaSet:
    """The replicas reads may go to, taken in turn."""

    def __init__(
        self,
        replicas: list[Replica],
        *,
        max_lag_seconds: float,
        check_seconds: float,
        wait_seconds: float,
        check_timeout_seconds: float = 1.0,
    ) -> None:
        self.replicas = replicas
        self.max_lag_seconds = max_lag_seconds
        self.check_seconds = check_seconds
        self.wait_seconds = wait_seconds
        self.check_timeout_seconds = check_timeout_seconds
        self._turn = itertools.count()

    async def choose(self, after: int | None) -> Replica | None:
        """A healthy replica within the lag allowed that has replayed up to `after` (a WAL
        position; None: any), or None: the primary answers."""
        start = next(self._turn)
        ordered = [
            self.replicas[(start + i) % len(self.replicas)] for i in range(len(self.replicas))
        ]
        usable = []
        for replica in ordered:
            state = await replica.current(self.check_seconds, self.check_timeout_seconds)
            if state.healthy and state.lag_seconds <= self.max_lag_seconds:
                if after is None or state.replayed >= after:
                    return replica
                usable.append(replica)
        if not usable:
            return None
        return await self._first_to_replay(usable, after or 0)

    async def _first_to_replay(self, replicas: list[Replica], after: int) -> Replica | None:
        """Ask the replicas again until one has replayed up to `after`, for at most
        `wait_seconds`."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            for replica in replicas:
                replayed = await replica.replayed(self.check_timeout_seconds)
                if replayed is not None and replayed >= after:
                    return replica
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(min(0.002, max(0.0, deadline - time.monotonic())))

    async def dispose(self) -> None:
        for replica in self.replicas:
            await replica.engine.dispose()
