"""Erasure: what goes, what stays, and how an erased person's identities are recognized."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from domain.access.erasure import ErasurePolicy, erase_customer, identity_hash
from domain.activity import ingest as activity
from domain.errors import NotFound
from domain.identity import merging
from domain.identity.linking import identify
from domain.profile import get_customer
from store.db import Database
from store.models import (
    Customer,
    ErasedIdentity,
    Event,
    Identity,
    LifecycleRule,
    MergeRecord,
    Order,
    OutboxEvent,
    TagAssignment,
    TagDefinition,
)
from tests.builders import make_customer
from tests.integration.identity_helpers import ident, item

SALT = "test-salt"
REFUSE = ErasurePolicy(SALT)
ALLOW = ErasurePolicy(SALT, allow_reidentify=True)


async def ann(db: Database) -> uuid.UUID:
    customer = await make_customer(
        db,
        identities=[("email", "ann@example.com"), ("phone", "13800000001"), ("crm_id", "C-1")],
        tags=["vip"],
        stages=["awareness", "purchase"],
        display_name="Ann Lee",
        first_name="Ann",
        email="ann@example.com",
        phone="+8613800000001",
        birthday=date(1990, 5, 1),
        city="Hangzhou",
        country="CN",
        attributes={"shoe_size": 38},
    )
    await activity.track_events(
        db,
        [activity.EventItem(("email", "ann@example.com"), "page_view", properties={"q": "ann"})],
        region="CN",
        actor="test",
    )
    await activity.record_orders(
        db,
        [activity.OrderItem(("email", "ann@example.com"), "o-1", Decimal("99.00"), "CNY")],
        region="CN",
        actor="test",
        rates={"CNY": Decimal(1)},
    )
    async with db.write() as session:
        session.add(TagDefinition(key="nickname", name="Nickname", value_type="TEXT", pii=True))
        await session.flush()
        nickname = await session.scalar(
            select(TagDefinition.id).where(TagDefinition.key == "nickname")
        )
        session.add(TagAssignment(customer_id=customer, tag_id=nickname, value="Annie"))
    return customer


async def test_erasure_removes_pii_and_keeps_anonymous_aggregates(db: Database) -> None:
    customer = await ann(db)
    assert (await erase_customer(db, customer, "admin:ops", SALT)).customer_id == customer
    record = await get_customer(db, customer)
    assert record is not None and record.status == "ERASED"
    assert (record.display_name, record.first_name, record.email, record.phone) == (None,) * 4
    assert record.birthday is None and record.attributes == {}
    assert (record.country, record.city, record.stage) == ("CN", "Hangzhou", "purchase")
    async with db.read() as session:
        assert (
            await session.scalars(select(Identity).where(Identity.customer_id == customer))
        ).all() == []
        assert [e.properties for e in (await session.scalars(select(Event))).all()] == [{}]
        assert [o.amount for o in (await session.scalars(select(Order))).all()] == [
            Decimal("99.00")
        ]
        values = {a.value for a in (await session.scalars(select(TagAssignment))).all()}
        assert values == {None}, "PII tag values go, the tags themselves stay"
        assert len((await session.scalars(select(TagAssignment))).all()) == 2
        hashes = {
            (h.type, h.value_hash) for h in (await session.scalars(select(ErasedIdentity))).all()
        }
        kinds = [e.kind for e in (await session.scalars(select(OutboxEvent))).all()]
    assert ("email", identity_hash(SALT, "email", "ann@example.com")) in hashes
    assert len(hashes) == 3 and "ann@example.com" not in str(hashes)
    assert "customer.erased" in kinds


async def test_an_erased_identity_is_refused_unless_reidentification_is_allowed(
    db: Database,
) -> None:
    customer = await ann(db)
    await erase_customer(db, customer, "admin:ops", SALT)
    refused = await identify(
        db, item(("email", "Ann@Example.com")), region="CN", actor="t", erased=REFUSE
    )
    assert refused.customer_id is None
    assert [e.code for e in refused.errors] == ["ERASED_IDENTITY"]
    ingest = await activity.track_events(
        db,
        [activity.EventItem(("phone", "13800000001"), "page_view")],
        region="CN",
        actor="t",
        erased=REFUSE,
    )
    assert [e.code for e in ingest.errors] == ["ERASED_IDENTITY"] and ingest.accepted == 0

    fresh = await identify(
        db, item(("email", "ann@example.com")), region="CN", actor="t", erased=ALLOW
    )
    assert fresh.created and fresh.customer_id not in (None, customer)
    again = await identify(
        db, item(("email", "ann@example.com")), region="CN", actor="t", erased=REFUSE
    )
    assert again.customer_id == fresh.customer_id, "held by a live profile again: not erased"


async def test_another_salt_does_not_recognize_the_identity(db: Database) -> None:
    customer = await ann(db)
    await erase_customer(db, customer, None, SALT)
    other = await identify(
        db, item(("email", "ann@example.com")), region="CN", actor="t", erased=ErasurePolicy("x")
    )
    assert other.created


async def test_erasing_a_survivor_scrubs_what_was_merged_into_it(db: Database) -> None:
    first = (
        await ident(db, ("email", "ann@example.com"), traits={"displayName": "Ann"})
    ).customer_id
    second = (await ident(db, ("phone", "13800000001"), traits={"firstName": "A"})).customer_id
    assert first and second
    view = await merging.merge_customers(db, first, second, "same person", "test")
    assert (await erase_customer(db, second, None, SALT)).customer_id == first, (
        "a merged-away id stands for its survivor"
    )
    async with db.read() as session:
        loser = await session.get(Customer, second)
        merge = await session.get(MergeRecord, view.id)
    assert loser is not None and loser.first_name is None and loser.phone is None
    assert merge is not None and merge.snapshot == {}


async def test_erasing_twice_changes_nothing_and_unknown_ids_are_not_found(db: Database) -> None:
    customer = await ann(db)
    await erase_customer(db, customer, None, SALT)
    assert (await erase_customer(db, customer, None, SALT)).customer_id == customer
    with pytest.raises(NotFound):
        await erase_customer(db, uuid.uuid4(), None, SALT)


async def test_rule_tags_and_lifecycle_rules_naming_the_person_are_reported_and_redacted(
    db: Database,
) -> None:
    customer = await ann(db)
    names_ann = {"attribute": {"field": "email", "op": "EQ", "value": "ann@example.com"}}
    elsewhere = {"attribute": {"field": "city", "op": "EQ", "value": "Hangzhou"}}
    async with db.write() as session:
        session.add(TagDefinition(key="ann_rule", name="Ann", kind="RULE", condition=names_ann))
        session.add(TagDefinition(key="city_rule", name="City", kind="RULE", condition=elsewhere))
        session.add(
            LifecycleRule(
                key="ann_wins", to_stage="purchase", condition={"not": {"or": [names_ann]}}
            )
        )
    erased = await erase_customer(db, customer, None, SALT)
    reported = {(c.owner.value, c.key, c.redacted) for c in erased.conditions}
    assert reported == {("TAG", "ann_rule", True), ("LIFECYCLE_RULE", "ann_wins", True)}
    async with db.read() as session:
        tag = await session.scalar(select(TagDefinition).where(TagDefinition.key == "ann_rule"))
        rule = await session.get(LifecycleRule, "ann_wins")
    assert tag is not None and rule is not None
    assert tag.condition == {"attribute": {"field": "email", "op": "EQ", "value": "[erased]"}}
    assert "ann@example.com" not in str(rule.condition)
    again = await erase_customer(db, customer, None, SALT)
    assert again.conditions == (), "a second erasure has nothing left to report"
