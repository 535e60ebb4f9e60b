"""Segment evaluation on PostgreSQL at scale: our compiled SQL against the same question written
by hand, in the same run.

A fresh database gets, by set-based SQL (generate_series), N customers (default 1,000,000; 2%
merged away), 10 events and 2 orders per customer on average (10,000,000 and 2,000,000),
uniformly over the last year and two years, a `vip` tag on 20% (a fifth of those expired),
an email on 70% and the metrics derived from the orders and events. Secondary indexes are
dropped during the load and rebuilt after it, then the database is vacuumed and analyzed.

The question, six leaves (attribute + tag + stage + event window + order sum + NOT segment):

    country is CN, holds vip, stage purchase or loyalty, a page_view in the last 30 days,
    completed orders of at least 500 in the last 365 days, and not in `lapsed`
    (RECENCY_DAYS > 90)

timed twice: with `lapsed` dynamic (inlined) and materialized (its stored members). Each time
our compiled count statement runs alternately with the same question written by hand in its two
usual shapes (the spend as a grouped IN subquery, or as a correlated sum), REPEAT times each;
medians are reported, the ratio is against the faster hand-written shape, and every count must
agree. Also timed: the count end to end through the domain (Segment.memberCount: catalog,
validation, compilation, count), the first page of 50 members (oldest first, as Segment.members
serves it) and materializing `lapsed` (members, history and change events written).

It creates and drops its own database (`c360_bench_<random>`) on the server it is given and
never touches any other database there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from domain import profile
from domain.pagination import PageRequest
from domain.segments import definitions as segments
from store.db import Database
from store.models import Customer

TARGET_RATIO = 1.2
TABLES = ("customers", "identities", "tag_assignments", "events", "orders")
LAPSED = {"metric": {"name": "RECENCY_DAYS", "op": "GT", "value": 90}}


def question(lapsed_key: str) -> dict[str, Any]:
    return {
        "and": [
            {"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
            {"tag": {"key": "vip"}},
            {"stage": {"in": ["purchase", "loyalty"]}},
            {"event": {"type": "page_view", "withinDays": 30}},
            {"orders": {"measure": "SUM", "op": "GTE", "value": 500, "withinDays": 365}},
            {"segment": {"key": lapsed_key, "member": False}},
        ]
    }


# The same question as a person would write it, with the spend written the two usual ways: a
# grouped IN subquery, or a correlated sum. The faster of the two is the baseline.
HAND_WRITTEN = """
SELECT count(*) FROM customers c {join}
WHERE c.status = 'ACTIVE' AND c.country = 'CN' AND c.stage IN ('purchase', 'loyalty')
  AND EXISTS (SELECT 1 FROM tag_assignments t
              WHERE t.customer_id = c.id AND t.tag_id = :vip
                AND (t.expires_at IS NULL OR t.expires_at > :now))
  AND EXISTS (SELECT 1 FROM events e
              WHERE e.customer_id = c.id AND e.type = 'page_view' AND e.occurred_at >= :month)
  AND {spend}
  AND {not_lapsed}
