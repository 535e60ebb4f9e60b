"""Probable duplicates on a real database: the evidence of a scored pair, the threshold, an
accepted pair merged, a rejected pair never suggested again, the incremental scan of a new
profile, and a model estimated from the population."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select

from bench.duplicates_population import population
from domain.access.erasure import erase_customer
from domain.duplicates import runs, suggestions
from domain.duplicates.suggestions import SuggestionFilter
from domain.errors import InvalidInput
from domain.pagination import PageRequest
from service.periodic import scan_duplicates_every
from service.settings import Settings
from store.db import Database
from store.models import (
    Customer,
    DuplicateProfile,
    DuplicateScan,
    DuplicateSuggestion,
    MergeRecord,
)
from tests.builders import make_customer

ZHANG = {
    "first_name": "伟",
    "last_name": "张",
    "email": "zhangwei88@qq.com",
    "phone": "+8613812345678",
    "birthday": date(1990, 5, 1),
    "city": "上海",
}
# The same man from another channel: pinyin name, another provider, a digit off.
WEI_ZHANG = {
    "first_name": "Wei",
    "last_name": "Zhang",
    "email": "zhangwei88@163.com",
    "phone": "+8613812345679",
    "birthday": date(1990, 5, 1),
    "city": "Shanghai",
}
# A namesake: same name, nothing else in common.
OTHER_ZHANG = {
    "first_name": "伟",
    "last_name": "张",
    "email": "wz1975@126.com",
    "phone": "+8615900001111",
    "birthday": date(1975, 11, 3),
    "city": "上海",
}


async def _open(db: Database) -> list[suggestions.SuggestionRecord]:
    page, _ = await suggestions.list_suggestions(
        db, PageRequest(first=50), SuggestionFilter(status="OPEN")
    )
    return page.items


async def test_a_full_run_suggests_the_pair_with_evidence_per_field(
    db: Database, settings: Settings
) -> None:
    one = await make_customer(db, **ZHANG)
    two = await make_customer(db, **WEI_ZHANG)
    await make_customer(db, **OTHER_ZHANG)
    result = await runs.find_all(db, settings)
    assert (result.profiles, result.suggested, result.trained) == (3, 1, False)
    [found] = await _open(db)
    assert set(found.customer_ids) == {one, two}
    assert found.score >= settings.duplicate_threshold
    evidence = {e.field: (e.comparison, e.weight) for e in found.evidence}
    assert {field: c for field, (c, _) in evidence.items()} == {
        "firstName": "exact",
        "lastName": "exact",
        "email": "exact",
        "phone": "typo",
        "birthday": "exact",
        "city": "exact",
    }
    assert all(weight > 0 for _, weight in evidence.values())


async def test_the_threshold_decides_what_is_suggested(db: Database, settings: Settings) -> None:
    await make_customer(db, **ZHANG)
    await make_customer(db, **OTHER_ZHANG)
    assert (await runs.find_all(db, settings)).suggested == 0
    everything = settings.model_copy(update={"duplicate_threshold": 0.0})
    assert (await runs.find_all(db, everything)).suggested == 1
    [namesakes] = await _open(db)
    evidence = {e.field: e.comparison for e in namesakes.evidence}
    assert evidence["birthday"] == "different" and namesakes.score < 0.5


async def test_accepting_merges_the_pair_into_the_older_profile(
    db: Database, settings: Settings
) -> None:
    older = await make_customer(db, **ZHANG)
    newer = await make_customer(db, **WEI_ZHANG)
    await runs.find_all(db, settings)
    [found] = await _open(db)
    merge = await suggestions.accept(db, found.id, "same man", "admin:ops")
    assert (merge.survivor_id, merge.merged_id) == (older, newer)
    assert "probable duplicate" in merge.reason and "same man" in merge.reason
    async with db.read() as session:
        loser = await session.get(Customer, newer)
        record = await session.get(MergeRecord, merge.id)
        decided = await session.get(DuplicateSuggestion, found.id)
    assert loser is not None and loser.status == "MERGED" and record is not None
    assert decided is not None and decided.status == "ACCEPTED"
    assert decided.decided_by == "admin:ops" and decided.decision_reason == "same man"
    assert await _open(db) == []
    try:
        await suggestions.accept(db, found.id, None, "admin:ops")
    except InvalidInput as error:
        assert error.code == "ALREADY_DECIDED"
    else:
        raise AssertionError("a decided suggestion was accepted twice")


async def test_a_rejected_pair_is_never_suggested_again(db: Database, settings: Settings) -> None:
    await make_customer(db, **ZHANG)
    await make_customer(db, **WEI_ZHANG)
    await runs.find_all(db, settings)
    [found] = await _open(db)
    rejected = await suggestions.reject(db, found.id, "brothers", "admin:ops")
    assert rejected.status == "REJECTED"
    await runs.find_all(db, settings)
    assert await _open(db) == []
    async with db.read() as session:
        rows = (await session.scalars(select(DuplicateSuggestion))).all()
    assert [(row.id, row.status) for row in rows] == [(found.id, "REJECTED")]


async def test_the_incremental_scan_blocks_a_new_profile_against_the_stored_ones(
    db: Database, settings: Settings
) -> None:
    first = await make_customer(db, **ZHANG)
    others = [
        await make_customer(db, first_name=f"客{i}", birthday=date(1980, 1, 1 + i))
        for i in range(5)
    ]
    assert (await runs.find_all(db, settings)).suggested == 0
    second = await make_customer(db, **WEI_ZHANG)
    result = await runs.scan_changed(db, settings)
    # Only the stored profile that shares a blocking key was a candidate, not the world.
    assert (result.profiles, result.candidates, result.suggested) == (1, 1, 1)
    [found] = await _open(db)
    assert set(found.customer_ids) == {first, second} and len(others) == 5
    again = await runs.scan_changed(db, settings)
    assert (again.profiles, again.suggested) == (0, 0)


async def test_a_large_enough_population_trains_the_model(db: Database, settings: Settings) -> None:
    people = population(1200, seed=3)
    rows: list[dict[str, Any]] = [
        {
            "id": p.customer_id,
            "status": "ACTIVE",
            "first_name": p.first_name,
            "last_name": p.last_name,
            "email": p.email,
            "phone": p.phone,
            "birthday": p.birthday,
            "city": p.city,
            "attributes": {},
            "field_times": {},
            "version": 1,
        }
        for p in people
    ]
    async with db.write() as session:
        await session.execute(insert(Customer), rows)
    result = await runs.find_all(db, settings)
    assert result.trained and result.profiles == len(people)
    async with db.read() as session:
        scan = await session.get(DuplicateScan, 1)
        open_pairs = await session.scalar(select(func.count()).select_from(DuplicateSuggestion))
    assert scan is not None and scan.model is not None and scan.trained_profiles == len(people)
    email = next(c for c in scan.model["comparisons"] if c["output_column_name"] == "email_local")
    exact = next(
        level for level in email["comparison_levels"] if level.get("label_for_charts") == "exact"
    )
    assert exact["u_probability"] != 0.0005  # estimated by sampling, not the starting value
    truth: dict[uuid.UUID, int] = {p.customer_id: p.person for p in people}
    page, _ = await suggestions.list_suggestions(db, PageRequest(first=200), SuggestionFilter())
    right = sum(truth[a] == truth[b] for a, b in (s.customer_ids for s in page.items))
    assert open_pairs and right / len(page.items) >= 0.9


async def test_serve_scans_changed_profiles_in_the_background(
    db: Database, settings: Settings
) -> None:
    await make_customer(db, **ZHANG)
    await make_customer(db, **WEI_ZHANG)
    often = settings.model_copy(update={"duplicate_scan_interval_seconds": 0.2})
    task = asyncio.create_task(scan_duplicates_every(db, often))
    try:
        for _ in range(1000):  # polls the task's effect; it sleeps 0.2 s between scans
            await asyncio.sleep(0.01)
            if await _open(db):
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert len(await _open(db)) == 1


async def test_erasure_removes_the_compared_features(db: Database, settings: Settings) -> None:
    erased = await make_customer(db, **ZHANG)
    kept = await make_customer(db, **OTHER_ZHANG)
    await runs.find_all(db, settings)
    await erase_customer(db, erased, "admin:ops", settings.erasure_salt)
    async with db.read() as session:
        left = (await session.scalars(select(DuplicateProfile.customer_id))).all()
    assert left == [kept]
