"""The lifecycle on PostgreSQL at scale: `c360 sweep` and the funnel report.

A fresh database gets, by set-based SQL (generate_series), N customers (default 1,000,000)
walking the funnel preset along six path shapes of 1 to 5 stages (3 transitions per customer
on average: 3,000,000 for the default), the events and orders those paths imply, and the
metrics derived from them. Customers were created 30 to 730 days ago, so a large share has
been idle past the 180-day churn window and the first sweep has real work to do.

Timed: the funnel report (all history, and the last 365 days) over the generated transitions;
then `c360 sweep` as its own process (transitions written per second); then a second sweep
with nothing left to move (the steady-state cost of the periodic sweep); then the funnel again.
Every run checks that the sweep did what it claims (transitions counted in the database, none
on the second pass).

It creates and drops its own database (`c360_bench_<random>`) on the server it is given and
never touches any other database there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from domain.lifecycle.funnel import funnel
from domain.lifecycle.rules import SWEEP_BATCH_SIZE
from store.db import Database

# Path shapes by customer number mod 10: 0 -> 1 stage, 1-2 -> 2, 3-5 -> 3, 6-7 -> 4, 8 -> 5,
# 9 -> 3 (a buyer who churned): 3.0 transitions per customer on average.
PATHS = """(VALUES
  (0, 1, 'awareness'),
  (1, 1, 'awareness'), (1, 2, 'consideration'),
  (2, 1, 'awareness'), (2, 2, 'consideration'),
  (3, 1, 'awareness'), (3, 2, 'consideration'), (3, 3, 'purchase'),
  (4, 1, 'awareness'), (4, 2, 'consideration'), (4, 3, 'purchase'),
  (5, 1, 'awareness'), (5, 2, 'consideration'), (5, 3, 'purchase'),
  (6, 1, 'awareness'), (6, 2, 'consideration'), (6, 3, 'purchase'), (6, 4, 'loyalty'),
  (7, 1, 'awareness'), (7, 2, 'consideration'), (7, 3, 'purchase'), (7, 4, 'loyalty'),
  (8, 1, 'awareness'), (8, 2, 'consideration'), (8, 3, 'purchase'), (8, 4, 'loyalty'),
  (8, 5, 'churned'),
  (9, 1, 'awareness'), (9, 2, 'purchase'), (9, 3, 'churned')
) AS p(shape, step, stage)"""

# Per shape: its last step and stage, the step of its last activity, the step it first bought
# at, the step of its last order, and how many orders it placed (1 at purchase, 2 more at
# loyalty). Profiles and metrics are written from these, without reading the moves back.
SHAPES = """(VALUES
  (0, 1, 'awareness', NULL, NULL, NULL, 0), (1, 2, 'consideration', 2, NULL, NULL, 0),
  (2, 2, 'consideration', 2, NULL, NULL, 0), (3, 3, 'purchase', 3, 3, 3, 1),
  (4, 3, 'purchase', 3, 3, 3, 1), (5, 3, 'purchase', 3, 3, 3, 1), (6, 4, 'loyalty', 4, 3, 4, 3),
  (7, 4, 'loyalty', 4, 3, 4, 3), (8, 5, 'churned', 4, 3, 4, 3), (9, 3, 'churned', 2, 2, 2, 1)
) AS s(shape, last_step, last_stage, active_step, buy_step, last_order_step, orders)"""


def _at(step: str) -> str:
    """The time of a customer's move number `step` (SQL)."""
    return f"pe.created + ({step} - 1) * pe.gap"


GENERATE = (
    # n: the customer's number; age 30..729 days; gap between its moves 1..age/5 days.
    """CREATE TEMP TABLE people AS
       SELECT g AS n, gen_random_uuid() AS id, g % 10 AS shape,
              now() - (30 + (g * 7919) % 700) * interval '1 day' AS created,
              least(1 + g % 20, (30 + (g * 7919) % 700) / 5) * interval '1 day' AS gap
       FROM generate_series(1, CAST(:customers AS bigint)) AS g""",
    f"""CREATE TEMP TABLE moves AS
        SELECT pe.n, pe.id, p.step, p.stage,
               lag(p.stage) OVER (PARTITION BY pe.n ORDER BY p.step) AS from_stage,
               {_at("p.step")} AS at
        FROM people pe JOIN {PATHS} ON p.shape = pe.shape""",
    f"""INSERT INTO customers (id, status, attributes, field_times, created_at, updated_at,
                             first_seen_at, last_seen_at, stage, stage_entered_at, version)
        SELECT pe.id, 'ACTIVE', '{{}}', '{{}}', pe.created, pe.created, pe.created,
               coalesce({_at("s.active_step")}, pe.created), s.last_stage,
               {_at("s.last_step")}, 1
        FROM people pe JOIN {SHAPES} ON s.shape = pe.shape""",
    f"""INSERT INTO customer_metrics (customer_id, order_count, total_spent, first_order_at,
                                     last_order_at, last_activity_at, updated_at)
        SELECT pe.id, s.orders, s.orders * (100 + pe.n % 400), {_at("s.buy_step")},
               {_at("s.last_order_step")}, {_at("s.active_step")}, now()
        FROM people pe JOIN {SHAPES} ON s.shape = pe.shape""",
    """INSERT INTO stage_transitions (customer_id, from_stage, to_stage, at, reason, actor)
       SELECT id, from_stage, stage, at, 'generated', 'bench' FROM moves""",
    # Browsing when a customer considered; orders when it bought, three by loyalty.
    """INSERT INTO events (customer_id, type, channel, occurred_at, received_at, properties)
       SELECT id, 'product_view', 'web', at, at, '{}' FROM moves WHERE stage = 'consideration'""",
    """INSERT INTO orders (customer_id, source, external_id, amount, currency, base_amount,
                          status, placed_at, created_at)
       SELECT m.id, 'gen', 'o-' || m.n || '-' || m.step || '-' || k, 100 + m.n % 400, 'CNY',
              100 + m.n % 400, 'completed', m.at - (k - 1) * interval '1 hour', m.at
       FROM moves m CROSS JOIN generate_series(1, 2) AS k
       WHERE (m.stage = 'purchase' AND k = 1) OR m.stage = 'loyalty'""",
    "ANALYZE",
)


