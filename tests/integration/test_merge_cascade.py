"""mergeCustomers, unmerge, the merges identify makes and setStage run what follows a write
(domain.cascade): right after each, the profiles' stage, materialized segments, RULE tags and
metrics follow their data."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from domain import tags
from domain.activity.metrics import metrics_of
from domain.identity import merging
from domain.lifecycle.by_hand import set_stage
from domain.segments import definitions as segments
from domain.tags import TagSpec
from store.db import Database
from store.models import Customer, SegmentMembership, TagAssignment, TagDefinition
from store.types import utcnow
from tests.integration.identity_helpers import ident
from tests.integration.lifecycle_helpers import T0, Shopper

BOUGHT = {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}}


async def derived(db: Database, segment_id: uuid.UUID) -> dict[str, object]:
    """Stages of live profiles, members of the segment, holders of the RULE tag `buyer`."""
    async with db.read() as session:
        stages = dict(
            (await session.execute(select(Customer.id, Customer.stage).where(
                Customer.status == "ACTIVE"))).all()
        )  # fmt: skip
        members = set(
            await session.scalars(
                select(SegmentMembership.customer_id).where(
                    SegmentMembership.segment_id == segment_id
                )
            )
        )
        holders = set(
            await session.scalars(
                select(TagAssignment.customer_id)
                .join(TagDefinition, TagDefinition.id == TagAssignment.tag_id)
                .where(TagDefinition.key == "buyer")
            )
        )
    return {"stages": stages, "members": members, "holders": holders}


def lately() -> int:
    """A day of the script a few days ago: merges run the rules at the wall clock."""
    return (utcnow() - T0).days - 5


async def orders_of(db: Database, *ids: uuid.UUID) -> list[int]:
    found = await metrics_of(db, list(ids))
    return [found[i].order_count if i in found else 0 for i in ids]


async def test_a_manual_merge_and_its_undoing_leave_stage_segments_rule_tags_and_metrics_right(
    db,
) -> None:
    ann, bob = Shopper(db, "ann@x.com"), Shopper(db, "bob@x.com")
    await ann.views(lately(), "page_view")
    await bob.buys(lately() + 1)
    a, b = await ann.id(), await bob.id()
    buyers = await segments.define_segment(
        db, segments.SegmentDraft("buyers", "Buyers", None, BOUGHT, materialized=True)
    )
    await tags.define_tag(db, TagSpec(key="buyer", name="Buyer", kind="RULE", condition=BOUGHT))
    before = await derived(db, buyers.id)
    assert before == {
        "stages": {a: "awareness", b: "purchase"},
        "members": {b},
        "holders": {b},
    }

    merge = await merging.merge_customers(db, a, b, None, "test")
    # Bob's order is now Ann's: she bought, at once (no sweep, no refresh).
    assert await derived(db, buyers.id) == {
        "stages": {a: "purchase"},
        "members": {a},
        "holders": {a},
    }
    assert await orders_of(db, a, b) == [1, 0]

    await merging.unmerge(db, merge.id, "test")
    # Bob has his order, stage, membership and tag back; Ann no longer holds what the order
    # gave her. Her stage stays where the rule took it: a stage is history, and no rule leads
    # back from purchase without an order.
    assert await derived(db, buyers.id) == {
        "stages": {a: "purchase", b: "purchase"},
        "members": {b},
        "holders": {b},
    }
    assert await orders_of(db, a, b) == [0, 1]


async def test_a_merge_of_two_buyers_reaches_the_stage_their_orders_together_earn(db) -> None:
    ann, bob = Shopper(db, "ann@x.com"), Shopper(db, "bob@x.com")
    await ann.buys(lately())
    await bob.buys(lately() + 1, lately() + 2)
    a, b = await ann.id(), await bob.id()
    assert (await ann.stage(), await bob.stage()) == ("purchase", "purchase")
    merge = await merging.merge_customers(db, a, b, None, "test")
    assert await ann.stage() == "loyalty"  # three orders between them
    assert await orders_of(db, a) == [3]
    await merging.unmerge(db, merge.id, "test")
    assert (await ann.stage(), await bob.stage()) == ("loyalty", "purchase")
    assert await orders_of(db, a, b) == [1, 2]


async def test_a_stage_set_by_hand_moves_segments_and_rule_tags_that_read_it_at_once(db) -> None:
    ann = Shopper(db, "ann@x.com")
    await ann.views(lately(), "page_view")
    a = await ann.id()
    in_consideration = {"stage": {"in": ["consideration"]}}
    considering = await segments.define_segment(
        db,
        segments.SegmentDraft("considering", "Considering", None, in_consideration, True),
    )
    await tags.define_tag(
        db, TagSpec(key="buyer", name="Considering", kind="RULE", condition=in_consideration)
    )
    assert await derived(db, considering.id) == {
        "stages": {a: "awareness"},
        "members": set(),
        "holders": set(),
    }

    await set_stage(db, a, "consideration", reason="called us", actor="agent")
    # No refresh, no sweep: the write itself moved what reads the stage, and no lifecycle rule
    # took the move back.
    assert await derived(db, considering.id) == {
        "stages": {a: "consideration"},
        "members": {a},
        "holders": {a},
    }


async def test_the_merge_identify_makes_leaves_stage_segments_rule_tags_and_metrics_right(
    db,
) -> None:
    ann, bob = Shopper(db, "ann@x.com"), Shopper(db, "bob@x.com")
    await ann.buys(lately())
    await bob.views(lately() + 1, "page_view")
    await ident(db, ("email", "bob@x.com"), ("phone", "13900139000"))
    a, b = await ann.id(), await bob.id()
    buyers = await segments.define_segment(
        db, segments.SegmentDraft("buyers", "Buyers", None, BOUGHT, materialized=True)
    )
    await tags.define_tag(db, TagSpec(key="buyer", name="Buyer", kind="RULE", condition=BOUGHT))
    assert await derived(db, buyers.id) == {
        "stages": {a: "purchase", b: "awareness"},
        "members": {a},
        "holders": {a},
    }

    # Ann's email with Bob's phone: identify merges Ann into Bob (a phone outranks an email).
    joined = await ident(db, ("email", "ann@x.com"), ("phone", "13900139000"))
    assert joined.customer_id == b and len(joined.merge_ids) == 1
    assert await derived(db, buyers.id) == {
        "stages": {b: "purchase"},
        "members": {b},
        "holders": {b},
    }
    assert await orders_of(db, b, a) == [1, 0]
