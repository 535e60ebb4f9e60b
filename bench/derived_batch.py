"""Where a derived-state batch's time goes, on PostgreSQL: the setting of issue 19
(bench.derived_setting: 20 RULE tags, the default lifecycle, 10 materialized segments), a
population of profiles identified, then rounds of events and orders ingested without a worker,
each round's dirty profiles worked as one batch (domain.derived.batches) with every statement
timed (SQLAlchemy's before/after_cursor_execute) and the batch under cProfile.

It prints the statements of the last round grouped by their first words (count, total ms),
the top of the profile by cumulative time, and writes bench/results/derived_batch-<date>.json
(statements per batch, seconds per batch, profiles per second).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import event

from bench.common import DEFAULT_URL, fresh_database, server_url, write_results
from bench.derived_setting import define_setting, load_average
from domain.activity.ingest import EventItem, OrderItem, record_orders, track_events
from domain.derived.batches import bring_up_to_date, claim, drain
from domain.identity.linking import IdentifyInput, identify_batch
from store.db import Database

RATES = {"CNY": Decimal(1)}
NOW = datetime.now(UTC)


def _email(n: int) -> str:
    return f"buyer{n}@bench-mail.cn"


class Statements:
    """Every statement the engine runs, with its duration, while `on`."""

    def __init__(self, db: Database) -> None:
        self.on = False
        self.seen: list[tuple[str, float]] = []
        engine = db.engine.sync_engine

        @event.listens_for(engine, "before_cursor_execute")
        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            conn.info["c360_started"] = time.perf_counter()

        @event.listens_for(engine, "after_cursor_execute")
        def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if self.on:
                took = time.perf_counter() - conn.info.pop("c360_started")
                self.seen.append((statement, took))

    def grouped(self) -> list[tuple[str, int, float]]:
        """(kind, count, ms) by the statement's shape, slowest first."""
        groups: dict[str, list[float]] = defaultdict(list)
        for statement, took in self.seen:
            groups[_shape(statement)].append(took)
        rows = [(k, len(v), sum(v) * 1000) for k, v in groups.items()]
        return sorted(rows, key=lambda r: -r[2])


def _shape(statement: str) -> str:
    """A statement's verb and first table, to group statements by."""
    flat = " ".join(statement.split())
    for pattern in (
        r"^(INSERT INTO \w+)",
        r"^(DELETE FROM \w+)",
        r"^(UPDATE \w+)",
        r"^(WITH \w+)",
        r"^(SELECT .{0,40}?FROM \w+)",
    ):
        found = re.match(pattern, flat)
        if found:
            return found.group(1)
    return flat[:50]


async def _round(db: Database, n: int, people: int, items: int) -> None:
    """`items` events and `items` orders over the population (marks profiles dirty)."""
    events = [
        EventItem(
            ("email", _email((n * items + i) % people)),
            "page_view",
            "web",
            NOW - timedelta(minutes=i),
            {"sku": f"S{i % 97}"},
            f"evt-{n}-{i}",
        )
        for i in range(items)
    ]
    orders = [
        OrderItem(
            ("email", _email((n * items + i * 3) % people)),
            f"ord-{n}-{i}",
            Decimal(19 + i % 300),
            "CNY",
            placed_at=NOW - timedelta(hours=i),
        )
        for i in range(items)
    ]
    for start in range(0, items, 1000):
        await track_events(db, events[start : start + 1000], region="CN", actor="bench")
        await record_orders(
            db, orders[start : start + 1000], region="CN", actor="bench", rates=RATES
        )


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    console = Console()
    async with fresh_database(server_url(args.database_url)) as db:
        await define_setting(db)
        inputs = [IdentifyInput([("email", _email(i))]) for i in range(args.people)]
        for start in range(0, args.people, 1000):
            await identify_batch(db, inputs[start : start + 1000], region="CN", actor="bench")
        await drain(db, args.batch)
        statements = Statements(db)
        rounds = []
        profile = cProfile.Profile()
        for n in range(args.rounds):
            await _round(db, n, args.people, args.items)
            claims = await claim(db, args.batch)
            statements.seen.clear()
            statements.on = True
            profile.enable()
            started = time.perf_counter()
            await bring_up_to_date(db, claims)
            seconds = time.perf_counter() - started
            profile.disable()
            statements.on = False
            rounds.append(
                {
                    "profiles": len(claims),
                    "seconds": round(seconds, 3),
                    "statements": len(statements.seen),
                    "statements_ms": round(sum(t for _s, t in statements.seen) * 1000, 1),
                    "profiles_per_s": round(len(claims) / seconds, 1),
                }
            )
            console.print(rounds[-1])
        table = Table(title="statements of the last batch")
        for column in ("statement", "count", "ms"):
            table.add_column(column)
        grouped = statements.grouped()
        for shape, count, ms in grouped:
            table.add_row(shape, str(count), f"{ms:.1f}")
        console.print(table)
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        console.print(out.getvalue())
        return {"rounds": rounds, "last_batch": [list(g) for g in grouped]}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench derived_batch", description=__doc__)
    parser.add_argument("--people", type=int, default=5_000)
    parser.add_argument("--items", type=int, default=2_000, help="events, and orders, per round")
    parser.add_argument("--batch", type=int, default=2_000, help="profiles claimed per batch")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--top", type=int, default=30, help="profile lines printed")
    parser.add_argument("--suffix", default="", help="results file name suffix")
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    before = load_average()
    report = asyncio.run(_run(args))
    after = load_average()
    write_results(
        "derived_batch",
        {
            "args": vars(args) | {"database_url": "<server>"},
            **report,
            "load_average": {"before": before, "after": after},
        },
        args.suffix,
    )
    return 0
