"""Engine, sessions and transactions for SQLite (embedded default) and PostgreSQL.

Write transactions go through `Database.transact`, which retries the whole unit of work when
the database reports a deadlock, a serialization failure or a lost insert race: those are
ordinary under concurrency and must never reach a client.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from store.replicas import POSITION_SQL, Replica, ReplicaSet, parse_position

ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}
RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
T = TypeVar("T")
log = logging.getLogger("c360.db")


def async_url(raw: str) -> URL:
    """Accept URLs as users write them (postgresql://, postgres://, sqlite:///) and pick the
    async driver; an explicit `+asyncpg` / `+aiosqlite` is kept."""
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    url = make_url(raw)
    backend = url.get_backend_name()
    if backend not in ASYNC_DRIVERS:
        raise ValueError(f"unsupported database {backend!r}: use PostgreSQL or SQLite")
    return url.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")


def create_engine(raw_url: str, *, echo: bool = False, pool_size: int = 10) -> AsyncEngine:
    url = async_url(raw_url)
    options: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "postgresql":
        options |= {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": True}
    else:
        options |= {"connect_args": {"timeout": 30}}
    engine = create_async_engine(url, **options)
    if url.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from Python's sqlite3 so that BEGIN is ours (see below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers take the write lock up front: a deferred transaction that reads and then
        # writes can fail to upgrade its lock under concurrency, which busy_timeout cannot fix.
        write = connection.get_execution_options().get("c360_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _sqlstate(error: DBAPIError) -> str | None:
    orig = error.orig
    return getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )


def is_retryable(error: DBAPIError) -> bool:
    """Deadlocks, serialization failures and lost unique races (PostgreSQL); a busy database
    (SQLite). The whole unit of work reruns and sees the winner's rows."""
    if _sqlstate(error) in RETRYABLE_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


# SQLSTATE classes and codes that mean "no usable connection": connection exceptions (08),
# insufficient resources such as too many clients (53), operator intervention such as a
# shutting-down or starting server (57P01-57P05), and a refused login (28).
UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "28")
UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "57P04", "57P05"}
# SQLite's way of saying it cannot open or reach the file.
UNAVAILABLE_SQLITE = ("unable to open database file", "disk i/o error")
# Missing tables or columns: the database is older than the code (42P01, 42703 on PostgreSQL).
NOT_MIGRATED_SQLSTATES = {"42P01", "42703"}
NOT_MIGRATED_SQLITE = ("no such table", "no such column", "has no column named")


def is_unavailable(error: BaseException) -> bool:
    """The database cannot be reached (refused, reset, timed out, pool exhausted, too many
    clients, login refused), as opposed to a bug or a bad statement: the caller may retry
    later, and the pool reconnects by itself (pre-ping on PostgreSQL) once the database is
    back."""
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        state = _sqlstate(error) or ""
        if state in UNAVAILABLE_SQLSTATES or state.startswith(UNAVAILABLE_SQLSTATE_CLASSES):
            return True
        message = str(error.orig).lower()
        return isinstance(error, OperationalError) and any(m in message for m in UNAVAILABLE_SQLITE)
    return isinstance(error, OSError | TimeoutError | PoolTimeout)


def is_not_migrated(error: BaseException) -> bool:
    """A statement met a table or column the database does not have yet: `c360 migrate` has
    not run (or not to the end) on it."""
    if not isinstance(error, DBAPIError):
        return False
    if _sqlstate(error) in NOT_MIGRATED_SQLSTATES:
        return True
    message = str(error.orig).lower()
    return isinstance(error, OperationalError) and any(m in message for m in NOT_MIGRATED_SQLITE)


