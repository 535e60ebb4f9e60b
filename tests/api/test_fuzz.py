"""Schemathesis-generated operations (GraphQL mode) against the app, for every role: no answer
is a 5xx or an unmasked error. Bounded here (one example per root field); the long run is
`python -m bench fuzz` (2,000+ operations per role)."""

from __future__ import annotations

import asyncio

from bench.fuzz import fuzz, generate
from domain.settings import Settings
from store.db import Database


async def test_generated_operations_get_no_5xx_and_no_unmasked_error(
    db: Database, settings: Settings
) -> None:
    bodies = await asyncio.to_thread(generate, 1, 8)  # one per root field
    tallies = await fuzz(settings, bodies)
    for role, tally in tallies.items():
        assert tally.sent == len(bodies) >= 40, role
        assert not tally.problems, (role, tally.problems[:5])
        assert max(tally.statuses) < 500, (role, tally.statuses)
