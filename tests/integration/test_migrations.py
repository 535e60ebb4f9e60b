"""The one Alembic history builds, tears down and rebuilds both backends, and matches the models."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from domain.lifecycle.kpis import PRESET_KPIS
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


async def _sql(url: str, *statements: str) -> list[tuple[object, ...]]:
    """Run the statements in one transaction; the rows of the last."""
    engine = create_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements[:-1]:
                await connection.execute(text(statement))
            result = await connection.execute(text(statements[-1]))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_c13_declares_the_preset_kpis_and_summarizes_channels_of_existing_rows(
    backend: str, tmp_path: Path
) -> None:
    for url in fresh_database_url(backend, tmp_path):
        upgrade(url, "c12_event_properties")
        customer = "0a000000-0000-0000-0000-000000000001"
        uid = customer.replace("-", "") if backend == "sqlite" else customer
        asyncio.run(
            _sql(
                url,
                "INSERT INTO lifecycle_stages (key, name, position, terminal) VALUES "
                "('loyalty', 'Loyalty', 0, false), ('lead', 'Lead', 1, false)",
                "INSERT INTO customers (id, status, attributes, field_times, created_at, "
                f"updated_at, version) VALUES ('{uid}', 'ACTIVE', '{{}}', '{{}}', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00', 1)",
                "INSERT INTO events (customer_id, type, channel, occurred_at, received_at, "
                f"properties) VALUES ('{uid}', 'page_view', 'app', '2026-01-02 00:00:00', "
                f"'2026-01-02 00:00:00', '{{}}'), ('{uid}', 'page_view', 'app', "
                "'2026-01-03 00:00:00', '2026-01-03 00:00:00', '{}')",
                "INSERT INTO orders (customer_id, source, external_id, amount, currency, "
                f"base_amount, status, placed_at, created_at) VALUES ('{uid}', 'app', 'o1', 5, "
                "'CNY', 5, 'completed', '2026-01-04 00:00:00', '2026-01-04 00:00:00')",
            )
        )
        upgrade(url)
        stages = asyncio.run(_sql(url, "SELECT key, kpis FROM lifecycle_stages ORDER BY key"))
        channels = asyncio.run(_sql(url, "SELECT channel, events, orders FROM customer_channels"))
        kpis = {key: json.loads(v) if isinstance(v, str) else v for key, v in stages}
        assert kpis == {
            "lead": [],
            "loyalty": [spec.to_json() for spec in PRESET_KPIS["loyalty"]],
        }
        assert channels == [("app", 2, 1)]
