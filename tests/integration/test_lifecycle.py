"""The lifecycle on a real database: presets walked end to end on a scripted journey with a
controllable clock, rule precedence and idempotence, setStage, reconfiguration, merges."""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import pytest
from sqlalchemy import delete, select

from domain.errors import DomainError
from domain.identity import merging
from domain.lifecycle.by_hand import set_stage
from domain.lifecycle.config import ModelRefused, apply_preset, configure
from domain.lifecycle.model import (
    LifecycleModelRecord,
    RuleRecord,
    StageRecord,
    get_model,
    history_of,
    store_model,
)
from domain.lifecycle.rules import sweep
from service.periodic import sweep_lifecycle_every
from store.models import (
    Customer,
    LifecycleEdge,
    LifecycleRule,
    LifecycleStage,
    TagDefinition,
    TagHistory,
)
from store.types import utcnow
from tests.builders import make_customer
from tests.integration.identity_helpers import ident, row_counts
from tests.integration.lifecycle_helpers import (
    T0,
    Shopper,
    day,
    stage_events,
    transition_count,
)

FUNNEL_JOURNEY = [
    (None, "awareness", None),
    ("awareness", "consideration", "browsing"),
    ("consideration", "purchase", "first-order"),
    ("purchase", "loyalty", "repeat-buyer"),
    ("loyalty", "churned", "inactive"),
    ("churned", "purchase", "win-back"),
]


async def test_a_new_profile_enters_the_first_stage_of_the_model(db) -> None:
    result = await ident(db, ("email", "new@x.com"))
    assert result.customer_id is not None
    history = (await history_of(db, [result.customer_id]))[result.customer_id]
    assert [(h.from_stage, h.to_stage, h.reason, h.rule_key) for h in history] == [
        (None, "awareness", "new profile", None)
    ]
    assert await stage_events(db) == 1


async def test_the_funnel_preset_walks_a_whole_journey(db) -> None:
    ann = Shopper(db, "ann@x.com")
    await ann.views(0)
    await ann.buys(2)
    assert await ann.stage() == "purchase"
    await ann.buys(30, 60)
    assert await ann.stage() == "loyalty"
    assert (await sweep(db, day(60 + 179))).transitions == 0  # idle, not yet for 180 days
    assert (await sweep(db, day(60 + 181))).transitions == 1
    assert (await sweep(db, day(60 + 182))).transitions == 0  # no rule fires twice
    await ann.views(300)  # browsing brings no churned customer back: only buying does
    assert await ann.stage() == "churned"
    await ann.buys(450)
    assert await ann.path() == FUNNEL_JOURNEY
    assert await stage_events(db) == len(FUNNEL_JOURNEY)


async def test_the_clm_preset_walks_a_whole_journey(db) -> None:
    await apply_preset(db, "clm", None, actor="test")
    bo = Shopper(db, "bo@x.com")
    await bo.views(0, "page_view")
    assert await bo.stage() == "acquisition"
    await bo.buys(1)
    await bo.buys(20, 40)
    assert await bo.stage() == "maturity"
    await sweep(db, day(40 + 89))
    assert await bo.stage() == "maturity"
    await sweep(db, day(40 + 91))
    assert await bo.stage() == "decline"  # a quarter without an order
    await sweep(db, day(40 + 181))
    assert await bo.stage() == "churned"
    await bo.buys(420)
    assert await bo.path() == [
        (None, "acquisition", None),
        ("acquisition", "growth", "first-order"),
        ("growth", "maturity", "steady-buyer"),
        ("maturity", "decline", "declining"),
        ("decline", "churned", "inactive"),
        ("churned", "growth", "revived"),
    ]


async def test_one_write_can_take_a_profile_through_several_stages_in_priority_order(db) -> None:
    cy = Shopper(db, "cy@x.com")
    await cy.buys(0, 0, 0)
    assert await cy.path() == [
        (None, "awareness", None),
        ("awareness", "purchase", "first-order"),  # outranks browsing, reachable
        ("purchase", "loyalty", "repeat-buyer"),
    ]


async def test_an_idle_profile_that_never_did_anything_churns_after_the_window(db) -> None:
    quiet = await make_customer(db, stage="awareness", stage_entered_at=day(0))
    assert (await sweep(db, day(179))).transitions == 0
    assert (await sweep(db, day(181))).transitions == 1
    async with db.read() as session:
        assert await session.scalar(select(Customer.stage).where(Customer.id == quiet)) == (
            "churned"
        )


