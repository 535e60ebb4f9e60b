"""The one Alembic history builds, tears down and rebuilds both backends, and matches the models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from store.db import create_engine
from store.migrate import compared, downgrade, upgrade
from store.models import Base
from tests.conftest import BACKENDS, fresh_database_url


async def differences(url: str) -> tuple[list[object], set[str]]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:

            def compare(sync_connection):  # type: ignore[no-untyped-def]
                context = MigrationContext.configure(
                    sync_connection, opts={"compare_type": True, "include_object": compared}
                )
                return compare_metadata(context, Base.metadata), set(
                    inspect(sync_connection).get_table_names()
                )

            return await connection.run_sync(compare)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_downgrade_upgrade_round_trip_leaves_no_difference(
    backend: str, tmp_path: Path
) -> None:
    for url in fresh_database_url(backend, tmp_path):
        upgrade(url)
        downgrade(url, "base")
        diff, tables = asyncio.run(differences(url))
        assert tables <= {"alembic_version"}, f"downgrade left tables behind: {tables}"
        upgrade(url)
        diff, tables = asyncio.run(differences(url))
        assert set(Base.metadata.tables) <= tables
        assert diff == [], f"models and migrations differ: {diff}"
