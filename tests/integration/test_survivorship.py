"""Survivorship rules as data: per field, on identify and on merge; each field's source and time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.errors import InvalidInput
from domain.identity import merging
from domain.identity.editing import update_customer
from domain.identity.survivorship import (
    configure_survivorship,
    field_provenance,
    get_survivorship,
)
from domain.identity.traits import Rule
from domain.profile import get_customer
from store.db import Database
from tests.integration.identity_helpers import ident

EARLY = datetime(2025, 1, 1, tzinfo=UTC)
LATE = datetime(2025, 6, 1, tzinfo=UTC)


async def two_profiles(db: Database) -> tuple[object, object]:
    """Ann (the survivor, set early by the CRM) and Bob (set later from the web)."""
    ann = await ident(
        db,
        ("email", "ann@x.com"),
        traits={"firstName": "Ann", "city": "上海", "tier": "gold"},
        source="crm",
        at=EARLY,
    )
    bob = await ident(
        db,
        ("email", "bob@x.com"),
        traits={"firstName": "Bobby", "city": "北京", "tier": "silver", "lastName": "Wu"},
        source="web",
        at=LATE,
    )
    return ann.customer_id, bob.customer_id


async def merged_fields(db: Database, survivor, loser) -> tuple[str, str, str, str]:
    await merging.merge_customers(db, survivor, loser, None, "test")
    record = await get_customer(db, survivor)
    assert record is not None
    return record.first_name, record.city, record.attributes["tier"], record.last_name


async def test_by_default_the_value_set_last_survives_a_merge(db) -> None:
    assert (await get_survivorship(db)).default is Rule.MOST_RECENT
    ann, bob = await two_profiles(db)
    assert await merged_fields(db, ann, bob) == ("Bobby", "北京", "silver", "Wu")


async def test_survivor_wins_keeps_the_survivors_values_and_fills_its_gaps(db) -> None:
    await configure_survivorship(
        db, [("firstName", "SURVIVOR"), ("city", "SURVIVOR"), ("attributes.*", "SURVIVOR")], []
    )
    ann, bob = await two_profiles(db)
    assert await merged_fields(db, ann, bob) == ("Ann", "上海", "gold", "Wu")


async def test_most_trusted_source_wins_whatever_the_time(db) -> None:
    await configure_survivorship(
        db, [("firstName", "MOST_TRUSTED"), ("attributes.tier", "MOST_TRUSTED")], ["crm", "web"]
    )
    ann, bob = await two_profiles(db)
    # Merged into Bob this time: the CRM's older values still win over the web's.
    assert await merged_fields(db, bob, ann) == ("Ann", "北京", "gold", "Wu")


async def test_first_non_null_keeps_the_first_value_on_identify_and_on_merge(db) -> None:
    await configure_survivorship(db, [("city", "FIRST_NON_NULL")], [])
    ann, bob = await two_profiles(db)
    later = await ident(db, ("email", "ann@x.com"), traits={"city": "深圳"}, source="app")
    assert later.customer_id == ann
    assert await merged_fields(db, bob, ann) == ("Bobby", "上海", "silver", "Wu")


async def test_an_attribute_rule_beats_the_attributes_wildcard(db) -> None:
    await configure_survivorship(
        db, [("attributes.*", "SURVIVOR"), ("attributes.tier", "MOST_RECENT")], []
    )
    ann, bob = await two_profiles(db)
    assert (await merged_fields(db, ann, bob))[2] == "silver"


async def test_most_trusted_on_identify_refuses_a_less_trusted_source(db) -> None:
    await configure_survivorship(db, [("firstName", "MOST_TRUSTED")], ["crm", "web"])
    ann = await ident(db, ("email", "ann@x.com"), traits={"firstName": "Ann"}, source="crm")
    await ident(db, ("email", "ann@x.com"), traits={"firstName": "Annie"}, source="web")
    record = await get_customer(db, ann.customer_id)
    assert record is not None and record.first_name == "Ann"
    await ident(db, ("email", "ann@x.com"), traits={"firstName": "Anna"}, source="crm")
    record = await get_customer(db, ann.customer_id)
    assert record is not None and record.first_name == "Anna"


async def test_each_field_shows_its_source_and_time_through_merge_and_edit(db) -> None:
    ann, bob = await two_profiles(db)
    await merging.merge_customers(db, ann, bob, None, "test")
    found = {p.field: (p.source, p.at) for p in (await field_provenance(db, [ann]))[ann]}
    assert found["firstName"] == ("web", LATE)
    assert found["lastName"] == ("web", LATE)
    assert found["attributes.tier"] == ("web", LATE)
    edited_at = datetime(2025, 7, 1, tzinfo=UTC)
    await update_customer(db, ann, {"city": "杭州"}, "agent", now=edited_at)
    found = {p.field: (p.source, p.at) for p in (await field_provenance(db, [ann]))[ann]}
    assert found["city"] == ("updateCustomer", edited_at)


async def test_unmerge_gives_the_survivor_back_its_sources(db) -> None:
    ann, bob = await two_profiles(db)
    merge = await merging.merge_customers(db, ann, bob, None, "test")
    await merging.unmerge(db, merge.id, "test")
    found = {p.field: p.source for p in (await field_provenance(db, [ann, bob]))[ann]}
    assert found == {"attributes.tier": "crm", "city": "crm", "firstName": "crm"}


@pytest.mark.parametrize(
    ("rules", "trust", "path"),
    [
        ([("firstName", "LOUDEST")], [], ("rules", "0", "rule")),
        ([("city", "SURVIVOR"), ("shoeSize", "SURVIVOR")], [], ("rules", "1", "field")),
        ([("attributes.", "SURVIVOR")], [], ("rules", "0", "field")),
        ([("city", "SURVIVOR"), ("city", "MOST_RECENT")], [], ("rules", "1", "field")),
        ([], ["crm", "crm"], ("sourceTrust", "1")),
        ([], ["crm", ""], ("sourceTrust", "1")),
    ],
)
async def test_a_bad_configuration_is_refused_whole_with_its_path(db, rules, trust, path) -> None:
    await configure_survivorship(db, [("city", "SURVIVOR")], ["crm"])
    with pytest.raises(InvalidInput) as refused:
        await configure_survivorship(db, rules, trust)
    assert tuple(refused.value.field) == path
    policy = await get_survivorship(db)
    assert dict(policy.rules) == {"city": Rule.SURVIVOR} and dict(policy.trust) == {"crm": 1}