class Database:
    """The engine plus the two kinds of session the domain asks for; with `replicas`
    (PostgreSQL streaming replicas, store.replicas), a request's reads may go to one of them
    (`request_scope`)."""

    def __init__(self, engine: AsyncEngine, replicas: ReplicaSet | None = None) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.replicas = replicas
        # Writes through this handle bring the derived state of the profiles they touched up
        # to date before they return, instead of leaving it to the worker (domain.derived):
        # the test harness, and `derived_state_inline`.
        self.settle_writes = False
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            engine.execution_options(c360_write=True), expire_on_commit=False
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        echo: bool = False,
        replica_urls: list[str] | None = None,
        max_lag_seconds: float = 1.0,
        check_seconds: float = 1.0,
        wait_seconds: float = 0.05,
    ) -> Database:
        """`replica_urls`: streaming replicas of the PostgreSQL primary at `url`, for reads."""
        engine = create_engine(url, echo=echo)
        if not replica_urls:
            return cls(engine)
        if engine.dialect.name != "postgresql":
            raise ValueError("read replicas need PostgreSQL")
        replicas = [
            Replica(async_url(raw).render_as_string(hide_password=True), create_engine(raw))
            for raw in replica_urls
        ]
        return cls(
            engine,
            ReplicaSet(
                replicas,
                max_lag_seconds=max_lag_seconds,
                check_seconds=check_seconds,
                wait_seconds=wait_seconds,
            ),
        )

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One write transaction; committed on success, rolled back on any exception."""
        async with self._writes() as session, session.begin():
            yield session

    async def transact(
        self, work: Callable[[AsyncSession], Awaitable[T]], *, attempts: int = 8
    ) -> T:
        """Run `work` in a write transaction, retrying it whole on retryable failures."""
        for attempt in range(1, attempts + 1):
            try:
                async with self.write() as session:
                    return await work(session)
            except DBAPIError as error:
                if attempt == attempts or not is_retryable(error):
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
        raise AssertionError("unreachable")

    def request_scope(self, consistency_token: str | None = None) -> Database:
        """A handle for one request: its reads share one connection on PostgreSQL
        (RequestReads), on a replica when there are replicas, one that has replayed up to
        `consistency_token` if the client sent one; elsewhere, this database itself."""
        if self.dialect != "postgresql":
            return self
        return RequestReads(self, consistency_token)

    async def pin_primary(self) -> None:
        """From now on this handle reads from the primary (a mutation reads what it wrote);
        the database itself always does."""

    @property
    def read_source(self) -> str:
        """Where this handle's reads went: `primary` or `replica`."""
        return "primary"

    async def write_position(self) -> str | None:
        """The primary's WAL position now, as a consistency token, when there are replicas to
        be consistent with; None without (SQLite, or no replicas)."""
        if self.replicas is None:
            return None
        async with self.engine.connect() as connection:
            value = (await connection.execute(POSITION_SQL)).scalar()
        return str(value) if value else None

    async def close(self) -> None:
        """Give back what a request-scoped handle holds; nothing for the database itself."""

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replicas is not None:
            await self.replicas.dispose()


_holder: ContextVar[Database | None] = ContextVar("c360_request_reads", default=None)


class RequestReads(Database):
    """The reads of one request on one pooled connection, in autocommit, one session at a
    time; writes go through the pool as usual.

    A page of profiles reads a dozen small batches (one per DataLoader); on sessions of
    their own, each would pay a checkout with its liveness ping (BEGIN, `;`, ROLLBACK), then
    BEGIN and COMMIT: five round trips around one SELECT. Here the connection is checked out
    once, at the first read, and given back by `close()` when the request ends. Autocommit
    changes nothing a read sees: under READ COMMITTED, PostgreSQL's default, every statement
    takes its own snapshot inside a transaction or not. A read opened while the same request
    (task, or a task it started) holds the connection gets a pooled session of its own
    instead of waiting for itself.

    With replicas, the first read picks where the request reads: a replica the ReplicaSet
    offers (one that has replayed up to the request's consistency token, if any), else the
    primary; a replica that cannot be reached is marked down and the primary answers.
    `pin_primary()` moves the rest of the request's reads to the primary."""

    def __init__(self, base: Database, consistency_token: str | None = None) -> None:
        self.engine, self.dialect = base.engine, base.dialect
        self.replicas = base.replicas
        self.settle_writes = base.settle_writes
        self._reads, self._writes = base._reads, base._writes
        self._base = base
        self._lock = asyncio.Lock()
        self._connection: AsyncConnection | None = None
        self._token = consistency_token
        self._source: AsyncEngine | None = None if base.replicas else base.engine

    @property
    def read_source(self) -> str:
        return "replica" if self._source not in (None, self.engine) else "primary"

    async def _connect(self) -> AsyncConnection:
        if self._source is None:
            self._source = self.engine
            replica = await self._replica()
            if replica is not None:
                try:
                    connection = await replica.engine.connect()
                except Exception as error:  # gone since its last check: the primary answers
                    log.warning("replica %s unreachable: %s", replica.name, error)
                    replica.mark_down()
                else:
                    self._source = replica.engine
                    return connection
        return await self._source.connect()

    async def _replica(self) -> Replica | None:
        if self.replicas is None:
            return None
        after = parse_position(self._token)
        if self._token is not None and after is None:
            return None  # a token that does not parse cannot be checked: the primary answers
        return await self.replicas.choose(after)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        if _holder.get() is self:
            async with self._base.read() as session:
                yield session
            return
        async with self._lock:
            token = _holder.set(self)
            try:
                if self._connection is None:
                    connection = await self._connect()
                    self._connection = await connection.execution_options(
                        isolation_level="AUTOCOMMIT"
                    )
                async with AsyncSession(bind=self._connection, expire_on_commit=False) as session:
                    yield session
            finally:
                _holder.reset(token)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """Give the read connection back before taking a write one: requests that hold a
        connection while waiting for another would, under load, starve the pool between them."""
        async with self._lock:
            await self.close()
        async with self._base.write() as session:
            yield session

    async def pin_primary(self) -> None:
        async with self._lock:
            if self._source is not self.engine:
                await self.close()
                self._source = self.engine

    async def write_position(self) -> str | None:
        self._token = await self._base.write_position()
        return self._token

    @property
    def consistency_token(self) -> str | None:
        """The request's token: the one its client sent, or the position its write returned."""
        return self._token

    async def close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            await connection.close()
