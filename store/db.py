"""Engine, sessions and transactions for SQLite (embedded default) and PostgreSQL.

Write transactions go through `Database.transact`, which retries the whole unit of work when
the database reports a deadlock, a serialization failure or a lost insert race: those are
ordinary under concurrency and must never reach a client.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

ASYNC_DRIVERS = {"postgresql": "asyncpg", "sqlite": "aiosqlite"}
RETRYABLE_SQLSTATES = {"40001", "40P01", "23505"}
T = TypeVar("T")


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


def is_retryable(error: DBAPIError) -> bool:
    """Deadlocks, serialization failures and lost unique races (PostgreSQL); a busy database
    (SQLite). The whole unit of work reruns and sees the winner's rows."""
    orig = error.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(
        getattr(orig, "__cause__", None), "sqlstate", None
    )
    if sqlstate in RETRYABLE_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "database is locked" in str(orig)


class Database:
    """The engine plus the two kinds of session the domain asks for."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._reads = async_sessionmaker(engine, expire_on_commit=False)
        self._writes = async_sessionmaker(
            engine.execution_options(c360_write=True), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str, *, echo: bool = False) -> Database:
        return cls(create_engine(url, echo=echo))

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

    async def dispose(self) -> None:
        await self.engine.dispose()
