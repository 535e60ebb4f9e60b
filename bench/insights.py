"""Segment insights on PostgreSQL at scale: ours against the same aggregates written by hand,
in the same run.

The population of `python -m bench segments` (N customers, default 1,000,000, 2% merged away;
10 events and 2 orders per customer on average; set-based SQL, indexes rebuilt, vacuumed),
then the per-customer channel summary built from the events and orders and the RFM scores
refreshed, as `c360 recompute-metrics` does. The group: Chinese customers in the purchase
stage (about 10% of the population), as a materialized segment (its stored members) and as a
condition (`where`, compiled).

Timed, REPEAT times each, alternating, medians reported: our insights end to end through the
domain (catalog, compilation, one statement), and the same figures as a person would write
them (a CTE of the members joined to their metrics, one GROUP BY per distribution in a UNION
ALL, channels joined from customer_channels); every figure must agree. Timed once, for the
record: the channel distribution counted from the events table instead of the summary.

It creates and drops its own database (`c360_bench_<random>`) on the server it is given and
never touches any other database there.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.common import checkpoint, fresh_database, server_url, write_results
from bench.segments import autocommit, load_population, population_parser, timed
from domain.activity import channels, metrics
from domain.segments import definitions as segments
from domain.segments.insights import Insights, insights
from store.db import Database

TARGET_SECONDS = 2.0
GROUP = {
    "and": [
        {"attribute": {"field": "country", "op": "EQ", "value": "CN"}},
        {"stage": {"in": ["purchase"]}},
    ]
}
HAND_MEMBERS = {
    "segment": """SELECT c.id, c.stage, c.city, m.rfm_segment,
                         coalesce(m.total_spent, 0) AS spent, coalesce(m.order_count, 0) AS n
                  FROM segment_memberships s JOIN customers c ON c.id = s.customer_id
                  LEFT JOIN customer_metrics m ON m.customer_id = c.id
                  WHERE s.segment_id = :segment AND c.status = 'ACTIVE'""",
    "where": """SELECT c.id, c.stage, c.city, m.rfm_segment,
                       coalesce(m.total_spent, 0) AS spent, coalesce(m.order_count, 0) AS n
                FROM customers c LEFT JOIN customer_metrics m ON m.customer_id = c.id
                WHERE c.status = 'ACTIVE' AND c.country = 'CN' AND c.stage = 'purchase'""",
}
HAND = """WITH g AS ({members})
SELECT 'stage', stage, count(*), sum(spent), sum(n) FROM g GROUP BY stage
UNION ALL SELECT 'rfm_segment', rfm_segment, count(*), sum(spent), sum(n) FROM g
          GROUP BY rfm_segment
UNION ALL SELECT 'city', city, count(*), sum(spent), sum(n) FROM g GROUP BY city
UNION ALL SELECT 'channel', k.channel, count(*), sum(spent), sum(n)
          FROM g JOIN customer_channels k ON k.customer_id = g.id GROUP BY k.channel
