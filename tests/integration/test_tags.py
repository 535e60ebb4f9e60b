"""The tag system on a real database: definitions, bulk tagging, expiry, history, merges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from domain import tags
from domain.errors import DomainError
from domain.identity import merging
from domain.tagging import bulk as tagging
from domain.tagging.bulk import Assignment
from domain.tags import TagSpec
from store.models import OutboxEvent, TagAssignment, TagHistory
from tests.builders import make_customer
from tests.integration.identity_helpers import row_counts

NOW = datetime(2026, 5, 1, tzinfo=UTC)


async def define(db, key: str, **kw) -> tags.TagDefinitionRecord:
    return await tags.define_tag(db, TagSpec(key=key, name=key.title(), **kw))


async def assigned(db, key: str) -> dict[object, str | None]:
    async with db.read() as session:
        tag = await tags.definition_by_key(db, key)
        rows = await session.execute(
            select(TagAssignment.customer_id, TagAssignment.value).where(
                TagAssignment.tag_id == tag.id
            )
        )
        return dict(rows.all())


async def history(db, customer_id) -> list[tuple[str, str | None, str | None]]:
    async with db.read() as session:
        rows = await session.execute(
            select(TagHistory.action, TagHistory.old_value, TagHistory.new_value)
            .where(TagHistory.customer_id == customer_id)
            .order_by(TagHistory.id)
        )
        return [tuple(r) for r in rows]


@pytest.mark.parametrize(
    ("spec", "field", "code"),
    [
        (TagSpec(key="Bad Key", name="x"), ("input", "key"), "INVALID_INPUT"),
        (TagSpec(key="ok_key", name=" "), ("input", "name"), "INVALID_INPUT"),
        (
            TagSpec(key="ok_key", name="x", category="Interest//x"),
            ("input", "category"),
            "INVALID_INPUT",
        ),
        (
            TagSpec(key="ok_key", name="x", value_type="ENUM"),
            ("input", "allowedValues"),
            "INVALID_INPUT",
        ),
        (
            TagSpec(key="ok_key", name="x", value_type="ENUM", allowed_values=["a", "a"]),
            ("input", "allowedValues"),
            "INVALID_INPUT",
        ),
        (
            TagSpec(key="ok_key", name="x", allowed_values=["a"]),
            ("input", "allowedValues"),
            "INVALID_INPUT",
        ),
        (TagSpec(key="ok_key", name="x", kind="RULE"), ("input", "condition"), "INVALID_INPUT"),
        (
            TagSpec(key="ok_key", name="x", default_ttl_days=0),
            ("input", "defaultTtlDays"),
            "INVALID_INPUT",
        ),
    ],
)
async def test_bad_definitions_are_refused_with_the_field(db, spec, field, code) -> None:
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await tags.define_tag(db, spec)
    assert (refused.value.field, refused.value.code) == (field, code)
    assert await row_counts(db) == before


async def test_keys_are_unique_and_categories_include_subcategories(db) -> None:
    await define(db, "sports", category="interest/sports")
    await define(db, "music", category="interest")
    await define(db, "interests_misc", category="interests")
    with pytest.raises(DomainError) as twice:
        await define(db, "sports")
    assert twice.value.code == "DUPLICATE_KEY"
    found = await tags.list_definitions(db, "interest", include_archived=False)
    assert sorted(t.key for t in found) == ["music", "sports"]


@pytest.mark.parametrize(
    ("value_type", "allowed", "good", "bad"),
    [
        ("FLAG", None, None, "yes"),
        ("ENUM", ["gold", "silver"], "gold", "bronze"),
        ("NUMBER", None, "12.5", "twelve"),
        ("TEXT", None, "likes tea", "x" * 501),
        ("DATE", None, "2026-02-28", "2026-02-30"),
    ],
)
async def test_values_are_checked_by_type(db, value_type, allowed, good, bad) -> None:
    await define(db, "typed", value_type=value_type, allowed_values=allowed)
    customer = await make_customer(db)
    assert (
        await tagging.tag_customers(db, "typed", [customer], Assignment(good), "test", now=NOW) == 1
    )
    with pytest.raises(DomainError) as refused:
        await tagging.tag_customers(db, "typed", [customer], Assignment(bad), "test", now=NOW)
    assert refused.value.code == "INVALID_TAG_VALUE"
    assert (await assigned(db, "typed"))[customer] == good


async def test_reassigning_replaces_the_value_and_history_records_each_step(db) -> None:
    await define(db, "tier", value_type="ENUM", allowed_values=["gold", "silver"])
    customer = await make_customer(db)
    for value in ("silver", "silver", "gold"):
        await tagging.tag_customers(db, "tier", [customer], Assignment(value), "admin:a", now=NOW)
    await tagging.untag_customers(db, "tier", [customer], "admin:a", now=NOW)
    assert await history(db, customer) == [
        ("ASSIGNED", None, "silver"),
        ("CHANGED", "silver", "gold"),
        ("REMOVED", "gold", None),
    ]
    async with db.read() as session:
        kinds = (await session.scalars(select(OutboxEvent.kind).order_by(OutboxEvent.id))).all()
    assert kinds.count("tag.assigned") == 3 and kinds.count("tag.removed") == 1


async def test_expired_assignments_stop_counting_at_once_and_the_sweep_records_them(db) -> None:
    tag = await define(db, "trial", default_ttl_days=7)
    customer = await make_customer(db)
    await tagging.tag_customers(
        db, "trial", [customer], Assignment(), "test", now=NOW - timedelta(days=8)
    )
    assert await tags.customer_counts(db, [tag.id]) == {}  # past its 7 days, before any sweep
    assert (await tags.assignments_of(db, [customer])) == {}
    assert await tagging.sweep_expired(db) == 1
    assert await history(db, customer) == [("ASSIGNED", None, None), ("EXPIRED", None, None)]
    assert await assigned(db, "trial") == {}


async def test_archived_tags_refuse_assignments_but_keep_history(db) -> None:
    await define(db, "old")
    customer = await make_customer(db)
    await tagging.tag_customers(db, "old", [customer], Assignment(), "test", now=NOW)
    await tags.archive_tag(db, "old")
    with pytest.raises(DomainError) as refused:
        await tagging.tag_customers(db, "old", [customer], Assignment(), "test", now=NOW)
    assert refused.value.code == "TAG_ARCHIVED"
    assert await history(db, customer) == [("ASSIGNED", None, None)]
    assert await tags.list_definitions(db, None, include_archived=False) == []
    assert [t.key for t in await tags.list_definitions(db, None, include_archived=True)] == ["old"]


async def test_value_type_cannot_change_while_assigned(db) -> None:
    await define(db, "score", value_type="NUMBER")
    customer = await make_customer(db)
    await tagging.tag_customers(db, "score", [customer], Assignment("3"), "test", now=NOW)
    with pytest.raises(DomainError) as refused:
        await tags.update_tag(db, TagSpec(key="score", value_type="TEXT"))
    assert refused.value.code == "TAG_IN_USE"
    await tagging.untag_customers(db, "score", [customer], "test", now=NOW)
    assert (await tags.update_tag(db, TagSpec(key="score", value_type="TEXT"))).value_type == "TEXT"


async def test_unknown_customers_refuse_the_whole_call(db) -> None:
    import uuid

    await define(db, "known")
    real = await make_customer(db)
    before = await row_counts(db)
    with pytest.raises(DomainError) as refused:
        await tagging.listed_targets(db, [real, uuid.uuid4()])
    assert (refused.value.code, refused.value.field) == ("NOT_FOUND", ("customers", "1"))
    assert await row_counts(db) == before


async def test_imported_tags_carry_source_and_confidence(db) -> None:
    await define(db, "likely_parent", kind="IMPORTED")
    customer = await make_customer(db)
    await tagging.tag_customers(
        db,
        "likely_parent",
        [customer],
        Assignment(source="dmp", confidence=0.8),
        "integration:x",
        now=NOW,
    )
    [record] = (await tags.assignments_of(db, [customer]))[customer]
    assert (record.source, record.confidence) == ("dmp", 0.8)
    with pytest.raises(DomainError):
        await tagging.tag_customers(
            db, "likely_parent", [customer], Assignment(confidence=1.5), "x", now=NOW
        )


async def test_bulk_tagging_costs_the_same_statements_for_10_and_10000_customers(db) -> None:
    from sqlalchemy import event, insert

    from store.models import Customer

    async with db.write() as session:
        await session.execute(
            insert(Customer), [{"created_at": NOW, "updated_at": NOW} for _ in range(10_010)]
        )
        ids = (await session.scalars(select(Customer.id))).all()
    costs = {}
    for key, chosen in (("few", ids[:10]), ("bulk", ids[10:])):
        await define(db, key)
        statements: list[str] = []
        listener = lambda *args, sink=statements: sink.append(args[2])  # noqa: E731
        event.listen(db.engine.sync_engine, "before_cursor_execute", listener)
        try:
            assert await tagging.tag_customers(
                db, key, chosen, Assignment(), "test", now=NOW
            ) == len(chosen)
        finally:
            event.remove(db.engine.sync_engine, "before_cursor_execute", listener)
        costs[key] = len([s for s in statements if not s.startswith(("BEGIN", "COMMIT"))])
    # Tagging itself is 9 statements and marking the profiles 2; then the derived-state batch
    # the harness runs (domain.derived): the claim (1), metrics (2), RULE tags (1: none), the
    # lifecycle rules (these stageless profiles enter the entry stage: two passes), segments
    # (1: none materialized), the marks cleared and looked up (3).
    assert costs["few"] == costs["bulk"] <= 32, costs
    async with db.read() as session:
        assert (
            await session.execute(select(func.count()).select_from(TagHistory))
        ).scalar_one() == 10_010


async def test_merge_keeps_the_union_and_the_latest_value_then_unmerge_gives_tags_back(db) -> None:
    await define(db, "tier", value_type="ENUM", allowed_values=["gold", "silver"])
    await define(db, "vip")
    a = await make_customer(db)
    b = await make_customer(db)
    await tagging.tag_customers(
        db, "tier", [a], Assignment("silver"), "t", now=NOW - timedelta(days=2)
    )
    await tagging.tag_customers(
        db, "tier", [b], Assignment("gold"), "t", now=NOW - timedelta(days=1)
    )
    await tagging.tag_customers(db, "vip", [b], Assignment(), "t", now=NOW)
    merge = await merging.merge_customers(db, a, b, None, "t")
    assert await assigned(db, "tier") == {a: "gold"}
    assert await assigned(db, "vip") == {a: None}
    await merging.unmerge(db, merge.id, "t")
    assert await assigned(db, "tier") == {a: "silver", b: "gold"}
    assert await assigned(db, "vip") == {b: None}
