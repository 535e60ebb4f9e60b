"""What every benchmark needs: a PostgreSQL server URL, and fresh databases on it.

Benchmarks create and drop their own databases (`c360_bench_<random>`) and never touch any
other database on the server.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from service.bootstrap import ensure_reference_data
from store.db import Database
from store.migrate import upgrade

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, report: dict[str, Any], suffix: str = "") -> Path:
    """bench/results/<name>-<today><suffix>.json (committed with the change it measures)."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{date.today().isoformat()}{suffix}.json"
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"figures written to {path}")
    return path


def server_url(raw: str) -> URL:
    if raw.startswith("postgres://"):
        raw = "postgresql://" + raw.removeprefix("postgres://")
    url = make_url(raw)
    if url.get_backend_name() != "postgresql":
        raise SystemExit(f"benchmarks run on PostgreSQL, not {url.drivername!r}")
    return url


async def server_sql(server: URL, *statements: str) -> list[Any]:
    """Run statements on the server's own database (never a benchmark's); their first values."""
    connection = await asyncpg.connect(
        host=server.host,
        port=server.port or 5432,
        user=server.username,
        password=server.password,
        database=server.database or "postgres",
    )
    try:
        return [await connection.fetchval(statement) for statement in statements]
    finally:
        await connection.close()


async def checkpoint(server: URL) -> None:
    """Flush the previous phase's dirty pages now, so no checkpoint lands in a timed phase;
    best effort (it needs superuser or pg_checkpoint)."""
    with suppress(asyncpg.InsufficientPrivilegeError):
        await server_sql(server, "CHECKPOINT")


@asynccontextmanager
async def _migrated(server: URL, name: str, revision: str = "head") -> AsyncIterator[Database]:
    """Existing database `name`, migrated to `revision`, with the reference data."""
    url = server.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    await asyncio.to_thread(upgrade, url, revision)
    db = Database.from_url(url)
    try:
        await ensure_reference_data(db)
        yield db
    finally:
        await db.dispose()


@asynccontextmanager
async def kept_database(server: URL, name: str, revision: str = "head") -> AsyncIterator[Database]:
    """Database `name`, created if missing, migrated to `revision`, and kept afterwards."""
    (exists,) = await server_sql(server, f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
    if exists is None:
        await server_sql(server, f'CREATE DATABASE "{name}"')
    async with _migrated(server, name, revision) as db:
        yield db


@asynccontextmanager
async def fresh_database(server: URL) -> AsyncIterator[Database]:
    """A new migrated database with the reference data, dropped afterwards."""
    name = f"c360_bench_{uuid.uuid4().hex[:12]}"
    await server_sql(server, f'CREATE DATABASE "{name}"')
    try:
        async with _migrated(server, name) as db:
            yield db
    finally:
        await server_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
