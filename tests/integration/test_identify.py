"""identify / identifyBatch on a real database: create, attach, merge, protect, refuse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from domain import profile
from domain.errors import DomainError
from store.models import Customer, Identity, OutboxEvent
from tests.integration.identity_helpers import batch, ident, item, owners, row_counts

CRM = "crm_id"


async def test_new_identities_create_a_profile_and_known_ones_attach(db) -> None:
    first = await ident(db, ("email", "Ann@Example.com"), traits={"displayName": "Ann"})
    assert first.created and first.customer_id and not first.errors
    again = await ident(db, ("email", "ann@example.com"), ("phone", "13800138000"))
    assert again.customer_id == first.customer_id and not again.created
    assert await owners(db) == {
        ("email", "ann@example.com"): first.customer_id,
        ("phone", "+8613800138000"): first.customer_id,
    }
    record = await profile.get_customer(db, first.customer_id)
    assert (
        record.email == "ann@example.com"
        and record.phone == "+8613800138000"
        and record.display_name == "Ann"
    )


async def test_a_shared_phone_merges_two_profiles_into_the_higher_priority_one(db) -> None:
    by_email = await ident(db, ("email", "bo@example.com"), traits={"city": "Hangzhou"})
    by_phone = await ident(db, ("phone", "13900139000"), traits={"displayName": "Bo"})
    linked = await ident(db, ("email", "bo@example.com"), ("phone", "13900139000"))
    assert linked.customer_id == by_phone.customer_id  # phone outranks email
    assert len(linked.merge_ids) == 1
    merged = await profile.get_customer(db, by_email.customer_id)  # follows the merge
    assert merged.id == by_phone.customer_id
    assert (merged.display_name, merged.city) == ("Bo", "Hangzhou")
    async with db.read() as session:
        loser = await session.get(Customer, by_email.customer_id)
        assert (loser.status, loser.merged_into_id) == ("MERGED", by_phone.customer_id)
        kinds = (await session.scalars(select(OutboxEvent.kind).order_by(OutboxEvent.id))).all()
    assert kinds.count("customer.created") == 2 and "customer.merged" in kinds


async def test_equal_priority_keeps_the_oldest_profile(db) -> None:
    old = await ident(db, ("email", "one@example.com"))
    new = await ident(db, ("email", "two@example.com"))
    linked = await ident(db, ("email", "two@example.com"), ("email", "one@example.com"))
    assert linked.customer_id == old.customer_id != new.customer_id


async def test_a_batch_links_items_to_each_other(db) -> None:
    results = await batch(
        db,
        item(("email", "a@example.com"), ("device_id", "dev-b")),
        item(("email", "other@example.com")),
        item(("device_id", "dev-b"), ("device_id", "dev-c")),
    )
    assert results[0].customer_id == results[2].customer_id != results[1].customer_id
    assert results[0].created and not results[2].created
    held = await owners(db)
    assert held[("device_id", "dev-c")] == held[("email", "a@example.com")]


async def test_a_batch_can_merge_profiles_it_created_itself(db) -> None:
    results = await batch(
        db,
        item(("email", "x@example.com")),
        item(("phone", "13700137000")),
        item(("email", "x@example.com"), ("phone", "13700137000")),
    )
    assert len(results[2].merge_ids) == 1
    live = await profile.live_customers(db, [r.customer_id for r in results])
    assert len({record.id for record in live.values()}) == 1
    assert len(set((await owners(db)).values())) == 1


async def test_unknown_type_refuses_the_whole_input_and_writes_nothing(db) -> None:
    before = await row_counts(db)
    result = await ident(db, ("email", "ok@example.com"), ("fax", "123"))
    assert result.customer_id is None
    assert [(e.code, e.field) for e in result.errors] == [
        ("UNKNOWN_IDENTITY_TYPE", ("identities", "1", "type"))
    ]
    assert await row_counts(db) == before


async def test_invalid_value_refuses_the_whole_input_and_writes_nothing(db) -> None:
    before = await row_counts(db)
    result = await ident(db, ("email", "ok@example.com"), ("phone", "12345"))
    assert [(e.code, e.field) for e in result.errors] == [
        ("INVALID_IDENTITY", ("identities", "1", "value"))
    ]
    assert await row_counts(db) == before


async def test_invalid_traits_refuse_the_input_and_write_nothing(db) -> None:
    before = await row_counts(db)
    result = await ident(db, ("email", "ok@example.com"), traits={"birthday": "23/04/1990"})
    assert [(e.code, e.field) for e in result.errors] == [("INVALID_INPUT", ("traits", "birthday"))]
    assert await row_counts(db) == before


async def test_blocked_values_are_ignored_and_reported_while_the_rest_lands(db) -> None:
    result = await ident(
        db,
        ("email", "test@test.com"),
        ("phone", "13600136000"),
        ("device_id", "00000000-0000-0000-0000-000000000000"),
    )
    assert result.created
    assert [(e.code, e.field) for e in result.errors] == [
        ("BLOCKED_IDENTITY", ("identities", "0", "value")),
        ("BLOCKED_IDENTITY", ("identities", "2", "value")),
    ]
    assert set(await owners(db)) == {("phone", "+8613600136000")}


async def test_an_input_with_only_blocked_values_writes_nothing(db) -> None:
    before = await row_counts(db)
    result = await ident(
        db,
        ("email", "noemail@example.com"),
        ("wechat_openid", "undefined"),
        ("phone", "88888888888"),
    )
    assert result.customer_id is None and {e.code for e in result.errors} == {"BLOCKED_IDENTITY"}
    assert await row_counts(db) == before


async def test_family_phone_with_a_members_crm_id_lands_on_the_member(db) -> None:
    mother = await ident(db, (CRM, "CRM-MOTHER"), ("phone", "13500135000"))
    visit = await ident(db, ("phone", "13500135000"), (CRM, "CRM-SON"))
    assert visit.created and visit.customer_id != mother.customer_id
    assert [(e.code, e.field) for e in visit.errors] == [
        ("MERGE_CONFLICT", ("identities", "0", "value"))
    ]
    assert "phone" in visit.errors[0].message
    held = await owners(db)
    assert held[("phone", "+8613500135000")] == mother.customer_id
    assert held[(CRM, "CRM-SON")] == visit.customer_id


async def test_two_profiles_with_different_unique_ids_are_never_merged(db) -> None:
    a = await ident(db, (CRM, "CRM-A"), ("email", "a@example.com"))
    b = await ident(db, (CRM, "CRM-B"), ("email", "b@example.com"))
    result = await ident(db, ("email", "a@example.com"), ("email", "b@example.com"))
    assert result.customer_id == a.customer_id and not result.merge_ids
    assert [e.code for e in result.errors] == ["MERGE_CONFLICT"]
    assert (await owners(db))[("email", "b@example.com")] == b.customer_id


async def test_max_per_customer_is_never_passed(db) -> None:
    devices = [("device_id", f"dev-{i}") for i in range(20)]
    full = await ident(db, ("email", "many@example.com"), *devices)
    assert not full.errors
    before = await row_counts(db)
    result = await ident(db, ("email", "many@example.com"), ("device_id", "dev-20"))
    assert result.customer_id == full.customer_id
    assert [(e.code, e.field) for e in result.errors] == [
        ("IDENTITY_LIMIT", ("identities", "1", "value"))
    ]
    after = await row_counts(db)
    assert after["identities"] == before["identities"]


async def test_survivorship_newer_beats_older_and_non_empty_beats_empty(db) -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    first = await ident(
        db,
        ("email", "s@example.com"),
        traits={"city": "Beijing", "tier": "gold"},
        at=t0 + timedelta(days=2),
    )
    await ident(
        db, ("email", "s@example.com"), traits={"city": "Xi'an", "displayName": "S"}, at=t0
    )  # older
    await ident(db, ("email", "s@example.com"), traits={"city": "", "tier": None})  # empty
    record = await profile.get_customer(db, first.customer_id)
    assert (record.city, record.display_name, record.attributes) == (
        "Beijing",
        "S",
        {"tier": "gold"},
    )
    assert record.first_seen_at == t0 and record.last_seen_at > t0 + timedelta(days=2)


async def test_identity_first_and_last_seen_are_kept(db) -> None:
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    await ident(db, ("email", "seen@example.com"), at=t0)
    await ident(db, ("email", "seen@example.com"), at=t0 + timedelta(days=5))
    async with db.read() as session:
        row = await session.scalar(select(Identity).where(Identity.value == "seen@example.com"))
    assert (row.first_seen_at, row.last_seen_at) == (t0, t0 + timedelta(days=5))


async def test_replaying_an_idempotency_key_returns_the_first_answer_and_writes_nothing(db) -> None:
    items = [item(("email", "i1@example.com")), item(("email", "i2@example.com"), ("phone", "12"))]
    first = await batch(db, *items, key="import-7")
    before = await row_counts(db)
    again = await batch(db, *items, key="import-7")
    assert [(r.customer_id, r.created, [e.code for e in r.errors]) for r in again] == [
        (r.customer_id, r.created, [e.code for e in r.errors]) for r in first
    ]
    assert await row_counts(db) == before


async def test_reusing_an_idempotency_key_for_other_inputs_is_refused(db) -> None:
    await batch(db, item(("email", "k1@example.com")), key="import-8")
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await batch(db, item(("email", "k2@example.com")), key="import-8")
    assert refused.value.code == "IDEMPOTENCY_KEY_REUSED"
    assert await row_counts(db) == before


async def test_concurrent_calls_with_one_key_do_the_work_once(db) -> None:
    import asyncio

    items = [item(("email", f"c{i}@example.com")) for i in range(20)]
    answers = await asyncio.gather(*(batch(db, *items, key="import-9") for _ in range(4)))
    assert all([r.customer_id for r in a] == [r.customer_id for r in answers[0]] for a in answers)
    assert (await row_counts(db))["customers"] == 20


async def test_identify_derives_a_display_name_from_first_and_last_names(db) -> None:
    made = await ident(
        db, ("email", "wang@example.com"), traits={"firstName": "小明", "lastName": "王"}
    )
    assert (await profile.get_customer(db, made.customer_id)).display_name == "王小明"
    await ident(db, ("email", "wang@example.com"), traits={"firstName": "小红"})
    assert (await profile.get_customer(db, made.customer_id)).display_name == "王小红"
