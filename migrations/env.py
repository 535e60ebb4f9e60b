"""Alembic environment: one history for SQLite (batch mode) and PostgreSQL, run async.

The database URL comes from the caller (`c360 migrate`, the tests) through
`config.attributes["database_url"]`, else from the settings.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from service.settings import Settings
from store.db import create_engine
from store.migrate import compared
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=compared,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run() -> None:
    url = config.attributes.get("database_url") or Settings().database_url
    engine = create_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_configure)
        await connection.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `c360 migrate`")
asyncio.run(_run())
