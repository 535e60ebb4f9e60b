"""`c360 find-duplicates`: a summary table for people, one JSON document with --json."""

from __future__ import annotations

import json

from store.db import Database
from tests.builders import make_customer
from tests.cli.test_cli import c360_async
from tests.integration.test_duplicates import OTHER_ZHANG, WEI_ZHANG, ZHANG


async def test_find_duplicates_prints_a_summary_or_json(db: Database, database_url: str) -> None:
    for fields in (ZHANG, WEI_ZHANG, OTHER_ZHANG):
        await make_customer(db, **fields)
    result = await c360_async("find-duplicates", "--json", url=database_url)
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["profiles"] == 3 and figures["suggested"] == 1
    assert figures["trained"] is False and figures["threshold"] == 0.95
    table = await c360_async("find-duplicates", url=database_url)
    assert table.exit_code == 0, table.output
    assert "probable duplicates" in table.stdout and "pairs suggested" in table.stdout