async def test_the_sweep_gives_stageless_profiles_the_entry_stage_in_batches(db) -> None:
    for _ in range(5):
        await make_customer(db)
    result = await sweep(db, day(0), batch_size=2)
    assert (result.customers, result.transitions) == (5, 5)
    assert (await sweep(db, day(0), batch_size=2)).transitions == 0


async def test_set_stage_moves_along_an_edge_and_records_who_and_why(db) -> None:
    dee = Shopper(db, "dee@x.com")
    await dee.views(0, "page_view")
    change = await set_stage(
        db, await dee.id(), "consideration", reason="called us", actor="agent-7", now=day(1)
    )
    assert (change.transition.to_stage, change.transition.reason) == ("consideration", "called us")
    history = (await history_of(db, [await dee.id()]))[await dee.id()]
    assert (history[-1].actor, history[-1].rule_key) == ("agent-7", None)


@pytest.mark.parametrize(
    ("stage", "code"),
    [("loyalty", "INVALID_TRANSITION"), ("awareness", "INVALID_TRANSITION"),
     ("vip", "UNKNOWN_STAGE")],
)  # fmt: skip
async def test_set_stage_outside_the_graph_is_refused_and_writes_nothing(db, stage, code) -> None:
    eve = Shopper(db, "eve@x.com")
    await eve.views(0, "page_view")
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await set_stage(db, await eve.id(), stage, reason=None, actor="agent", now=day(1))
    assert (refused.value.code, refused.value.field) == (code, ("stage",))
    assert await row_counts(db) == before


async def test_a_forced_move_reaches_any_stage_and_says_it_was_forced(db) -> None:
    fay = Shopper(db, "fay@x.com")
    await fay.views(0, "page_view")
    change = await set_stage(
        db, await fay.id(), "loyalty", reason="VIP import", actor="admin", force=True, now=day(1)
    )
    assert change.transition.reason == "forced: VIP import"
    assert await fay.stage() == "loyalty"


async def test_a_rule_does_not_undo_a_manual_move_until_new_data_arrives(db) -> None:
    gus = Shopper(db, "gus@x.com")
    await gus.buys(0)
    await set_stage(db, await gus.id(), "churned", reason="asked to leave", actor="a", now=day(1))
    await set_stage(
        db, await gus.id(), "awareness", reason="restart", actor="a", force=True, now=day(2)
    )
    assert (await sweep(db, day(3))).transitions == 0  # first-order fired on this very order
    await gus.buys(10)
    assert await gus.stage() == "purchase"


def _model(*rules: RuleRecord, edges=(("a", "b"), ("b", "c"))) -> LifecycleModelRecord:
    stages = tuple(StageRecord(key, key.upper(), i, False) for i, key in enumerate("abc"))
    return LifecycleModelRecord(stages, tuple(edges), rules)


async def test_a_tag_change_is_new_data_for_a_rule_that_already_fired(db) -> None:
    hu = Shopper(db, "hu@x.com")
    await hu.buys(0)
    await set_stage(
        db, await hu.id(), "awareness", reason="reset", actor="a", force=True, now=day(1)
    )
    assert (await sweep(db, day(2))).transitions == 0
    tag_id = uuid.uuid4()
    async with db.write() as session:
        session.add(TagDefinition(id=tag_id, key="vip", name="VIP", category="test"))
        await session.flush()
        session.add(
            TagHistory(customer_id=await hu.id(), tag_id=tag_id, action="ASSIGNED", at=day(3))
        )
    assert (await sweep(db, day(4))).transitions == 1
    assert await hu.stage() == "purchase"


async def test_serve_sweeps_in_the_background_on_its_interval(db) -> None:
    stageless = await make_customer(db)
    task = asyncio.create_task(sweep_lifecycle_every(db, 0.01))
    try:
        for _ in range(500):  # polls the task's effect; the rules' clock is not involved
            await asyncio.sleep(0.01)
            if (await history_of(db, [stageless]))[stageless]:
                break
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [h.to_stage for h in (await history_of(db, [stageless]))[stageless]] == ["awareness"]


