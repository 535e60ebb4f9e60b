"""Tags on PostgreSQL at scale: tagCustomers by segment, and the full re-evaluation of RULE tags,
each against the same rows written by hand-written SQL in the same run.

Part 1 (bulk). A fresh database gets, by set-based SQL (generate_series), N customers (default
100,000; 90% in CN, in the funnel's stages, with metrics; one lifecycle sweep settles
their stages first). A dynamic segment
`china` (country = CN) and a TEXT tag are defined; then timed, with the statements counted:
`tagCustomers(tag, segment: china, value)` through the domain verb the resolver calls
(assignments, history, tag.assigned events, then RULE tags, lifecycle rules and materialized
segments for the profiles tagged), a second call with another value (every assignment CHANGED),
and `untagCustomers` by the segment. The baselines write the same rows by hand: a plain INSERT
... SELECT of the assignments alone, and the three INSERT ... SELECTs of assignments, history
and outbox events.

Part 2 (RULE tags). Another fresh database gets M customers (default 200,000) with countries,
cities, ages, stages and metrics. R RULE tags (default 20; attribute, custom trait, metric,
stage and compound conditions) are defined (each assigned at once), then the data of 10% of
the customers changes behind the API's back, and `c360 sweep-tags`' re-evaluation of every
RULE tag is timed; then timed again with nothing changed (the steady-state cost of the
periodic run). The baseline is the initial assignment written by hand: one INSERT ... SELECT
per tag with the same condition, into tag_assignments.

It creates and drops its own databases (`c360_bench_<random>`) on the server it is given and
never touches any other database there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import event, text

from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from domain import cascade, tags
from domain.lifecycle.rules import sweep as lifecycle_sweep
from domain.segments import definitions as segments
from domain.tagging import bulk as tagging
from domain.tagging.bulk import Assignment, InSegment
from domain.tags import TagSpec
from store.db import Database

CHINA = {"attribute": {"field": "country", "op": "EQ", "value": "CN"}}
COUNTRIES = "ARRAY['CN','CN','CN','CN','CN','CN','CN','CN','CN','US']"

LOAD = (
    """CREATE FUNCTION pg_temp.draw(salt text, n bigint, k int) RETURNS int
       LANGUAGE sql IMMUTABLE AS $$ SELECT (hashtext(salt || n) & 2147483647) % k $$""",
    f"""INSERT INTO customers (id, status, country, city, display_name, attributes, field_times,
                              created_at, updated_at, first_seen_at, last_seen_at, stage,
                              stage_entered_at, version)
       SELECT md5('c' || g)::uuid, 'ACTIVE', ({COUNTRIES})[1 + pg_temp.draw('country', g, 10)],
              (ARRAY['Shanghai','Beijing','Shenzhen','Hangzhou'])[1 + pg_temp.draw('city', g, 4)],
              'c' || g, jsonb_build_object('age', 18 + pg_temp.draw('age', g, 60)), '{{}}',
              now() - interval '400 days', now() - interval '400 days',
              now() - interval '400 days', now() - interval '400 days',
              (ARRAY['awareness','consideration','purchase','loyalty'])
                [1 + pg_temp.draw('stage', g, 4)],
              now() - interval '400 days', 1
       FROM generate_series(1, CAST(:customers AS bigint)) AS g""",
    """INSERT INTO customer_metrics (customer_id, order_count, total_spent, last_activity_at,
                                    updated_at)
       SELECT md5('c' || g)::uuid, pg_temp.draw('orders', g, 8), pg_temp.draw('spent', g, 5000),
              now() - pg_temp.draw('recency', g, 365) * interval '1 day', now()
       FROM generate_series(1, CAST(:customers AS bigint)) AS g""",
)
# 10% of the customers move country, age and spend, without a write path noticing.
CHANGE = """UPDATE customers SET country = CASE WHEN country = 'CN' THEN 'US' ELSE 'CN' END,
                   attributes = jsonb_build_object('age', 18 + (hashtext(id::text) & 63))
            WHERE (hashtext(id::text || 'change') & 2147483647) % 10 = 0;
            UPDATE customer_metrics SET total_spent = total_spent + 1500
            WHERE (hashtext(customer_id::text || 'change') & 2147483647) % 10 = 0"""


def rules(count: int) -> list[tuple[str, dict[str, Any], str]]:
    """`count` RULE tags: (key, condition, the same condition by hand over customers c and
    customer_metrics m)."""
    shapes: list[tuple[dict[str, Any], str]] = []
    for country in ("CN", "US"):
        shapes.append(
            (
                {"attribute": {"field": "country", "op": "EQ", "value": country}},
                f"c.country = '{country}'",
            )
        )
    for city in ("Shanghai", "Beijing", "Shenzhen", "Hangzhou"):
        shapes.append(
            ({"attribute": {"field": "city", "op": "EQ", "value": city}}, f"c.city = '{city}'")
        )
    for low in (18, 30, 45, 60):
        shapes.append(
            (
                {
                    "attribute": {
                        "field": "attributes.age",
                        "op": "BETWEEN",
                        "values": [low, low + 14],
                    }
                },
                f"jsonb_typeof(c.attributes->'age') = 'number' "
                f"AND (c.attributes->>'age')::float BETWEEN {low} AND {low + 14}",
            )
        )
    for spent in (1000, 2500, 4000):
        shapes.append(
            (
                {"metric": {"name": "MONETARY", "op": "GTE", "value": spent}},
                f"coalesce(m.total_spent, 0) >= {spent}",
            )
        )
    for days in (30, 90, 180):
        shapes.append(
            (
                {"metric": {"name": "RECENCY_DAYS", "op": "LTE", "value": days}},
                f"m.last_activity_at > now() - interval '{days + 1} days'",
            )
        )
    for stage in ("purchase", "loyalty"):
        shapes.append(({"stage": {"in": [stage]}}, f"c.stage = '{stage}'"))
    shapes.append(
        (
            {"and": [CHINA, {"metric": {"name": "FREQUENCY", "op": "GTE", "value": 3}}]},
            "c.country = 'CN' AND coalesce(m.order_count, 0) >= 3",
        )
    )
    shapes.append(
        (
            {
                "or": [
                    {"stage": {"in": ["loyalty"]}},
                    {"metric": {"name": "MONETARY", "op": "GTE", "value": 4500}},
                ]
            },
            "c.stage = 'loyalty' OR coalesce(m.total_spent, 0) >= 4500",
        )
    )
    return [(f"rule_{i:02d}", condition, sql) for i, (condition, sql) in enumerate(shapes[:count])]


class Statements:
    """Counts the statements an engine sends (transaction control excluded)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine.sync_engine, "before_cursor_execute", self)

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.split(None, 1)[0].upper() not in {"BEGIN", "COMMIT", "ROLLBACK"}:
            self.count += 1