"""
# Spend is net of refunds (domain.activity.metrics.order_value), as totalSpent is.
NET = """CASE WHEN o.status = 'completed' THEN o.base_amount
              WHEN o.status = 'refunded' THEN -abs(o.base_amount) ELSE 0 END"""
SPEND = {
    "grouped": f"""c.id IN (SELECT o.customer_id FROM orders o
               WHERE o.placed_at >= :year
               GROUP BY o.customer_id HAVING sum({NET}) >= 500)""",
    "correlated": f"""(SELECT coalesce(sum({NET}), 0) FROM orders o
       WHERE o.customer_id = c.id AND o.placed_at >= :year) >= 500""",
}
# Six leaves, two of them on event properties: viewed a sports item on the app in the last 30
# days, and put an item of 100 or more in the cart in the last 90.
PROPS = {
    "and": [
        {"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
        {"tag": {"key": "vip"}},
        {"stage": {"in": ["purchase", "loyalty"]}},
        {
            "event": {
                "type": "product_view",
                "channel": "app",
                "withinDays": 30,
                "where": [{"property": "category", "op": "EQ", "value": "sports"}],
            }
        },
        {
            "event": {
                "type": "add_to_cart",
                "withinDays": 90,
                "where": [{"property": "price", "op": "GTE", "value": 100}],
            }
        },
        {"orders": {"measure": "SUM", "op": "GTE", "value": 500, "withinDays": 365}},
    ]
}
HAND_PROPS = """
SELECT count(*) FROM customers c
WHERE c.status = 'ACTIVE' AND c.country = 'CN' AND c.stage IN ('purchase', 'loyalty')
  AND EXISTS (SELECT 1 FROM tag_assignments t
              WHERE t.customer_id = c.id AND t.tag_id = :vip
                AND (t.expires_at IS NULL OR t.expires_at > :now))
  AND EXISTS (SELECT 1 FROM events e
              WHERE e.customer_id = c.id AND e.type = 'product_view' AND e.channel = 'app'
                AND e.occurred_at >= :month AND e.properties @> '{{"category": "sports"}}')
  AND EXISTS (SELECT 1 FROM events e
              WHERE e.customer_id = c.id AND e.type = 'add_to_cart'
                AND e.occurred_at >= :quarter
                AND jsonb_typeof(e.properties -> 'price') = 'number'
                AND (e.properties ->> 'price')::numeric >= 100)
  AND {spend}
