"""Shared identifiers and placeholders: what names nobody, or too many people, links no one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from domain.errors import InvalidInput
from domain.identity.normalize import normalize
from domain.identity.shared import list_shared
from domain.identity.types import (
    EMAIL_PLACEHOLDERS,
    PHONE_PLACEHOLDERS,
    IdentityTypeSpec,
    define_identity_type,
    list_identity_types,
)
from store.db import Database
from store.models import Customer, MergeRecord
from tests.integration.identity_helpers import batch, ident, item, owners

KIOSK = ("device_id", "kiosk-store-7")


async def live_profiles(db: Database) -> int:
    async with db.read() as session:
        found = await session.scalars(select(Customer.id).where(Customer.status == "ACTIVE"))
        return len(found.all())


async def test_a_kiosk_seen_with_thirty_strangers_glues_none_of_them(db) -> None:
    results = [await ident(db, KIOSK, ("email", f"shopper{i}@x.com")) for i in range(30)]
    held = await owners(db)
    # The first shopper keeps the kiosk; each of the 29 others has a profile of their own.
    assert len({held[("email", f"shopper{i}@x.com")] for i in range(30)}) == 30
    assert held[KIOSK] == held[("email", "shopper0@x.com")]
    assert await live_profiles(db) == 30
    assert [e.code for e in results[1].errors] == ["SHARED_IDENTIFIER"]
    assert results[1].errors[0].field == ("identities", "0", "value")
    assert all([e.code for e in r.errors] == ["SHARED_IDENTIFIER"] for r in results[1:])
    async with db.read() as session:
        assert (await session.scalars(select(MergeRecord.id))).all() == []
    shared = await list_shared(db, "device_id", 10)
    assert [(s.type, s.value, s.customer_id) for s in shared] == [
        (*KIOSK, held[("email", "shopper0@x.com")])
    ]


async def test_a_shared_identifier_alone_lands_nowhere_and_never_merges(db) -> None:
    first = await ident(db, KIOSK, ("email", "ann@x.com"))
    await ident(db, KIOSK, ("email", "bob@x.com"))  # found shared here
    alone = await ident(db, KIOSK)
    assert alone.customer_id is None
    assert [e.code for e in alone.errors] == ["SHARED_IDENTIFIER"]
    # Ann, who holds it, is not split, and it takes Bob's profile nowhere near hers.
    rejoin = await ident(db, KIOSK, ("email", "bob@x.com"))
    assert rejoin.merge_ids == () and rejoin.customer_id != first.customer_id
    back = await ident(db, KIOSK, ("email", "ann@x.com"))
    assert back.customer_id == first.customer_id
    assert [e.code for e in back.errors] == ["SHARED_IDENTIFIER"]
    assert (await owners(db))[KIOSK] == first.customer_id


async def test_a_device_would_merge_two_profiles_with_their_own_emails_is_shared(db) -> None:
    ann = await ident(db, KIOSK, ("email", "ann@x.com"))
    bob = await ident(db, ("email", "bob@x.com"))
    joined = await ident(db, ("email", "bob@x.com"), KIOSK)
    assert joined.customer_id == bob.customer_id and joined.merge_ids == ()
    assert [e.code for e in joined.errors] == ["SHARED_IDENTIFIER"]
    assert (await owners(db))[KIOSK] == ann.customer_id


async def test_one_person_coming_back_to_their_device_still_links(db) -> None:
    """Below the limit a device links as before: alone, or with what its holder holds."""
    first = await ident(
        db, ("device_id", "my-phone"), ("email", "ann@x.com"), ("phone", "13900139000")
    )
    alone = await ident(db, ("device_id", "my-phone"))
    again = await ident(db, ("device_id", "my-phone"), ("phone", "13900139000"))
    assert first.customer_id == alone.customer_id == again.customer_id
    assert alone.errors == () and again.errors == ()
    assert await list_shared(db, None, 10) == []


async def test_a_device_joining_a_second_persons_identifier_of_another_type_is_shared(db) -> None:
    """Ann's email, then a phone nobody has seen with it: a device cannot tell a second
    identifier of Ann's from a stranger's, so it links neither (the limit counts emails,
    phones, ... together)."""
    ann = await ident(db, KIOSK, ("email", "ann@x.com"))
    bob = await ident(db, KIOSK, ("phone", "13900139000"))
    assert bob.customer_id != ann.customer_id
    assert [e.code for e in bob.errors] == ["SHARED_IDENTIFIER"]


async def test_within_one_batch_the_second_stranger_finds_the_device_shared(db) -> None:
    results = await batch(
        db,
        item(KIOSK, ("email", "ann@x.com")),
        item(KIOSK, ("email", "bob@x.com")),
        item(KIOSK, ("email", "cy@x.com")),
    )
    assert len({r.customer_id for r in results}) == 3
    assert [[e.code for e in r.errors] for r in results] == [
        [],
        ["SHARED_IDENTIFIER"],
        ["SHARED_IDENTIFIER"],
    ]
    assert len(await list_shared(db, "device_id", 10)) == 1


async def test_a_type_without_a_shared_limit_links_as_before(db) -> None:
    device = next(t for t in await list_identity_types(db) if t.key == "device_id")
    spec = IdentityTypeSpec(
        key=device.key,
        label=device.label,
        normalizer=device.normalizer,
        is_pii=device.is_pii,
        max_per_customer=device.max_per_customer,
        priority=device.priority,
        shared_limit=None,
    )
    await define_identity_type(db, spec, "CN")
    first = await ident(db, KIOSK, ("email", "ann@x.com"))
    second = await ident(db, KIOSK, ("email", "bob@x.com"))
    assert first.customer_id == second.customer_id and second.errors == ()


@pytest.mark.parametrize(
    "identity",
    [
        ("email", "null@null.com"),
        ("email", "NULL@null.com"),
        ("email", "test@shop.cn"),
        ("email", "noreply@brand.com"),
        ("email", "someone@test.com"),
        ("phone", "13800000000"),
        ("phone", "+86 188 8888 8888"),
        ("phone", "13912345678"),  # not nine in a row: a real number
        ("phone", "+8613123456789"),
    ],
)
async def test_placeholders_never_link(db, identity: tuple[str, str]) -> None:
    real = identity == ("phone", "13912345678")
    first = await ident(db, identity, ("email", "ann@x.com"))
    second = await ident(db, identity, ("email", "bob@x.com"))
    assert (first.customer_id == second.customer_id) is real
    if not real:
        assert [e.code for e in first.errors] == ["BLOCKED_IDENTITY"]
        assert first.errors[0].field == ("identities", "0", "value")


async def test_an_admin_adds_a_placeholder_pattern_and_it_is_refused_from_then_on(db) -> None:
    email = next(t for t in await list_identity_types(db) if t.key == "email")
    assert email.placeholder_patterns == EMAIL_PLACEHOLDERS
    await ident(db, ("email", "nobody@shop.cn"))
    spec = IdentityTypeSpec(
        key="email",
        label="Email",
        normalizer="email",
        priority=email.priority,
        placeholder_patterns=(*email.placeholder_patterns, r"nobody@.*"),
    )
    await define_identity_type(db, spec, "CN")
    refused = await ident(db, ("email", "Nobody@Shop.cn"))
    assert refused.customer_id is None and refused.errors[0].code == "BLOCKED_IDENTITY"


@pytest.mark.parametrize(
    ("patterns", "index"), [(["ok@.*", "(unclosed"], 1), ([""], 0), (["x" * 201], 0)]
)
async def test_a_bad_placeholder_pattern_is_refused_with_its_path(
    db, patterns: list[str], index: int
) -> None:
    spec = IdentityTypeSpec("kiosk_id", "Kiosk", "exact", placeholder_patterns=tuple(patterns))
    with pytest.raises(InvalidInput) as refused:
        await define_identity_type(db, spec, "CN")
    assert refused.value.field == ("input", "placeholderPatterns", str(index))
    assert "kiosk_id" not in {t.key for t in await list_identity_types(db)}


async def test_a_shared_limit_below_one_is_refused(db) -> None:
    spec = IdentityTypeSpec("kiosk_id", "Kiosk", "exact", shared_limit=0)
    with pytest.raises(InvalidInput) as refused:
        await define_identity_type(db, spec, "CN")
    assert refused.value.field == ("input", "sharedLimit")


def test_the_default_phone_placeholders_spare_real_numbers() -> None:
    def check(raw: str) -> str:
        return normalize("phone", raw, region="CN", placeholders=PHONE_PLACEHOLDERS)

    assert check("13800138000") == "+8613800138000"
    assert check("13800000001") == "+8613800000001"
    with pytest.raises(InvalidInput):
        check("13900000000")


async def test_strangers_at_one_kiosk_at_once_glue_none_of_them(db) -> None:
    """Concurrent identify calls naming one kiosk serialize on its advisory lock (PostgreSQL)
    or on the write transaction (SQLite): one shopper holds it, none is merged into another."""
    shoppers = [("email", f"rush{i}@x.com") for i in range(12)]
    results = await asyncio.gather(*(ident(db, KIOSK, shopper) for shopper in shoppers))
    assert len({r.customer_id for r in results}) == 12
    assert all(r.merge_ids == () for r in results)
    assert sorted(len(r.errors) for r in results) == [0] + [1] * 11
    held = await owners(db)
    assert held[KIOSK] in {held[s] for s in shoppers}
    assert await live_profiles(db) == 12
    assert len(await list_shared(db, "device_id", 10)) == 1
