"""Segments over a population that moves: materialized members, their history and change
events, incremental refresh, dependency order, and the refusals of delete and update."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from domain.errors import DomainError
from domain.identity.linking import IdentifyInput, identify
from domain.segments import definitions as segments
from store.db import Database
from store.models import (
    Customer,
    LifecycleRule,
    OutboxEvent,
    SegmentMembership,
    SegmentMembershipHistory,
    TagDefinition,
)
from tests.integration.condition_helpers import (
    NOW,
    add_customer,
    add_order,
    ago,
    assign,
    define_tag,
)

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}


async def people(db: Database, **countries: str | None) -> dict[str, uuid.UUID]:
    async with db.write() as session:
        return {name: await add_customer(session, country=c) for name, c in countries.items()}


async def stored_members(db: Database, segment_id: uuid.UUID) -> set[uuid.UUID]:
    async with db.read() as session:
        statement = select(SegmentMembership.customer_id).where(
            SegmentMembership.segment_id == segment_id
        )
        return set((await session.scalars(statement)).all())


async def history(db: Database, segment_id: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
    async with db.read() as session:
        rows = await session.execute(
            select(SegmentMembershipHistory.action, SegmentMembershipHistory.customer_id)
            .where(SegmentMembershipHistory.segment_id == segment_id)
            .order_by(SegmentMembershipHistory.id)
        )
        return [(row.action, row.customer_id) for row in rows]


async def events(db: Database) -> list[tuple[str, uuid.UUID | None, dict[str, Any]]]:
    async with db.read() as session:
        rows = await session.execute(
            select(OutboxEvent.kind, OutboxEvent.customer_id, OutboxEvent.payload)
            .where(OutboxEvent.kind.like("segment.%"))
            .order_by(OutboxEvent.id)
        )
        return [(row.kind, row.customer_id, row.payload) for row in rows]


async def move(db: Database, customer: uuid.UUID, **values: Any) -> None:
    async with db.write() as session:
        await session.execute(update(Customer).where(Customer.id == customer).values(**values))


def draft(key: str, condition: dict[str, Any], materialized: bool = True) -> segments.SegmentDraft:
    return segments.SegmentDraft(key, key.title(), None, condition, materialized)


async def test_a_new_materialized_segment_stores_its_members_as_entries(db: Database) -> None:
    p = await people(db, ann="CN", bob="CN", cai="US")
    record = await segments.define_segment(db, draft("china", CHINA), now=NOW)
    assert record.member_count == 2 and record.last_refreshed_at == NOW
    assert await stored_members(db, record.id) == {p["ann"], p["bob"]}
    assert sorted(await history(db, record.id)) == sorted(
        [("ENTERED", p["ann"]), ("ENTERED", p["bob"])]
    )
    assert {(kind, customer) for kind, customer, _ in await events(db)} == {
        ("segment.entered", p["ann"]),
        ("segment.entered", p["bob"]),
    }
    _, _, payload = (await events(db))[0]
    assert payload["segmentId"] == str(record.id) and payload["segmentKey"] == "china"


async def test_refresh_records_who_entered_and_who_left_and_nothing_twice(db: Database) -> None:
    p = await people(db, ann="CN", bob="CN", cai="US", dan="CN")
    record = await segments.define_segment(db, draft("china", CHINA), now=NOW)
    await move(db, p["ann"], country="US")
    await move(db, p["cai"], country="CN")
    await move(db, p["dan"], status="MERGED")
    later = NOW + timedelta(hours=1)
    result = await segments.refresh_segment(db, record.id, now=later)
    assert (result.entered, result.exited) == (1, 2)
    assert await stored_members(db, record.id) == {p["bob"], p["cai"]}
    assert sorted((await history(db, record.id))[3:]) == sorted(
        [("ENTERED", p["cai"]), ("EXITED", p["ann"]), ("EXITED", p["dan"])]
    )
    moved = [(kind, customer) for kind, customer, _ in await events(db)][3:]
    assert sorted(moved) == sorted(
        [("segment.entered", p["cai"]), ("segment.exited", p["ann"]), ("segment.exited", p["dan"])]
    )
    refreshed = await segments.get_segment(db, segment_id=record.id)
    assert refreshed is not None
    assert (refreshed.member_count, refreshed.last_refreshed_at) == (2, later)
    again = await segments.refresh_segment(db, record.id, now=later)
    assert (again.entered, again.exited) == (0, 0)
    assert len(await events(db)) == 6


async def test_members_leave_as_time_passes(db: Database) -> None:
    async with db.write() as session:
        buyer = await add_customer(session)
        await add_order(session, buyer, 100, ago(1))
    recent = {"orders": {"measure": "COUNT", "op": "GTE", "value": 1, "withinDays": 7}}
    record = await segments.define_segment(db, draft("recent", recent), now=NOW)
    assert await stored_members(db, record.id) == {buyer}
    await segments.refresh_segment(db, record.id, now=NOW + timedelta(days=10))
    assert await stored_members(db, record.id) == set()
    assert await history(db, record.id) == [("ENTERED", buyer), ("EXITED", buyer)]


async def test_refreshing_for_some_customers_moves_only_them(db: Database) -> None:
    p = await people(db, ann="CN", bob="US", cai="US")
    record = await segments.define_segment(db, draft("china", CHINA), now=NOW)
    await move(db, p["ann"], country="US")
    await move(db, p["bob"], country="CN")
    await move(db, p["cai"], country="CN")
    async with db.write() as session:
        results = await segments.refresh_for_customers(session, [p["ann"], p["bob"]], NOW)
    assert [(r.entered, r.exited) for r in results] == [(1, 1)]
    assert await stored_members(db, record.id) == {p["bob"]}  # cai waits for a full refresh
    assert await segments.member_counts(db, [record.id]) == {record.id: 1}


async def test_refresh_for_customers_without_materialized_segments_is_one_statement(
    db: Database,
) -> None:
    p = await people(db, ann="CN")
    await segments.define_segment(db, draft("china", CHINA, materialized=False), now=NOW)
    async with db.write() as session:
        assert await segments.refresh_for_customers(session, [p["ann"]], NOW) == []


async def test_a_segment_built_on_another_is_refreshed_after_it(db: Database) -> None:
    p = await people(db, ann="CN", bob="CN", cai="US")
    async with db.write() as session:
        vip = await define_tag(session, "vip")
        for name in ("ann", "cai"):
            await assign(session, p[name], vip)
    base = await segments.define_segment(db, draft("z-china", CHINA), now=NOW)
    on_top = {"and": [{"segment": {"key": "z-china"}}, {"tag": {"key": "vip"}}]}
    # "a-" sorts before "z-": only the dependency order puts it second.
    vip_china = await segments.define_segment(db, draft("a-vip-china", on_top), now=NOW)
    assert await stored_members(db, vip_china.id) == {p["ann"]}
    await move(db, p["cai"], country="CN")
    results = await segments.refresh_all(db, now=NOW)
    assert [r.segment_id for r in results] == [base.id, vip_china.id]
    assert await stored_members(db, vip_china.id) == {p["ann"], p["cai"]}


async def test_delete_is_refused_while_a_segment_tag_or_rule_refers_to_it(db: Database) -> None:
    await people(db, ann="CN")
    china = await segments.define_segment(db, draft("china", CHINA), now=NOW)
    refers = {"not": {"segment": {"key": "china"}}}
    user = await segments.define_segment(db, draft("abroad", refers, materialized=False))
    async with db.write() as session:
        await session.execute(
            insert(TagDefinition).values(
                id=uuid.uuid4(), key="rule-tag", name="Rule", kind="RULE", condition=refers
            )
        )
        await session.execute(
            insert(LifecycleRule).values(
                key="china-rule", to_stage="purchase", priority=1, condition=refers
            )
        )
    with pytest.raises(DomainError) as refused:
        await segments.delete_segment(db, china.id)
    assert refused.value.code == "SEGMENT_IN_USE" and refused.value.field == ("id",)
    assert "segment 'abroad'" in refused.value.message
    assert "tag 'rule-tag'" in refused.value.message
    assert "lifecycle rule 'china-rule'" in refused.value.message
    assert await stored_members(db, china.id)  # nothing was written
    await segments.delete_segment(db, user.id)
    async with db.write() as session:
        await session.execute(LifecycleRule.__table__.delete())
        await session.execute(TagDefinition.__table__.delete())
    assert await segments.delete_segment(db, china.id) == china.id
    assert await stored_members(db, china.id) == set()
    assert await history(db, china.id) == []


async def test_update_recomputes_a_materialized_segment_and_refuses_cycles(db: Database) -> None:
    p = await people(db, ann="CN", bob="US")
    china = await segments.define_segment(db, draft("china", CHINA), now=NOW)
    us = {"attribute": {"field": "country", "op": "EQ", "value": "US"}}
    changed = await segments.update_segment(
        db, china.id, segments.SegmentChanges(condition=us), now=NOW
    )
    assert changed.member_count == 1 and await stored_members(db, china.id) == {p["bob"]}
    await segments.define_segment(db, draft("wrapper", {"segment": {"key": "china"}}, False))
    with pytest.raises(DomainError) as refused:
        await segments.update_segment(
            db, china.id, segments.SegmentChanges(condition={"segment": {"key": "wrapper"}})
        )
    assert (refused.value.code, refused.value.field) == ("SEGMENT_CYCLE", ("condition", "segment"))
    dynamic = await segments.update_segment(
        db, china.id, segments.SegmentChanges(materialized=False), now=NOW
    )
    assert not dynamic.materialized and await stored_members(db, china.id) == set()


async def test_keys_are_unique_slugs(db: Database) -> None:
    await segments.define_segment(db, draft("china", CHINA))
    for key, code in (("china", "DUPLICATE_KEY"), ("Not A Slug", "INVALID_INPUT")):
        with pytest.raises(DomainError) as refused:
            await segments.define_segment(db, draft(key, CHINA))
        assert (refused.value.code, refused.value.field) == (code, ("key",))


async def test_segments_of_a_page_lists_dynamic_and_materialized_memberships(db: Database) -> None:
    p = await people(db, ann="CN", bob="US", cai=None)
    await segments.define_segment(db, draft("china", CHINA), now=NOW)
    await segments.define_segment(
        db, draft("known", {"attribute": {"field": "country", "op": "EXISTS"}}, False)
    )
    found = await segments.segments_of(db, list(p.values()), now=NOW)
    assert {name: [s.key for s in found.get(i, [])] for name, i in p.items()} == {
        "ann": ["china", "known"],
        "bob": ["known"],
        "cai": [],
    }


async def test_identify_moves_the_profiles_it_lands_on_into_materialized_segments(
    db: Database,
) -> None:
    record = await segments.define_segment(db, draft("china", CHINA))
    result = await identify(
        db,
        IdentifyInput([("email", "wang@example.com")], traits={"country": "CN"}),
        region="CN",
        actor="test",
    )
    assert await stored_members(db, record.id) == {result.customer_id}
    assert [(k, c) for k, c, _ in await events(db)] == [("segment.entered", result.customer_id)]