async def _timed(counter: Statements, work: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    counter.count = 0
    started = time.perf_counter()
    result = await work()
    return {"seconds": time.perf_counter() - started, "statements": counter.count, "result": result}


async def _autocommit(db: Database, *statements: str) -> None:
    async with db.engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            await connection.execute(text(statement))


async def _load(db: Database, customers: int) -> dict[str, float]:
    """The population, then one lifecycle sweep so that stages are settled: the lifecycle
    rules that follow tag changes then measure their steady-state cost, not a first sweep."""
    started = time.perf_counter()
    async with db.write() as session:
        await session.execute(text("SET LOCAL synchronous_commit = off"))
        for statement in LOAD:
            await session.execute(text(statement), {"customers": customers})
    await _autocommit(db, "VACUUM ANALYZE")
    loaded = time.perf_counter()
    await lifecycle_sweep(db)
    await _autocommit(db, "VACUUM ANALYZE")
    return {"generate_s": loaded - started, "lifecycle_settle_s": time.perf_counter() - loaded}


async def _by_hand(db: Database, *statements: str, **params: Any) -> float:
    started = time.perf_counter()
    async with db.write() as session:
        for statement in statements:
            await session.execute(text(statement), params)
    return time.perf_counter() - started


HAND_ASSIGN = """INSERT INTO tag_assignments (customer_id, tag_id, value, actor, assigned_at)
  SELECT c.id, CAST(:tag AS uuid), 'spring', 'bench', now() FROM customers c
  WHERE c.status = 'ACTIVE' AND c.country = 'CN'"""
HAND_HISTORY = """INSERT INTO tag_history (customer_id, tag_id, action, new_value, actor, at)
  SELECT c.id, CAST(:tag AS uuid), 'ASSIGNED', 'spring', 'bench', now() FROM customers c
  WHERE c.status = 'ACTIVE' AND c.country = 'CN'"""
HAND_EVENTS = """INSERT INTO outbox (event_id, kind, customer_id, payload, created_at)
  SELECT gen_random_uuid(), 'tag.assigned', c.id, '{"tag": "hand", "value": "spring"}', now()
  FROM customers c WHERE c.status = 'ACTIVE' AND c.country = 'CN'"""


async def _bulk(server: Any, customers: int) -> dict[str, Any]:
    async with fresh_database(server) as db:
        load_s = await _load(db, customers)
        china = await segments.define_segment(
            db, segments.SegmentDraft("china", "China", None, CHINA)
        )
        for key in ("campaign", "hand", "hand_full"):
            await tags.define_tag(db, TagSpec(key=key, name=key, value_type="TEXT"))
        await checkpoint(server)
        counter = Statements(db)
        target = InSegment(china.id)
        tag = await _timed(
            counter,
            lambda: tagging.tag_customers(db, "campaign", target, Assignment("spring"), "bench"),
        )
        retag = await _timed(
            counter,
            lambda: tagging.tag_customers(db, "campaign", target, Assignment("summer"), "bench"),
        )
        untag = await _timed(
            counter, lambda: tagging.untag_customers(db, "campaign", target, "bench")
        )
        hand = await tags.definition_by_key(db, "hand")
        full = await tags.definition_by_key(db, "hand_full")
        assert hand is not None and full is not None
        await checkpoint(server)
        plain_s = await _by_hand(db, HAND_ASSIGN, tag=str(hand.id))
        full_s = await _by_hand(db, HAND_ASSIGN, HAND_HISTORY, HAND_EVENTS, tag=str(full.id))
        assert tag["result"] == retag["result"] == untag["result"], "affected counts differ"
        return {
            "customers": customers,
            "load_s": load_s,
            "segment_members": tag["result"],
            "tag_by_segment": tag,
            "retag_by_segment_new_value": retag,
            "untag_by_segment": untag,
            "hand_insert_select_s": plain_s,
            "hand_assign_history_events_s": full_s,
        }


async def _rules(server: Any, customers: int, count: int) -> dict[str, Any]:
    async with fresh_database(server) as db:
        load_s = await _load(db, customers)
        chosen = rules(count)
        await checkpoint(server)
        counter = Statements(db)

        async def define_all() -> int:
            for key, condition, _ in chosen:
                await tags.define_tag(
                    db, TagSpec(key=key, name=key, kind="RULE", condition=condition)
                )
            async with db.read() as session:
                return int(await session.scalar(text("SELECT count(*) FROM tag_assignments")) or 0)

        initial = await _timed(counter, define_all)
        await _autocommit(db, *CHANGE.split(";"), "VACUUM ANALYZE tag_assignments")
        await checkpoint(server)
        changed = await _timed(counter, lambda: cascade.reevaluate_rule_tags(db))
        steady = await _timed(counter, lambda: cascade.reevaluate_rule_tags(db))
        moved = {
            "assigned": sum(r.assigned for r in changed["result"]),
            "removed": sum(r.removed for r in changed["result"]),
        }
        assert not any(r.assigned or r.removed for r in steady["result"]), "steady state moved"
        # The same assignments as the definitions wrote, by hand: one INSERT ... SELECT a tag.
        hand_ids = [uuid.uuid4() for _ in chosen]
        async with db.write() as session:
            for tag_id, (key, _, _) in zip(hand_ids, chosen, strict=True):
                await session.execute(
                    text(
                        "INSERT INTO tag_definitions (id, key, name, value_type, kind, archived, "
                        "created_at, updated_at) VALUES (CAST(:id AS uuid), :key, :key, 'FLAG', "
                        "'MANUAL', false, now(), now())"
                    ),
                    {"id": str(tag_id), "key": f"hand_{key}"},
                )
        hand = [
            f"""INSERT INTO tag_assignments (customer_id, tag_id, source, assigned_at)
                SELECT c.id, CAST('{tag_id}' AS uuid), 'rule', now()
                FROM customers c LEFT JOIN customer_metrics m ON m.customer_id = c.id
                WHERE c.status = 'ACTIVE' AND ({sql})"""
            for tag_id, (_, _, sql) in zip(hand_ids, chosen, strict=True)
        ]
        await checkpoint(server)
        hand_s = await _by_hand(db, *hand)
        for entry in (changed, steady):
            entry["result"] = [
                {"key": r.key, "assigned": r.assigned, "removed": r.removed}
                for r in entry["result"]
            ]
        return {
            "customers": customers,
            "rule_tags": count,
            "load_s": load_s,
            "define_all_initial": initial,
            "reevaluate_all_after_10pct_change": changed | {"moved": moved},
            "reevaluate_all_nothing_changed": steady,
            "hand_initial_insert_select_s": hand_s,
        }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench tags", description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000, help="part 1: tag by segment")
    parser.add_argument("--rule-customers", type=int, default=200_000, help="part 2")
    parser.add_argument("--rules", type=int, default=20, help="part 2: RULE tags (at most 20)")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    server = server_url(args.database_url)
    bulk = asyncio.run(_bulk(server, args.customers))
    rule_run = asyncio.run(_rules(server, args.rule_customers, args.rules))
    table = Table(title="tags on PostgreSQL")
    for column in ("what", "seconds", "statements", "rows"):
        table.add_column(column)
    members = f"{bulk['segment_members']:,}"
    for name, label in (
        ("tag_by_segment", "tagCustomers by segment (new)"),
        ("retag_by_segment_new_value", "tagCustomers by segment (new value)"),
        ("untag_by_segment", "untagCustomers by segment"),
    ):
        r = bulk[name]
        table.add_row(label, f"{r['seconds']:.2f}", str(r["statements"]), members)
    table.add_row(
        "  by hand: INSERT ... SELECT", f"{bulk['hand_insert_select_s']:.2f}", "1", members
    )
    table.add_row(
        "  by hand: assignments + history + events",
        f"{bulk['hand_assign_history_events_s']:.2f}",
        "3",
        members,
    )
    initial = rule_run["define_all_initial"]
    changed = rule_run["reevaluate_all_after_10pct_change"]
    steady = rule_run["reevaluate_all_nothing_changed"]
    n = f"{args.rules} RULE tags, {args.rule_customers:,} customers"
    table.add_row(
        f"define {n} (initial)",
        f"{initial['seconds']:.2f}",
        str(initial["statements"]),
        f"{initial['result']:,}",
    )
    table.add_row(
        "  by hand: INSERT ... SELECT per tag",
        f"{rule_run['hand_initial_insert_select_s']:.2f}",
        str(args.rules),
        "",
    )
    table.add_row(
        f"re-evaluate {n}, 10% changed",
        f"{changed['seconds']:.2f}",
        str(changed["statements"]),
        f"+{changed['moved']['assigned']:,} -{changed['moved']['removed']:,}",
    )
    table.add_row(
        f"re-evaluate {n}, nothing changed",
        f"{steady['seconds']:.2f}",
        str(steady["statements"]),
        "0",
    )
    Console().print(table)
    write_results(
        "tags",
        {
            "args": vars(args) | {"database_url": None},
            "machine": platform.platform(),
            "bulk": bulk,
            "rules": rule_run,
        },
    )
    return 0