async def _count(db: Database, sql: str) -> int:
    async with db.read() as session:
        return int((await session.execute(text(sql))).scalar_one())


async def _generate(db: Database, customers: int) -> dict[str, Any]:
    started = time.perf_counter()
    async with db.write() as session:
        for statement in GENERATE:
            await session.execute(text(statement), {"customers": customers})
    counts = {
        table: await _count(db, f"SELECT count(*) FROM {table}")
        for table in ("customers", "stage_transitions", "events", "orders")
    }
    return counts | {"seconds": time.perf_counter() - started}


async def _timed_funnel(db: Database, start: datetime | None) -> dict[str, Any]:
    started = time.perf_counter()
    stages = await funnel(db, start=start)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "stages": {s.stage.key: {"current": s.current, "entered": s.entered} for s in stages},
    }


def _sweep_process(url: str, batch: int) -> float:
    """`c360 sweep` as an operator runs it: its own process, timed from the outside."""
    started = time.perf_counter()
    command = [str(Path(sys.executable).parent / "c360"), "sweep", "--batch-size", str(batch)]
    subprocess.run(
        command, check=True, env={**os.environ, "DATABASE_URL": url}, capture_output=True
    )
    return time.perf_counter() - started


async def _run(server: Any, customers: int, batch: int) -> dict[str, Any]:
    async with fresh_database(server) as db:
        generated = await _generate(db, customers)
        url = db.engine.url.render_as_string(hide_password=False)
        year_ago = datetime.now(UTC) - timedelta(days=365)
        await checkpoint(server)
        before = {"all": await _timed_funnel(db, None), "year": await _timed_funnel(db, year_ago)}
        transitions = generated["stage_transitions"]
        await checkpoint(server)
        seconds = await asyncio.to_thread(_sweep_process, url, batch)
        written = await _count(db, "SELECT count(*) FROM stage_transitions") - transitions
        events = await _count(db, "SELECT count(*) FROM outbox WHERE kind = 'stage.changed'")
        assert written > 0 and events == written, (written, events)
        await checkpoint(server)
        idle = await asyncio.to_thread(_sweep_process, url, batch)
        again = await _count(db, "SELECT count(*) FROM stage_transitions") - transitions
        assert again == written, "a second sweep over the same data moved someone"
        after = await _timed_funnel(db, None)
    return {
        "generated": generated,
        "funnel_before_sweep": before,
        "sweep": {
            "seconds": seconds,
            "transitions": written,
            "transitions_per_s": written / seconds,
            "customers_per_s": customers / seconds,
        },
        "idle_sweep_seconds": idle,
        "funnel_after_sweep": after,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench lifecycle", description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument(
        "--batch", type=int, default=SWEEP_BATCH_SIZE, help="sweep: profiles per batch"
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    result = asyncio.run(_run(server_url(args.database_url), args.customers, args.batch))
    generated, sweep = result["generated"], result["sweep"]
    table = Table(
        title=f"lifecycle: {generated['customers']:,} customers, "
        f"{generated['stage_transitions']:,} transitions, {generated['orders']:,} orders, "
        f"{generated['events']:,} events"
    )
    for column in ("what", "seconds", "throughput"):
        table.add_column(column)
    funnel_all = result["funnel_before_sweep"]["all"]["seconds"]
    funnel_year = result["funnel_before_sweep"]["year"]["seconds"]
    table.add_row("funnel, all history", f"{funnel_all:.2f}", "")
    table.add_row("funnel, last 365 days", f"{funnel_year:.2f}", "")
    table.add_row(
        f"c360 sweep (batch {args.batch:,})",
        f"{sweep['seconds']:.1f}",
        f"{sweep['transitions']:,} transitions, {sweep['transitions_per_s']:,.0f}/s; "
        f"{sweep['customers_per_s']:,.0f} customers/s",
    )
    table.add_row("c360 sweep again (nothing to move)", f"{result['idle_sweep_seconds']:.1f}", "")
    table.add_row(
        "funnel, all history, after the sweep",
        f"{result['funnel_after_sweep']['seconds']:.2f}",
        "",
    )
    Console().print(table)
    write_results("lifecycle", {"args": vars(args) | {"database_url": "<server>"}, **result})
    return 0
