"""Schemathesis-generated operations (GraphQL mode) against the app, for every role: no answer
is a 5xx or an unmasked error. Bounded here (one example per root field); the long run is
`python -m bench fuzz` (2,000+ operations per role). The hostile cases (bench.hostile) are
sent here too, once per role: fragment fan-out, malformed and oversize bodies, extreme values."""

from __future__ import annotations

import asyncio

from bench.fuzz import fuzz, generate
from bench.hostile import probes
from service.settings import Settings
from store.db import Database


async def test_generated_operations_get_no_5xx_and_no_unmasked_error(
    db: Database, settings: Settings
) -> None:
    bodies = await asyncio.to_thread(generate, 1, 8)  # one per root field
    tallies = await fuzz(settings, bodies, hostile=False)
    for role, tally in tallies.items():
        assert tally.sent == len(bodies) >= 40, role
        assert not tally.problems, (role, tally.problems[:5])
        assert max(tally.statuses) < 500, (role, tally.statuses)


async def test_hostile_requests_get_no_5xx_no_internal_error_and_are_refused_with_codes(
    db: Database, settings: Settings
) -> None:
    tallies = await fuzz(settings, [])
    for role, tally in tallies.items():
        assert tally.sent == len(probes("x")) >= 100, role
        assert max(tally.statuses) < 500, (role, tally.statuses)
        assert tally.codes["INTERNAL_ERROR"] == 0, (role, tally.problems[:5])
        assert not tally.problems, (role, tally.problems[:5])
        assert tally.statuses[400] >= 15 and tally.statuses[413] == 2, (role, tally.statuses)
        assert tally.codes["QUERY_TOO_COMPLEX"] >= 4, (role, tally.codes)
