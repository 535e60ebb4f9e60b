"""mergeCustomers and unmerge: the same protection as identify, and an exact round trip."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from domain import profile
from domain.activity.seen import widen_seen
from domain.errors import DomainError
from domain.identity import merging
from store.db import Database
from store.models import (
    Customer,
    Event,
    Identity,
    Order,
    StageTransition,
    TagAssignment,
    TagDefinition,
)
from tests.integration.identity_helpers import ident, owners, row_counts

T0 = datetime(2025, 6, 1, tzinfo=UTC)


async def rows_of(db: Database, customer_id: uuid.UUID) -> dict[str, object]:
    """Every row a profile owns, without surrogate ids, for exact comparison."""
    async with db.read() as session:
        customer = await session.get(Customer, customer_id)
        data: dict[str, object] = {
            "customer": {
                c.name: getattr(customer, c.name)
                for c in Customer.__table__.columns
                if c.name != "version"
            }
        }
        for model, skip in (
            (Identity, {"id"}),
            (TagAssignment, {"id"}),
            (Event, {"id"}),
            (Order, {"id"}),
            (StageTransition, {"id"}),
        ):
            rows = (
                await session.scalars(select(model).where(model.customer_id == customer_id))
            ).all()
            data[model.__tablename__] = sorted(
                tuple(
                    (c.name, str(getattr(r, c.name)))
                    for c in model.__table__.columns
                    if c.name not in skip
                )
                for r in rows
            )
        return data


async def enrich(
    db: Database, customer_id: uuid.UUID, tag: uuid.UUID, value: str, at: datetime, stage: str
) -> None:
    async with db.write() as session:
        session.add(
            TagAssignment(
                customer_id=customer_id, tag_id=tag, value=value, assigned_at=at, source="t"
            )
        )
        session.add(
            Event(
                customer_id=customer_id, type="page_view", occurred_at=at, properties={"p": value}
            )
        )
        session.add(
            Order(
                customer_id=customer_id,
                external_id=f"o-{value}",
                amount=Decimal("10.50"),
                currency="CNY",
                base_amount=Decimal("10.50"),
                placed_at=at,
            )
        )
        session.add(
            StageTransition(
                customer_id=customer_id, from_stage=None, to_stage=stage, at=at, actor="t"
            )
        )
    async with db.write() as session:  # the seen window covers the activity, as the worker keeps it
        await widen_seen(session, [customer_id], at)


async def test_merge_then_unmerge_restores_every_row_of_both_profiles(db) -> None:
    a = (
        await ident(db, ("email", "keep@example.com"), traits={"city": "Beijing"}, at=T0)
    ).customer_id
    b = (
        await ident(
            db,
            ("phone", "13800138001"),
            ("device_id", "dev-1"),
            traits={"city": "Wuhan", "displayName": "B"},
            at=T0 + timedelta(days=1),
        )
    ).customer_id
    async with db.write() as session:
        shared, only_b = uuid.uuid4(), uuid.uuid4()
        session.add_all(
            [
                TagDefinition(id=shared, key="vip", name="VIP"),
                TagDefinition(id=only_b, key="new", name="New"),
            ]
        )
    await enrich(db, a, shared, "a", T0, "awareness")
    await enrich(db, b, shared, "b", T0 + timedelta(days=3), "purchase")
    async with db.write() as session:
        session.add(TagAssignment(customer_id=b, tag_id=only_b, assigned_at=T0))
    before_a, before_b = await rows_of(db, a), await rows_of(db, b)

    merge = await merging.merge_customers(db, a, b, "same person", "test")
    survivor = await profile.get_customer(db, b)
    assert survivor.id == a and survivor.city == "Wuhan" and survivor.display_name == "B"
    merged_rows = await rows_of(db, a)
    assert len(merged_rows["identities"]) == 3 and len(merged_rows["orders"]) == 2
    assert [dict(t)["value"] for t in merged_rows["tag_assignments"]].count(
        "b"
    ) == 1  # the later one won

    result = await merging.unmerge(db, merge.id, "test")
    assert (result.restored_id, result.survivor_id) == (b, a)
    after_a, after_b = await rows_of(db, a), await rows_of(db, b)
    # Every raw row is back as it was. The stage is derived: the merge ran the lifecycle rules
    # on the survivor's new data (domain.cascade), and a stage a rule moved is history that an
    # unmerge does not rewrite; the rules decide from the restored data (here, at the wall clock,
    # old activity churns). So a profile may hold transitions written since, and its stage is
    # the one its last transition reached.
    for before, after in ((before_a, after_a), (before_b, after_b)):
        for key in before:
            if key == "customer":
                changed = {k for k in before[key] if before[key][k] != after[key][k]}
                assert changed <= {"updated_at", "stage", "stage_entered_at"}, changed
            elif key == "stage_transitions":
                since = [row for row in after[key] if row not in before[key]]
                assert len(after[key]) == len(before[key]) + len(since), key
                assert all(dict(row)["reason"].startswith("rule ") for row in since), since
            else:
                assert after[key] == before[key], key
    async with db.read() as session:
        for customer_id, after in ((a, after_a), (b, after_b)):
            last = await session.scalar(
                select(StageTransition.to_stage)
                .where(StageTransition.customer_id == customer_id)
                .order_by(StageTransition.at.desc(), StageTransition.id.desc())
                .limit(1)
            )
            assert after["customer"]["stage"] == last


async def test_data_arriving_after_the_merge_stays_with_the_survivor(db) -> None:
    a = (await ident(db, ("email", "s1@example.com"))).customer_id
    b = (await ident(db, ("email", "s2@example.com"))).customer_id
    merge = await merging.merge_customers(db, a, b, None, "test")
    later = await ident(db, ("email", "s2@example.com"), ("device_id", "later-device"))
    assert later.customer_id == a
    await merging.unmerge(db, merge.id, "test")
    held = await owners(db)
    assert held[("email", "s2@example.com")] == b and held[("device_id", "later-device")] == a


async def test_merging_profiles_with_different_crm_ids_is_refused_and_writes_nothing(db) -> None:
    a = (await ident(db, ("crm_id", "C-1"))).customer_id
    b = (await ident(db, ("crm_id", "C-2"))).customer_id
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await merging.merge_customers(db, a, b, None, "test")
    assert refused.value.code == "MERGE_CONFLICT"
    assert await row_counts(db) == before


async def test_merging_past_the_device_limit_is_refused(db) -> None:
    a = (await ident(db, *[("device_id", f"a-{i}") for i in range(12)])).customer_id
    b = (await ident(db, *[("device_id", f"b-{i}") for i in range(12)])).customer_id
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await merging.merge_customers(db, a, b, None, "test")
    assert refused.value.code == "IDENTITY_LIMIT"
    assert await row_counts(db) == before


async def test_merging_a_profile_with_itself_or_twice_is_refused(db) -> None:
    a = (await ident(db, ("email", "m1@example.com"))).customer_id
    b = (await ident(db, ("email", "m2@example.com"))).customer_id
    with pytest.raises(DomainError) as same:
        await merging.merge_customers(db, a, a, None, "test")
    assert same.value.code == "INVALID_MERGE"
    merge = await merging.merge_customers(db, a, b, None, "test")
    with pytest.raises(DomainError) as again:
        await merging.merge_customers(db, a, b, None, "test")  # b now resolves to a
    assert again.value.code == "INVALID_MERGE"
    await merging.unmerge(db, merge.id, "test")
    with pytest.raises(DomainError) as twice:
        await merging.unmerge(db, merge.id, "test")
    assert twice.value.code == "UNMERGE_NOT_POSSIBLE"


async def test_unmerge_is_refused_while_the_survivor_is_itself_merged_away(db) -> None:
    a = (await ident(db, ("email", "c1@example.com"))).customer_id
    b = (await ident(db, ("email", "c2@example.com"))).customer_id
    c = (await ident(db, ("email", "c3@example.com"))).customer_id
    first = await merging.merge_customers(db, b, c, None, "test")
    await merging.merge_customers(db, a, b, None, "test")
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await merging.unmerge(db, first.id, "test")
    assert refused.value.code == "UNMERGE_NOT_POSSIBLE"
    assert await row_counts(db) == before
    assert (await profile.get_customer(db, c)).id == a  # a chain of merges still resolves