"""
NOT_LAPSED_DYNAMIC = "(m.last_activity_at IS NULL OR m.last_activity_at > :lapsed)"
NOT_LAPSED_STORED = """NOT EXISTS (SELECT 1 FROM segment_memberships s
                    WHERE s.segment_id = :segment AND s.customer_id = c.id)"""
HAND_PAGE = (
    HAND_WRITTEN.replace("SELECT count(*)", "SELECT c.id, c.display_name, c.created_at")
    + " ORDER BY c.created_at, c.id LIMIT 51"
)

LOAD = (
    # draw(salt, n, k): customer n's own 0..k-1 for one property, independent of the others.
    """CREATE FUNCTION pg_temp.draw(salt text, n bigint, k int) RETURNS int
       LANGUAGE sql IMMUTABLE AS $$ SELECT (hashtext(salt || n) & 2147483647) % k $$""",
    """INSERT INTO customers (id, status, country, city, display_name, attributes, field_times,
                             created_at, updated_at, first_seen_at, last_seen_at, stage,
                             stage_entered_at, version)
       SELECT md5('c' || g)::uuid, CASE WHEN g % 50 = 0 THEN 'MERGED' ELSE 'ACTIVE' END,
              (ARRAY['CN','CN','CN','CN','CN','US','DE','GB','JP','SG'])
                [1 + pg_temp.draw('country', g, 10)],
              (ARRAY['Shanghai','Beijing','Shenzhen','Hangzhou'])[1 + pg_temp.draw('city', g, 4)],
              'c' || g,
              jsonb_build_object('age', 18 + pg_temp.draw('age', g, 60)), '{}', t, t, t, t,
              (ARRAY['awareness','consideration','purchase','loyalty','churned'])
                [1 + pg_temp.draw('stage', g, 5)],
              now() - pg_temp.draw('entered', g, 400) * interval '1 day', 1
       FROM (SELECT g, now() - pg_temp.draw('created', g, 730) * interval '1 day' AS t
             FROM generate_series(1, CAST(:customers AS bigint)) AS g) AS generated""",
    """INSERT INTO tag_definitions (id, key, name, value_type, kind, archived, created_at,
                                   updated_at)
       VALUES (CAST(:vip AS uuid), 'vip', 'VIP', 'FLAG', 'MANUAL', false, now(), now())""",
    """INSERT INTO tag_assignments (customer_id, tag_id, source, assigned_at, expires_at)
       SELECT md5('c' || g)::uuid, CAST(:vip AS uuid), 'bench', now(),
              CASE WHEN pg_temp.draw('expired', g, 5) = 0 THEN now() - interval '1 day' END
       FROM generate_series(1, CAST(:customers AS bigint)) AS g
       WHERE pg_temp.draw('vip', g, 5) = 0""",
    """INSERT INTO identities (customer_id, type, value, source, verified, first_seen_at,
                              last_seen_at)
       SELECT md5('c' || g)::uuid, 'email', 'c' || g || '@example.com', 'bench', false, now(),
              now()
       FROM generate_series(1, CAST(:customers AS bigint)) AS g
       WHERE pg_temp.draw('email', g, 10) < 7""",
    """INSERT INTO events (customer_id, type, channel, occurred_at, received_at, properties)
       SELECT md5('c' || (1 + floor(random() * CAST(:customers AS bigint)))::bigint)::uuid,
              (ARRAY['page_view','page_view','product_view','add_to_cart','login'])
                [1 + floor(random() * 5)::int],
              (ARRAY['web','app','mini_program'])[1 + floor(random() * 3)::int],
              now() - random() * interval '365 days', now(),
              jsonb_build_object(
                'category', (ARRAY['sports','books','home','toys','food','beauty','garden',
                                   'music'])[1 + floor(random() * 8)::int],
                'price', floor(random() * 300)::int)
       FROM generate_series(1, CAST(:events AS bigint))""",
    """INSERT INTO orders (customer_id, source, external_id, amount, currency, base_amount,
                          status, placed_at, created_at)
       SELECT customer_id, 'bench', 'o' || g, amount, 'CNY', amount,
              CASE WHEN g % 10 = 0 THEN 'refunded' ELSE 'completed' END, placed_at, placed_at
       FROM (SELECT g,
                    md5('c' || (1 + floor(random() * CAST(:customers AS bigint)))::bigint)::uuid
                      AS customer_id,
                    round(CAST(10 + random() * 990 AS numeric), 2) AS amount,
                    now() - random() * interval '730 days' AS placed_at
             FROM generate_series(1, CAST(:orders AS bigint)) AS g) AS generated""",
    """INSERT INTO customer_metrics (customer_id, order_count, total_spent, first_order_at,
                                    last_order_at, last_activity_at, updated_at)
       SELECT c.id, coalesce(o.n, 0), coalesce(o.total, 0), o.first, o.last,
              greatest(o.last, e.last), now()
       FROM customers c
       LEFT JOIN (SELECT customer_id, count(*) AS n, sum(base_amount) AS total,
                         min(placed_at) AS first, max(placed_at) AS last
                  FROM orders WHERE status = 'completed' GROUP BY customer_id) o
         ON o.customer_id = c.id
       LEFT JOIN (SELECT customer_id, max(occurred_at) AS last FROM events
                  GROUP BY customer_id) e
         ON e.customer_id = c.id""",
)


async def autocommit(db: Database, *statements: str) -> None:
    async with db.engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            await connection.execute(text(statement))


async def load_population(
    db: Database, customers: int, events: int, orders: int, vip: uuid.UUID
) -> dict[str, float]:
    """Generate the population with the secondary indexes dropped (those not backing a
    constraint), then rebuild them exactly as the migrations made them (their definitions are
    read back from pg_indexes)."""
    started = time.perf_counter()
    async with db.read() as session:
        definitions = (
            await session.execute(
                text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                    "AND tablename = ANY(:tables) "
                    "AND NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = indexname)"
                ),
                {"tables": list(TABLES)},
            )
        ).all()
    names = ", ".join(f'"{name}"' for name, _ in definitions)
    async with db.write() as session:
        await session.execute(text("SET LOCAL synchronous_commit = off"))
        # Foreign keys hold by construction (every generated id is md5('c' || n), n <= N):
        # skip their per-row triggers, as a bulk load (pg_restore) does.
        await session.execute(text("SET LOCAL session_replication_role = replica"))
        await session.execute(text(f"DROP INDEX {names}"))
        params = {"customers": customers, "events": events, "orders": orders, "vip": str(vip)}
        for statement in LOAD:
            await session.execute(text(statement), params)
    loaded = time.perf_counter()
    await autocommit(
        db,
        "SET maintenance_work_mem = '1GB'",
        # A partitioned table's index reads back `ON ONLY` (the parent's alone): made again
        # on the whole table, it is made on every partition (events, c14_partitions).
        *(definition.replace(" ON ONLY ", " ON ") for _, definition in definitions),
        "VACUUM ANALYZE",
    )
    return {"generate_s": loaded - started, "index_and_vacuum_s": time.perf_counter() - loaded}


async def timed(work: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, result


async def _hand(db: Database, sql: str, params: dict[str, Any]) -> Any:
    async with db.read() as session:
        return (await session.execute(text(sql), params)).all()


async def _hand_count(db: Database, sql: str, params: dict[str, Any]) -> int:
    return int((await _hand(db, sql, params))[0][0])


async def _compare(
    db: Database,
    segment_id: uuid.UUID,
    hands: dict[str, str],
    params: dict[str, Any],
    repeat: int,
) -> dict[str, Any]:
    """Our compiled count statement and each hand-written form, alternating; the faster
    hand-written form is the baseline. Also timed: the count end to end through the domain
    (Segment.memberCount: catalog, validation, compilation, then the same statement)."""
    now = params["now"]
    where = await segments.members_filter(db, segment_id, now)
    statement = where.apply(select(func.count()).select_from(Customer))

    async def ours() -> int:
        async with db.read() as session:
            return int(await session.scalar(statement) or 0)

    async def end_to_end() -> int:
        return (await segments.member_counts(db, [segment_id], now))[segment_id]

    forms: dict[str, Callable[[], Awaitable[int]]] = {
        "ours": ours,
        **{name: partial(_hand_count, db, sql, params) for name, sql in hands.items()},
        "ours end to end": end_to_end,
    }
    runs: dict[str, list[float]] = {name: [] for name in forms}
    counts = set()
    for _ in range(repeat):
        for name, form in forms.items():
            seconds, count = await timed(form)
            runs[name].append(seconds)
            counts.add((name, count))
    values = {count for _, count in counts}
    assert len(values) == 1, f"ours and the hand-written queries disagree: {counts}"
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    best = min(hands, key=medians.__getitem__)
    return {
        "count": values.pop(),
        "ours_s": medians["ours"],
        "hand_s": medians[best],
        "hand_form": best,
        "ratio": medians["ours"] / medians[best],
        "medians": medians,
        "runs": runs,
    }


async def _page(
    db: Database, segment_id: uuid.UUID, sql: str, params: dict[str, Any], repeat: int
) -> dict[str, Any]:
    """The first 50 members as Segment.members reads them (filter, then one page)."""

    async def ours() -> list[uuid.UUID]:
        where = await segments.members_filter(db, segment_id, params["now"])
        page = await profile.list_customers(db, segments.MEMBER_ORDER, PageRequest(first=50), where)
        return [record.id for record in page.items]

    runs, hand_runs = [], []
    for _ in range(repeat):
        seconds, ids = await timed(ours)
        runs.append(seconds)
        seconds, rows = await timed(lambda: _hand(db, sql, params))
        hand_runs.append(seconds)
        assert ids == [row[0] for row in rows[:50]], "the pages differ"
    return {
        "ours_s": statistics.median(runs),
        "hand_s": statistics.median(hand_runs),
        "size": len(ids),
    }


async def _run(
    server: Any, customers: int, events: int, orders: int, repeat: int
) -> dict[str, Any]:
    vip = uuid.uuid4()
    async with fresh_database(server) as db:
        load = await load_population(db, customers, events, orders, vip)
        now = datetime.now(UTC)  # every count and page of the run is asked at this instant
        lapsed = await segments.define_segment(
            db, segments.SegmentDraft("lapsed", "Lapsed", None, LAPSED)
        )
        stored_s, stored = await timed(
            lambda: segments.define_segment(
                db, segments.SegmentDraft("lapsed-stored", "Lapsed", None, LAPSED, True)
            )
        )
        dynamic = await segments.define_segment(
            db, segments.SegmentDraft("six-dynamic", "Six", None, question(lapsed.key))
        )
        on_stored = await segments.define_segment(
            db, segments.SegmentDraft("six-stored", "Six", None, question(stored.key))
        )
        props = await segments.define_segment(
            db, segments.SegmentDraft("six-props", "Six", None, PROPS)
        )
        await autocommit(db, "VACUUM ANALYZE")
        await checkpoint(server)
        params = {
            "vip": vip,
            "now": now,
            "month": now - timedelta(days=30),
            "year": now - timedelta(days=365),
            "lapsed": now - timedelta(days=91),
            "quarter": now - timedelta(days=90),
            "segment": stored.id,
        }
        join = "LEFT JOIN customer_metrics m ON m.customer_id = c.id"
        by_hand = {
            name: HAND_WRITTEN.format(join=join, spend=spend, not_lapsed=NOT_LAPSED_DYNAMIC)
            for name, spend in SPEND.items()
        }
        by_hand_stored = {
            name: HAND_WRITTEN.format(join="", spend=spend, not_lapsed=NOT_LAPSED_STORED)
            for name, spend in SPEND.items()
        }
        page_by_hand = HAND_PAGE.format(
            join=join, spend=SPEND["correlated"], not_lapsed=NOT_LAPSED_DYNAMIC
        )
        return {
            "load": load,
            "materialize_lapsed": {"seconds": stored_s, "members": stored.member_count},
            "count_not_dynamic": await _compare(db, dynamic.id, by_hand, params, repeat),
            "count_not_materialized": await _compare(
                db, on_stored.id, by_hand_stored, params, repeat
            ),
            "count_event_properties": await _compare(
                db,
                props.id,
                {name: HAND_PROPS.format(spend=spend) for name, spend in SPEND.items()},
                params,
                repeat,
            ),
            "page_of_50": await _page(db, dynamic.id, page_by_hand, params, repeat),
        }


def population_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The options of a bench over this population (segments, insights)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=2_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    return parser


def main(argv: list[str]) -> int:
    args = population_parser("python -m bench segments", __doc__).parse_args(argv)
    server = server_url(args.database_url)
    result = asyncio.run(_run(server, args.customers, args.events, args.orders, args.repeat))
    table = Table(
        title=f"segments: {args.customers:,} customers, {args.events:,} events, "
        f"{args.orders:,} orders (median of {args.repeat})"
    )
    for column in ("what", "ours s", "hand-written s", "ours / best hand", "members"):
        table.add_column(column)
    for name, label in (
        ("count_not_dynamic", "6-leaf count, NOT a dynamic segment"),
        ("count_not_materialized", "6-leaf count, NOT a materialized segment"),
        ("count_event_properties", "6-leaf count, two event-property leaves"),
    ):
        r = result[name]
        medians = r["medians"]
        hand = ", ".join(f"{form} {medians[form]:.3f}" for form in SPEND)
        label += f" (end to end: {medians['ours end to end']:.3f})"
        table.add_row(label, f"{r['ours_s']:.3f}", hand, f"{r['ratio']:.2f}x", f"{r['count']:,}")
    page = result["page_of_50"]
    table.add_row(
        "first page of 50 members",
        f"{page['ours_s']:.3f}",
        f"{page['hand_s']:.3f}",
        f"{page['ours_s'] / page['hand_s']:.2f}x",
        str(page["size"]),
    )
    stored = result["materialize_lapsed"]
    table.add_row(
        "materialize `lapsed` (define)",
        f"{stored['seconds']:.1f}",
        "",
        "",
        f"{stored['members']:,}",
    )
    load = result["load"]
    table.add_row("generate rows (no indexes)", f"{load['generate_s']:.0f}", "", "", "")
    table.add_row("build indexes, vacuum, analyze", f"{load['index_and_vacuum_s']:.0f}", "", "", "")
    Console().print(table)
    worst = max(
        result[n]["ratio"]
        for n in ("count_not_dynamic", "count_not_materialized", "count_event_properties")
    )
    verdict = "within" if worst <= TARGET_RATIO else "NOT within"
    print(f"target: ours {verdict} {TARGET_RATIO}x of the hand-written query (worst {worst:.2f}x)")
    write_results(
        "segments",
        {"args": vars(args) | {"database_url": None}, "machine": platform.platform(), **result},
    )
    return 0