async def test_configure_refuses_an_invalid_model_with_every_problem_and_writes_nothing(
    db,
) -> None:
    before, model = await row_counts(db), await get_model(db)
    broken = _model(
        RuleRecord("to-a", "a", 0, {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}}),
        RuleRecord("to-x", "x", 0, {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}}),
        RuleRecord("bad", "b", 0, {"stage": {"in": ["nowhere"]}}),
        edges=(("a", "b"), ("b", "zz")),
    )
    with pytest.raises(ModelRefused) as refused:
        await configure(db, broken, None, actor="admin")
    assert {(e.code, e.field) for e in refused.value.errors} == {
        ("UNKNOWN_STAGE", ("input", "transitions", "1", "to")),
        ("UNREACHABLE_RULE", ("input", "rules", "0", "toStage")),
        ("UNKNOWN_STAGE", ("input", "rules", "1", "toStage")),
        ("UNKNOWN_STAGE", ("input", "rules", "2", "condition", "stage")),
    }
    with pytest.raises(ModelRefused) as unreachable:
        await configure(db, _model(edges=(("a", "b"),)), None, actor="admin")
    assert [(e.code, e.field) for e in unreachable.value.errors] == [
        ("UNREACHABLE_STAGE", ("input", "stages", "2"))
    ]
    assert await row_counts(db) == before and await get_model(db) == model


async def test_reconfiguring_refuses_to_strand_customers_in_a_dropped_stage(db) -> None:
    await Shopper(db, "hal@x.com").views(0)  # in consideration
    before = await row_counts(db)
    with pytest.raises(ModelRefused) as refused:
        await apply_preset(db, "clm", None, actor="admin")
    assert [(e.code, e.field) for e in refused.value.errors] == [
        ("STAGE_MAPPING_REQUIRED", ("stageMapping", "consideration"))
    ]
    assert await row_counts(db) == before


async def test_reconfiguring_with_a_mapping_moves_customers_with_history_and_events(db) -> None:
    ida = Shopper(db, "ida@x.com")
    await ida.views(0)
    events = await stage_events(db)
    model = await apply_preset(db, "clm", {"consideration": "acquisition"}, actor="admin")
    assert model.entry == "acquisition"
    assert await ida.stage() == "acquisition"
    assert (await ida.path())[-1] == ("consideration", "acquisition", None)
    assert await stage_events(db) == events + 1
    await ida.buys(5)
    assert await ida.stage() == "growth"  # the new model's rules apply at once


async def test_a_mapping_must_name_stages_that_exist(db) -> None:
    with pytest.raises(ModelRefused) as refused:
        await apply_preset(db, "clm", {"awareness": "nowhere", "ghost": "growth"}, actor="a")
    assert {(e.code, e.field) for e in refused.value.errors} == {
        ("UNKNOWN_STAGE", ("stageMapping", "awareness")),
        ("UNKNOWN_STAGE", ("stageMapping", "ghost")),
    }


async def test_a_merge_marks_the_merged_history_and_runs_the_rules_on_the_survivor(db) -> None:
    lately = (utcnow() - T0).days - 5  # the merge runs the rules at the wall clock
    old, new = Shopper(db, "old@x.com"), Shopper(db, "new@x.com")
    await old.views(lately, "page_view")
    await new.views(lately + 1)
    survivor, merged = await old.id(), await new.id()
    view = await merging.merge_customers(db, survivor, merged, "same person", "admin")
    history = (await history_of(db, [survivor]))[survivor]
    assert [(h.to_stage, h.merge_id) for h in history] == [
        ("awareness", None),
        ("awareness", view.id),
        ("consideration", view.id),
        ("consideration", None),  # the merged product view counts for the survivor at once
    ]
    assert await old.stage() == "consideration"
    assert await transition_count(db) == 4


async def test_a_merge_moves_the_survivor_at_once_by_the_merged_data(db) -> None:
    lately = (utcnow() - T0).days - 5
    old, new = Shopper(db, "o2@x.com"), Shopper(db, "n2@x.com")
    await old.views(lately, "page_view")
    await new.buys(lately + 1)
    await merging.merge_customers(db, await old.id(), await new.id(), "same", "admin")
    assert await old.stage() == "purchase"  # the merged order counts for the survivor
    assert (await sweep(db, day(lately + 2))).transitions == 0  # nothing left for the sweep


async def test_a_rule_whose_condition_no_longer_validates_is_skipped(db) -> None:
    model = await get_model(db)
    broken = RuleRecord("ghost", "consideration", 99, {"tag": {"key": "vanished"}})
    stored = LifecycleModelRecord(model.stages, model.edges, (*model.rules, broken))
    async with db.write() as session:  # stored as it was before its tag was deleted
        for table in (LifecycleRule, LifecycleEdge, LifecycleStage):
            await session.execute(delete(table))
        await store_model(session, stored)
    jo = Shopper(db, "jo@x.com")
    await jo.views(0)
    assert await jo.stage() == "consideration"