UNION ALL SELECT NULL, NULL, count(*), coalesce(sum(spent), 0), coalesce(sum(n), 0) FROM g"""
# What a first attempt did: channels counted from the events of the members.
FROM_EVENTS = """WITH g AS ({members})
SELECT e.channel, count(DISTINCT e.customer_id)
FROM events e JOIN g ON g.id = e.customer_id GROUP BY e.channel"""


def _ours_as_rows(found: Insights) -> set[tuple[Any, ...]]:
    buckets = [(None, found.everyone)] + [
        (name, bucket)
        for name, dimension in (
            ("stage", found.stages),
            ("rfm_segment", found.rfm_segments),
            ("city", found.cities),
            ("channel", found.channels),
        )
        for bucket in dimension
    ]
    return {(d, b.value, b.members, b.total_spent, b.orders) for d, b in buckets}


async def _hand(db: Database, members: str, params: dict[str, Any]) -> set[tuple[Any, ...]]:
    async with db.read() as session:
        rows = await session.execute(text(HAND.format(members=members)), params)
        return {
            (d, v, int(c), Decimal(s).quantize(Decimal("0.01")), int(n)) for d, v, c, s, n in rows
        }


async def _compare(
    ours: Callable[[], Awaitable[Insights]],
    hand: Callable[[], Awaitable[set[tuple[Any, ...]]]],
    repeat: int,
) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"ours": [], "hand": []}
    found: Insights | None = None
    for _ in range(repeat):
        seconds, found = await timed(ours)
        runs["ours"].append(seconds)
        seconds, expected = await timed(hand)
        runs["hand"].append(seconds)
        assert found is not None and _ours_as_rows(found) == expected, "the figures differ"
    assert found is not None
    medians = {name: statistics.median(seconds) for name, seconds in runs.items()}
    return {
        "members": found.everyone.members,
        "ours_s": medians["ours"],
        "hand_s": medians["hand"],
        "ratio": medians["ours"] / medians["hand"],
        "runs": runs,
    }


async def _derive(db: Database) -> float:
    """What `c360 recompute-metrics` adds to the loaded rows: channels, then RFM scores."""

    async def work(session: AsyncSession) -> None:
        await channels.rebuild(session, None)
        await metrics.refresh_rfm(session)

    seconds, _ = await timed(lambda: db.transact(work))
    return seconds


async def _run(
    server: Any, customers: int, events: int, orders: int, repeat: int
) -> dict[str, Any]:
    async with fresh_database(server) as db:
        load = await load_population(db, customers, events, orders, uuid.uuid4())
        load["channels_and_rfm_s"] = await _derive(db)
        group = await segments.define_segment(
            db, segments.SegmentDraft("cn-purchase", "CN purchase", None, GROUP, True)
        )
        await autocommit(db, "VACUUM ANALYZE")
        await checkpoint(server)
        params = {"segment": group.id}
        by_segment = await _compare(
            lambda: insights(db, segment_id=group.id),
            lambda: _hand(db, HAND_MEMBERS["segment"], params),
            repeat,
        )
        by_where = await _compare(
            lambda: insights(db, where=GROUP),
            lambda: _hand(db, HAND_MEMBERS["where"], params),
            repeat,
        )

        async def from_events() -> list[Any]:
            async with db.read() as session:
                sql = FROM_EVENTS.format(members=HAND_MEMBERS["segment"])
                return list((await session.execute(text(sql), params)).all())

        events_s, _ = await timed(from_events)
        return {
            "load": load,
            "segment": by_segment,
            "where": by_where,
            "channels_from_events_s": events_s,
        }


def main(argv: list[str]) -> int:
    args = population_parser("python -m bench insights", __doc__).parse_args(argv)
    server = server_url(args.database_url)
    result = asyncio.run(_run(server, args.customers, args.events, args.orders, args.repeat))
    table = Table(
        title=f"insights: {args.customers:,} customers, {args.events:,} events, "
        f"{args.orders:,} orders (median of {args.repeat})"
    )
    for column in ("what", "ours s", "hand-written s", "ours / hand", "members"):
        table.add_column(column)
    for name, label in (("segment", "materialized segment"), ("where", "condition (where)")):
        r = result[name]
        table.add_row(
            label, f"{r['ours_s']:.3f}", f"{r['hand_s']:.3f}", f"{r['ratio']:.2f}x",
            f"{r['members']:,}",
        )  # fmt: skip
    table.add_row(
        "channels counted from events (once)", "", f"{result['channels_from_events_s']:.3f}", "", ""
    )
    load = result["load"]
    table.add_row("generate rows (no indexes)", f"{load['generate_s']:.0f}", "", "", "")
    table.add_row("build indexes, vacuum, analyze", f"{load['index_and_vacuum_s']:.0f}", "", "", "")
    table.add_row("channel summary and RFM", f"{load['channels_and_rfm_s']:.0f}", "", "", "")
    Console().print(table)
    worst = max(result[name]["ours_s"] for name in ("segment", "where"))
    verdict = "under" if worst < TARGET_SECONDS else "NOT under"
    print(f"target: insights {verdict} {TARGET_SECONDS} s (slowest {worst:.3f} s)")
    write_results(
        "insights",
        {"args": vars(args) | {"database_url": None}, "machine": platform.platform(), **result},
        suffix=f"-{args.customers}",
    )
    return 0
