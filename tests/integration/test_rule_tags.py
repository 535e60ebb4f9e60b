"""RULE tags on a real database: assigned and removed as the data moves, by writes and by the
full re-evaluation, with history and events; their conditions refused like segments'."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from domain import cascade, tags
from domain.activity import ingest as activity
from domain.activity.ingest import OrderItem
from domain.errors import DomainError
from domain.identity.editing import update_customer
from domain.lifecycle.config import configure
from domain.lifecycle.model import LifecycleModelRecord, RuleRecord, StageRecord
from domain.segments import definitions as segments
from domain.tagging import bulk as tagging
from domain.tagging.bulk import Assignment
from domain.tags import TagSpec
from service.periodic import sweep_tags_every
from store.db import Database
from store.models import Customer, OutboxEvent, SegmentMembership, TagAssignment, TagHistory
from tests.integration.condition_helpers import NOW, add_customer, add_order
from tests.integration.identity_helpers import ident, row_counts

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}


async def rule(db: Database, key: str, condition: dict, now=None) -> tags.TagDefinitionRecord:
    return await tags.define_tag(
        db, TagSpec(key=key, name=key, kind="RULE", condition=condition), now=now
    )


async def holders(db: Database, key: str) -> set[uuid.UUID]:
    tag = await tags.definition_by_key(db, key)
    async with db.read() as session:
        statement = select(TagAssignment.customer_id).where(TagAssignment.tag_id == tag.id)
        return set((await session.scalars(statement)).all())


async def history(db: Database, key: str) -> list[tuple[str, uuid.UUID, str | None, str | None]]:
    tag = await tags.definition_by_key(db, key)
    async with db.read() as session:
        rows = await session.execute(
            select(TagHistory.action, TagHistory.customer_id, TagHistory.source, TagHistory.actor)
            .where(TagHistory.tag_id == tag.id)
            .order_by(TagHistory.id)
        )
        return [tuple(row) for row in rows]


async def tag_events(db: Database) -> list[tuple[str, uuid.UUID, dict]]:
    async with db.read() as session:
        rows = await session.execute(
            select(OutboxEvent.kind, OutboxEvent.customer_id, OutboxEvent.payload)
            .where(OutboxEvent.kind.startswith("tag."))
            .order_by(OutboxEvent.id)
        )
        return [tuple(row) for row in rows]


async def people(db: Database, **countries: str | None) -> dict[str, uuid.UUID]:
    async with db.write() as session:
        return {name: await add_customer(session, country=c) for name, c in countries.items()}


async def test_a_rule_tag_follows_identify_both_ways_with_history_and_events(db) -> None:
    await rule(db, "in_china", CHINA)
    li = (await ident(db, ("email", "li@x.com"), traits={"country": "CN"})).customer_id
    assert await holders(db, "in_china") == {li}
    await ident(db, ("email", "li@x.com"), traits={"country": "US"})
    assert await holders(db, "in_china") == set()
    assert await history(db, "in_china") == [
        ("ASSIGNED", li, "rule", "rule:in_china"),
        ("REMOVED", li, "rule", "rule:in_china"),
    ]
    assert await tag_events(db) == [
        ("tag.assigned", li, {"tag": "in_china", "value": None}),
        ("tag.removed", li, {"tag": "in_china"}),
    ]


async def test_a_rule_tag_follows_profile_edits_and_orders(db) -> None:
    await rule(db, "in_china", CHINA)
    await rule(db, "big_spender", {"orders": {"measure": "SUM", "op": "GTE", "value": 500}})
    wu = (await ident(db, ("email", "wu@x.com"))).customer_id
    await update_customer(db, wu, {"country": "CN"}, "frontend:x")
    assert await holders(db, "in_china") == {wu}
    await update_customer(db, wu, {"country": "DE"}, "frontend:x")
    assert await holders(db, "in_china") == set()
    order = OrderItem(("email", "wu@x.com"), "o-1", Decimal("600"), "CNY")
    await activity.record_orders(db, [order], region="CN", actor="test", rates={"CNY": Decimal(1)})
    assert await holders(db, "big_spender") == {wu}


async def test_defining_assigns_at_once_and_a_new_condition_reevaluates_everyone(db) -> None:
    p = await people(db, ann="CN", bob="US", cy="CN")
    await rule(db, "local", CHINA)
    assert await holders(db, "local") == {p["ann"], p["cy"]}
    us = {"attribute": {"field": "country", "op": "EQ", "value": "US"}}
    await tags.update_tag(db, TagSpec(key="local", condition=us), actor="admin:a")
    assert await holders(db, "local") == {p["bob"]}
    actions = sorted((action, who) for action, who, _, _ in await history(db, "local"))
    assert actions == sorted(
        [
            ("ASSIGNED", p["ann"]),
            ("ASSIGNED", p["cy"]),
            ("REMOVED", p["ann"]),
            ("REMOVED", p["cy"]),
            ("ASSIGNED", p["bob"]),
        ]
    )


async def test_the_full_reevaluation_follows_time_and_data_written_around_the_api(db) -> None:
    p = await people(db, ann="CN", bob="CN")
    recent = {"orders": {"measure": "COUNT", "op": "GTE", "value": 1, "withinDays": 30}}
    await rule(db, "recent_buyer", recent, now=NOW)
    async with db.write() as session:  # not through a write path: only the sweep can see it
        await add_order(session, p["ann"], 50, NOW - timedelta(days=10))
    assert await holders(db, "recent_buyer") == set()
    [result] = await cascade.reevaluate_rule_tags(db, NOW)
    assert (result.key, result.assigned, result.removed) == ("recent_buyer", 1, 0)
    assert await holders(db, "recent_buyer") == {p["ann"]}
    [result] = await cascade.reevaluate_rule_tags(db, NOW + timedelta(days=25))
    assert (result.assigned, result.removed) == (0, 1)  # the order is now 35 days old
    assert await holders(db, "recent_buyer") == set()
    assert await history(db, "recent_buyer") == [
        ("ASSIGNED", p["ann"], "rule", "rule:recent_buyer"),
        ("REMOVED", p["ann"], "rule", "rule:recent_buyer"),
    ]


async def test_the_tag_sweep_runs_rule_tags_and_removes_expired_assignments(db) -> None:
    p = await people(db, ann="CN", bob="US", cy="US")
    await tags.define_tag(db, TagSpec(key="trial", name="Trial", default_ttl_days=1))
    await tagging.tag_customers(db, "trial", [p["bob"]], Assignment(), "t", now=NOW)
    await rule(db, "local", CHINA, now=NOW)
    async with db.write() as session:
        await session.execute(update(Customer).where(Customer.id == p["cy"]).values(country="CN"))
    result = await tagging.sweep(db, NOW + timedelta(days=2))
    assert result.expired == 1 and [(r.key, r.assigned) for r in result.rules] == [("local", 1)]
    assert await holders(db, "local") == {p["ann"], p["cy"]}
    assert [a for a, *_ in await history(db, "trial")] == ["ASSIGNED", "EXPIRED"]


async def test_rule_tags_are_evaluated_after_the_rule_tags_they_read(db) -> None:
    p = await people(db, ann="CN", bob="US")
    await rule(db, "z_base", CHINA)
    await rule(db, "a_follower", {"tag": {"key": "z_base"}})
    assert await holders(db, "a_follower") == {p["ann"]}
    async with db.write() as session:  # both move in one full run, the base first
        await session.execute(update(Customer).values(country="US"))
        await session.execute(update(Customer).where(Customer.id == p["bob"]).values(country="CN"))
    results = await cascade.reevaluate_rule_tags(db)
    assert [r.key for r in results] == ["z_base", "a_follower"]
    assert await holders(db, "a_follower") == {p["bob"]}


async def test_manual_tagging_of_a_rule_tag_is_refused_and_writes_nothing(db) -> None:
    p = await people(db, ann="CN", bob="US")
    await rule(db, "local", CHINA)
    before = await row_counts(db)
    for call in (
        tagging.tag_customers(db, "local", [p["bob"]], Assignment(), "t"),
        tagging.untag_customers(db, "local", [p["ann"]], "t"),
    ):
        with pytest.raises(DomainError) as refused:
            await call
        assert (refused.value.code, refused.value.field) == ("RULE_TAG_READ_ONLY", ("tag",))
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("spec", "field", "code"),
    [
        (TagSpec(key="rr", name="R", kind="RULE", condition={"tag": {"key": "nope"}}),
         ("input", "condition", "tag"), "UNKNOWN_TAG"),
        (TagSpec(key="rr", name="R", kind="RULE",
                 condition={"and": [CHINA, {"stage": {"in": ["nowhere"]}}]}),
         ("input", "condition", "and", "1", "stage"), "UNKNOWN_STAGE"),
        (TagSpec(key="rr", name="R", kind="RULE",
                 condition={"metric": {"name": "RFM_SEGMENT", "op": "GT", "value": "Lost"}}),
         ("input", "condition", "metric"), "INVALID_OPERATOR"),
        (TagSpec(key="rr", name="R", kind="RULE", condition={"segment": {"key": "none"}}),
         ("input", "condition", "segment"), "UNKNOWN_SEGMENT"),
        (TagSpec(key="rr", name="R", kind="RULE", condition=CHINA, value_type="ENUM",
                 allowed_values=["a"]), ("input", "valueType"), "INVALID_INPUT"),
        (TagSpec(key="rr", name="R", kind="RULE", condition=CHINA, default_ttl_days=3),
         ("input", "defaultTtlDays"), "INVALID_INPUT"),
        (TagSpec(key="rr", name="R", condition=CHINA), ("input", "condition"), "INVALID_INPUT"),
    ],
)  # fmt: skip
async def test_bad_rule_tags_are_refused_with_the_path_and_write_nothing(
    db, spec, field, code
) -> None:
    await people(db, ann="CN")
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await tags.define_tag(db, spec)
    assert (refused.value.code, refused.value.field) == (code, field)
    assert await row_counts(db) == before


async def test_a_condition_that_reads_its_own_tag_is_a_cycle(db) -> None:
    p = await people(db, ann="CN")
    await rule(db, "base", CHINA)
    await rule(db, "follower", {"tag": {"key": "base"}})
    await segments.define_segment(
        db, segments.SegmentDraft("followers", "F", None, {"tag": {"key": "follower"}})
    )
    before = await row_counts(db)
    for condition in ({"tag": {"key": "base"}}, {"tag": {"key": "follower"}},
                      {"segment": {"key": "followers"}}):  # fmt: skip
        with pytest.raises(DomainError) as refused:
            await tags.update_tag(db, TagSpec(key="base", condition=condition))
        assert (refused.value.code, refused.value.field) == ("TAG_CYCLE", ("patch", "condition"))
    assert await row_counts(db) == before
    assert await holders(db, "follower") == {p["ann"]}


async def test_tag_changes_move_materialized_segments_and_stages_at_once(db) -> None:
    p = await people(db, ann="CN", bob="US")
    await tags.define_tag(db, TagSpec(key="vip", name="VIP"))
    await segments.define_segment(
        db, segments.SegmentDraft("vips", "VIPs", None, {"tag": {"key": "vip"}}, True)
    )
    stages = tuple(StageRecord(k, k.upper(), i, False) for i, k in enumerate("ab"))
    promote = RuleRecord("to-b", "b", 0, {"tag": {"key": "vip"}})
    await configure(db, LifecycleModelRecord(stages, (("a", "b"),), (promote,)), None, actor="t")
    async with db.write() as session:
        await session.execute(update(Customer).values(stage="a", stage_entered_at=NOW))
    await tagging.tag_customers(db, "vip", [p["ann"]], Assignment(), "t")
    async with db.read() as session:
        members = set((await session.scalars(select(SegmentMembership.customer_id))).all())
        stage = dict((await session.execute(select(Customer.id, Customer.stage))).all())
    assert members == {p["ann"]}
    assert stage == {p["ann"]: "b", p["bob"]: "a"}
    await tagging.untag_customers(db, "vip", [p["ann"]], "t")
    async with db.read() as session:
        assert (await session.scalars(select(SegmentMembership.customer_id))).all() == []


async def _expired_trial(db: Database) -> uuid.UUID:
    [bob] = (await people(db, bob="US")).values()
    await tags.define_tag(db, TagSpec(key="trial", name="Trial", default_ttl_days=1))
    await tagging.tag_customers(db, "trial", [bob], Assignment(), "t", now=NOW - timedelta(days=3))
    return bob


async def test_c360_sweep_tags_removes_expired_assignments_and_records_it(db, database_url) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    bob = await _expired_trial(db)
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["sweep-tags"], env={"DATABASE_URL": database_url}
    )
    assert result.exit_code == 0, result.output
    assert await holders(db, "trial") == set()
    assert [(a, who) for a, who, _, _ in await history(db, "trial")] == [
        ("ASSIGNED", bob),
        ("EXPIRED", bob),
    ]


async def test_serve_sweeps_tags_in_the_background_on_its_interval(db) -> None:
    bob = await _expired_trial(db)
    task = asyncio.create_task(sweep_tags_every(db, 0.2))
    try:
        for _ in range(500):  # polls the task's effect; it sleeps 0.2 s between sweeps
            await asyncio.sleep(0.01)
            if len(await history(db, "trial")) == 2:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(a, who) for a, who, _, _ in await history(db, "trial")] == [
        ("ASSIGNED", bob),
        ("EXPIRED", bob),
    ]


async def test_a_segment_change_that_would_close_a_cycle_through_a_rule_tag_is_refused(
    db,
) -> None:
    await segments.define_segment(db, segments.SegmentDraft("cn", "CN", None, CHINA))
    await rule(db, "in_cn_segment", {"segment": {"key": "cn"}})
    spec = await segments.get_segment(db, key="cn")
    closing = {"tag": {"key": "in_cn_segment", "present": False}}
    with pytest.raises(DomainError) as refused:
        await segments.update_segment(db, spec.id, segments.SegmentChanges(condition=closing))
    assert (refused.value.code, tuple(refused.value.field)) == ("TAG_CYCLE", ("condition",))
    assert (await segments.get_segment(db, key="cn")).condition == CHINA  # nothing written


async def test_reassigning_an_expired_tag_reports_its_removal_before_the_new_assignment(
    db,
) -> None:
    [li] = (await people(db, li="CN")).values()
    await tags.define_tag(db, TagSpec(key="promo", name="Promo"), now=NOW)
    await tagging.tag_customers(
        db, "promo", [li], Assignment(expires_at=NOW + timedelta(days=1)), "t", now=NOW
    )
    later = NOW + timedelta(days=2)  # expired, not yet swept
    await tagging.tag_customers(db, "promo", [li], Assignment(), "t", now=later)
    kinds = [kind for kind, customer, _ in await tag_events(db) if customer == li]
    assert kinds == ["tag.assigned", "tag.removed", "tag.assigned"]
    assert await holders(db, "promo") == {li}


async def test_a_manual_merge_and_its_undoing_keep_rule_tags_in_step(db) -> None:
    from domain.identity import merging

    found = await people(db, a="CN", b="DE")
    a, b = found["a"], found["b"]
    await rule(db, "in_china", CHINA)  # assigned to everyone matching, at once
    assert await holders(db, "in_china") == {a}
    merge = await merging.merge_customers(db, b, a, None, "admin:t")
    # b (DE) got a's assignment with the merge, and does not match: removed, with history.
    assert await holders(db, "in_china") == set()
    assert ("REMOVED", b, "rule", "rule:in_china") in await history(db, "in_china")
    await merging.unmerge(db, merge.id, "admin:t")
    assert await holders(db, "in_china") == {a}
