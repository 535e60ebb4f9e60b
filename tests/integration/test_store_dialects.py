"""The store's per-dialect functions mean the same on SQLite and PostgreSQL: the domain builds
one statement with them and never asks which backend it runs on."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from sqlalchemy import Float, String, func, literal, select, union_all

from store.bulk_rows import move_rows
from store.db import Database
from store.locking import (
    hold_identities,
    hold_lifecycle_model,
    hold_rule_tags,
    identity_lock_key,
    skip_locked,
)
from store.models import Identity
from store.sqlfuncs import (
    days_between,
    days_since,
    greatest,
    json_object,
    least,
    medians,
    new_uuid,
    pair_in,
    totals_by,
)
from store.types import UTCDateTime, utcnow
from tests.builders import make_customer


async def test_days_since_and_between_count_fractional_days(db: Database) -> None:
    now = utcnow()
    then = literal(now - timedelta(days=2, hours=12), UTCDateTime())
    async with db.read() as session:
        since = (await session.execute(select(days_since(session, then, now)))).scalar_one()
        between = (
            await session.execute(select(days_between(session, then, literal(now, UTCDateTime()))))
        ).scalar_one()
    assert abs(since - 2.5) < 1e-6
    assert abs(between - 2.5) < 1e-6


async def test_new_uuid_makes_distinct_uuids(db: Database) -> None:
    async with db.read() as session:
        made = (await session.execute(select(new_uuid(session), new_uuid(session)))).one()
    first, second = (uuid.UUID(str(value)) for value in made)
    assert first != second


async def test_json_object_builds_an_object(db: Database) -> None:
    async with db.read() as session:
        made = (
            await session.execute(select(json_object(session, a=literal("x"), b=literal(2))))
        ).scalar_one()
    assert (json.loads(made) if isinstance(made, str) else made) == {"a": "x", "b": 2}


async def test_pair_in_matches_whole_pairs_only(db: Database) -> None:
    await make_customer(db, identities=[("email", "a@example.com"), ("phone", "13800138000")])
    pairs = [("email", "a@example.com"), ("phone", "a@example.com"), ("email", "none@x.com")]
    async with db.read() as session:
        found = await session.execute(
            select(Identity.type, Identity.value).where(
                pair_in(session, Identity.type, Identity.value, pairs)
            )
        )
    assert set(found) == {("email", "a@example.com")}


async def test_move_rows_moves_each_owners_rows_and_names_their_old_owner(db: Database) -> None:
    a = await make_customer(db, identities=[("email", "a1@example.com"), ("email", "a2@x.com")])
    b = await make_customer(db, identities=[("email", "b@example.com")])
    c = await make_customer(db, identities=[("email", "c@example.com")])
    async with db.write() as session:
        moved = await move_rows(
            session,
            Identity.__table__,
            "customer_id",
            {a: {"customer_id": c, "source": "from a"}, b: {"customer_id": c, "source": "from b"}},
        )
        held = await session.execute(select(Identity.id, Identity.customer_id, Identity.source))
        rows = {row_id: (owner, source) for row_id, owner, source in held}
    assert sorted(old for _, old in moved) == sorted([a, a, b])
    for row_id, old in moved:
        assert rows[row_id] == (c, "from a" if old == a else "from b")
    assert [owner for owner, _ in rows.values()] == [c] * 4


async def test_medians_average_the_two_middle_values_of_an_even_count(db: Database) -> None:
    rows = [("a", 1.0), ("a", 2.0), ("a", 10.0), ("b", 1.0), ("b", 3.0), ("b", 4.0), ("b", 9.0)]
    source = union_all(
        *(select(literal(g).label("g"), literal(v, Float).label("v")) for g, v in rows)
    ).subquery()
    async with db.read() as session:
        found = await session.execute(medians(session, source, "g", "v"))
    assert {g: float(m) for g, m in found} == {"a": 2.0, "b": 3.5}


async def test_locks_are_taken_and_held_to_the_end_of_the_transaction(db: Database) -> None:
    async with db.write() as session:
        await hold_lifecycle_model(session, exclusive=False)
        await hold_rule_tags(session)
        await hold_identities(session, [("email", "a@example.com"), ("email", "b@example.com")])
        await hold_identities(session, [])
        claim = select(Identity.id).order_by(Identity.id)
        assert (await session.execute(skip_locked(session, claim))).all() == []


def test_identity_lock_keys_are_64_bit_and_tell_kind_from_value() -> None:
    key = identity_lock_key("email", "a@example.com")
    assert -(2**63) <= key < 2**63
    assert key != identity_lock_key("emaila", "@example.com")
    assert key == identity_lock_key("email", "a@example.com")


async def test_least_and_greatest_pick_across_values_and_skip_nulls(db: Database) -> None:
    nothing = literal(None, Float())
    async with db.read() as session:
        found = (
            await session.execute(
                select(
                    least(session, literal(3.0), literal(1.0), literal(2.0)),
                    greatest(session, literal(3.0), literal(1.0), literal(2.0)),
                    least(session, nothing, literal(2.0)),
                    greatest(session, literal(2.0), nothing),
                )
            )
        ).one()
    assert tuple(found) == (1.0, 3.0, 2.0, 2.0)


async def test_totals_by_gives_each_dimensions_groups_then_the_whole(db: Database) -> None:
    rows = [("a", "x", 1), ("a", "y", 2), ("b", None, 4)]
    source = union_all(
        *(
            select(literal(k).label("k"), literal(v, String()).label("v"), literal(n).label("n"))
            for k, v, n in rows
        )
    ).subquery()
    measures = [func.count(source.c.n), func.sum(source.c.n)]
    async with db.read() as session:
        found = (await session.execute(totals_by(session, source, ["k", "v"], measures))).all()
    assert sorted(found, key=repr) == sorted(
        [("k", "a", 2, 3), ("k", "b", 1, 4), ("v", "x", 1, 1), ("v", "y", 1, 2),
         ("v", None, 1, 4), (None, None, 3, 7)],
        key=repr,
    )  # fmt: skip
