"""Merge provenance: what joined two profiles (via) and which identifiers (linkedBy), on the
merge record and in the customer.merged event."""

from __future__ import annotations

from sqlalchemy import select

from domain import profile
from domain.identity import merging
from store.db import Database
from store.models import Identity, OutboxEvent
from tests.integration.identity_helpers import ident


async def merged_events(db: Database) -> list[dict[str, object]]:
    async with db.read() as session:
        rows = await session.scalars(
            select(OutboxEvent.payload).where(OutboxEvent.kind == "customer.merged")
        )
        return list(rows.all())


async def identity_ids(db: Database, *keys: tuple[str, str]) -> list[int]:
    async with db.read() as session:
        found = {
            (t, v): i
            for i, t, v in await session.execute(select(Identity.id, Identity.type, Identity.value))
        }
    return sorted(found[k] for k in keys)


async def test_identify_records_the_identifiers_that_joined_the_profiles(db) -> None:
    ann = await ident(db, ("email", "ann@x.com"), ("device_id", "d-1"))
    phone = await ident(db, ("phone", "13900139000"))
    joined = await ident(db, ("email", "ann@x.com"), ("phone", "13900139000"), ("crm_id", "C1"))
    (merge_id,) = joined.merge_ids
    merge = await profile.get_merge(db, merge_id)
    assert merge is not None
    assert (merge.survivor_id, merge.merged_id) == (phone.customer_id, ann.customer_id)
    assert merge.via == "identify"
    # The email and the phone led to the two profiles; the new CRM id and the device did not.
    assert merge.linked_by == await identity_ids(
        db, ("email", "ann@x.com"), ("phone", "+8613900139000")
    )
    (event,) = await merged_events(db)
    assert event["via"] == "identify" and event["linkedBy"] == ["email", "phone"]


async def test_a_manual_merge_says_manual_and_names_no_identifier(db) -> None:
    ann = await ident(db, ("email", "ann@x.com"))
    bob = await ident(db, ("email", "bob@x.com"))
    assert ann.customer_id and bob.customer_id
    merge = await merging.merge_customers(db, ann.customer_id, bob.customer_id, None, "agent")
    assert (merge.via, merge.linked_by, merge.reason) == ("manual", [], "manual merge")
    stored = await profile.get_merge(db, merge.id)
    assert stored is not None and (stored.via, stored.linked_by) == ("manual", [])
    (event,) = await merged_events(db)
    assert event["via"] == "manual" and event["linkedBy"] == []


async def test_an_accepted_duplicate_merges_via_duplicate(db) -> None:
    ann = await ident(db, ("email", "ann@x.com"))
    bob = await ident(db, ("email", "ann.typo@x.com"))
    assert ann.customer_id and bob.customer_id
    merge = await merging.merge_customers(
        db, ann.customer_id, bob.customer_id, None, "admin", via="duplicate"
    )
    stored = await profile.get_merge(db, merge.id)
    assert stored is not None and stored.via == "duplicate" and stored.reason == "duplicate merge"


async def test_linked_by_survives_the_unmerge_and_follows_the_identities(db) -> None:
    await ident(db, ("email", "ann@x.com"))
    await ident(db, ("phone", "13900139000"))
    joined = await ident(db, ("email", "ann@x.com"), ("phone", "13900139000"))
    await merging.unmerge(db, joined.merge_ids[0], "agent")
    stored = await profile.get_merge(db, joined.merge_ids[0])
    assert stored is not None and stored.undone_at is not None
    found = await profile.identities_by_id(db, stored.linked_by)
    assert sorted(r.type for r in found.values()) == ["email", "phone"]
    assert len({r.customer_id for r in found.values()}) == 2  # back on their own profiles
