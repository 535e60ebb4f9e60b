"""identifyBatch throughput on PostgreSQL, against a plain bulk INSERT of the same rows.

Scenarios, each on a fresh database: (a) only new people, (b) 30% of the inputs touch existing
profiles, (c) 5% of the inputs link two existing profiles and merge them. Only the
`identify_batch` calls are timed (sequential batches, one client); preloading is not. Each
scenario runs in the setting of bench.derived_setting (20 RULE tags, the default lifecycle, 10
materialized segments) with the derived-state worker running as its own process, and reports
the lag of derived state while it wrote (sampled until the worker had drained it). The
baseline ("the limit") inserts the customer and identity rows of (a) with plain executemany
INSERTs, one transaction per batch. Every run checks that the scenario did what it claims
(row counts, merges), so a fast figure from a broken run cannot pass for a result.

It creates and drops its own databases (`c360_bench_<random>`) on the server it is given and
must never touch any other database there.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import event, func, insert, select
from sqlalchemy.engine import URL

from bench.common import (
    DEFAULT_URL,
    checkpoint,
    fresh_database,
    server_sql,
    server_url,
    write_results,
)
from bench.derived_setting import define_setting, drained, load_average, sampling, worker_process
from domain.identity.linking import IdentifyInput, identify_batch
from store.db import Database
from store.models import Customer, Identity, MergeRecord, OutboxEvent
from store.types import utcnow

REGION, ACTOR, SOURCE = "CN", "bench", "bench"
PRELOAD_SHARE = 0.5  # existing profiles in (b) and (c), as a share of --inputs
TOUCH_SHARE = 0.3
MERGE_SHARE = 0.05
TARGET_RATIO, TARGET_RATE = 4.0, 5_000.0  # (a): within 4x of plain INSERT, >= 5,000 inputs/s
CITIES = ("上海", "北京", "深圳", "广州", "杭州", "成都", "武汉", "南京")


# --- generated people: person n is the same in every scenario and in the baseline ---


def _email(n: int) -> str:
    return f"person{n}@bench-mail.cn"


def _phone(n: int) -> str:
    # A valid CN mobile, already E.164; offset so that no person's number is a placeholder
    # (13900000000 is one: domain.identity.types.PHONE_PLACEHOLDERS).
    return f"+86139{n + 10_000_000:08d}"


def _device(n: int, suffix: str = "") -> str:
    return f"dev{n:09d}{suffix}"


def _identities(n: int) -> list[tuple[str, str]]:
    """Two or three identities; every value is already in normalized form."""
    found = [("email", _email(n)), ("phone", _phone(n))]
    return [*found, ("device_id", _device(n))] if n % 3 else found


def _person(n: int) -> IdentifyInput:
    traits = {"displayName": f"Person {n}", "city": CITIES[n % len(CITIES)]}
    return IdentifyInput(_identities(n), traits, source=SOURCE)


@dataclass(frozen=True, slots=True)
class Plan:
    name: str
    preload: list[IdentifyInput]
    timed: list[IdentifyInput]
    expected: dict[str, int]  # what the database and the results must show afterwards


def _identity_count(inputs: Sequence[IdentifyInput]) -> int:
    return sum(len(i.identities) for i in inputs)


def plan_new(n: int) -> Plan:
    timed = [_person(i) for i in range(n)]
    expected = _expected(customers=n, merged=0, identities=_identity_count(timed), created=n)
    return Plan("(a) all new", [], timed, expected)


def plan_touching(n: int, rng: random.Random) -> Plan:
    """30% carry the email or phone of an existing profile, half of them with a new device."""
    preload = [_person(i) for i in range(int(n * PRELOAD_SHARE))]
    touching = round(n * TOUCH_SHARE)
    timed, extra = [], 0
    for k, j in enumerate(rng.sample(range(len(preload)), touching)):
        found = [("email", _email(j))] if k % 2 else [("phone", _phone(j))]
        if k % 4 < 2:
            found.append(("device_id", _device(j, "b")))
            extra += 1
        timed.append(IdentifyInput(found, {"city": CITIES[(j + 1) % len(CITIES)]}, SOURCE))
    new = [_person(len(preload) + i) for i in range(n - touching)]
    timed += new
    rng.shuffle(timed)
    expected = _expected(
        customers=len(preload) + len(new),
        merged=0,
        identities=_identity_count(preload) + _identity_count(new) + extra,
        created=len(new),
    )
    return Plan("(b) 30% existing", preload, timed, expected)


def plan_merging(n: int, rng: random.Random) -> Plan:
    """5% carry the email of one existing profile and the phone of another: one merge each."""
    preload = [_person(i) for i in range(int(n * PRELOAD_SHARE))]
    merging = round(n * MERGE_SHARE)
    chosen = rng.sample(range(len(preload)), 2 * merging)
    timed = [
        IdentifyInput([("email", _email(x)), ("phone", _phone(y))], {"city": "苏州"}, SOURCE)
        for x, y in zip(chosen[::2], chosen[1::2], strict=True)
    ]
    new = [_person(len(preload) + i) for i in range(n - merging)]
    timed += new
    rng.shuffle(timed)
    expected = _expected(
        customers=len(preload) + len(new),
        merged=merging,
        identities=_identity_count(preload) + _identity_count(new),
        created=len(new),
    )
    return Plan("(c) 5% merging", preload, timed, expected)


def _expected(*, customers: int, merged: int, identities: int, created: int) -> dict[str, int]:
    return {
        "customers": customers,
        "merged_customers": merged,
        "merge_records": merged,
        "identities": identities,
        "results_created": created,
        "results_merges": merged,
        "results_with_errors": 0,
    }


EXPECTED_TALLY = ("results_created", "results_merges", "results_with_errors")


# --- measuring ---

_TABLE = re.compile(r'\b(?:FROM|INTO|UPDATE)\s+"?([a-z_]\w*)', re.IGNORECASE)
_FUNCTION = re.compile(r"(\w+)\(")


def _kind(statement: str, executemany: bool) -> str:
    verb = statement.split(None, 1)[0].upper()
    found = _TABLE.search(statement) or _FUNCTION.search(statement)
    return f"{verb} {found.group(1) if found else '?'}{' (executemany)' if executemany else ''}"


@dataclass(slots=True)
class StatementLog:
    """Statements the engine sends (an executemany counts once), and the wall time until each
    returned: the database round trips, as opposed to the Python around them."""

    count: Counter[str] = field(default_factory=Counter)
    seconds: Counter[str] = field(default_factory=Counter)

    def attach(self, db: Database) -> None:
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._before)
        event.listen(db.engine.sync_engine, "after_cursor_execute", self._after)

    def detach(self, db: Database) -> None:
        event.remove(db.engine.sync_engine, "before_cursor_execute", self._before)
        event.remove(db.engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, _p: Any, _c: Any, many: bool) -> None:
        kind = _kind(statement, many)
        self.count[kind] += 1
        self.seconds[kind] += time.perf_counter() - conn.info.pop("bench_started")


@dataclass(slots=True)
class Figure:
    scenario: str
    inputs: int
    seconds: float
    batches: int
    statements: StatementLog
    expected: dict[str, int] = field(default_factory=dict)
    actual: dict[str, int] = field(default_factory=dict)
    lag: dict[str, Any] | None = None  # derived state while it wrote (bench.derived_setting)

    @property
    def rate(self) -> float:
        return self.inputs / self.seconds

    @property
    def verified(self) -> bool:
        return all(self.actual.get(k) == v for k, v in self.expected.items())


def _batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Keep the benchmark's own data (every input of the run, prebuilt rows) out of the
    garbage collector's scans: a service holds one request, and its GC should be measured
    against that, not against a heap of a hundred thousand inputs."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _identify(
    db: Database, inputs: Sequence[IdentifyInput], size: int
) -> tuple[float, Counter[str]]:
    """Seconds spent in `identify_batch`, and a tally of what it answered."""
    elapsed, tally = 0.0, Counter[str]()
    with _frozen_heap():
        for batch in _batches(inputs, size):
            started = time.perf_counter()
            results = await identify_batch(db, batch, region=REGION, actor=ACTOR)
            elapsed += time.perf_counter() - started
            tally["results_created"] += sum(r.created for r in results)
            tally["results_merges"] += sum(len(r.merge_ids) for r in results)
            tally["results_with_errors"] += sum(bool(r.errors) for r in results)
    return elapsed, tally


async def _counts(db: Database) -> dict[str, int]:
    async with db.read() as session:
        customers = await session.scalar(select(func.count()).select_from(Customer))
        merged = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.status == "MERGED")
        )
        identities = await session.scalar(select(func.count()).select_from(Identity))
        merges = await session.scalar(select(func.count()).select_from(MergeRecord))
        outbox = await session.scalar(select(func.count()).select_from(OutboxEvent))
    return {
        "customers": customers or 0,
        "merged_customers": merged or 0,
        "identities": identities or 0,
        "merge_records": merges or 0,
        "outbox_events": outbox or 0,
    }


async def run_plan(server: URL, plan: Plan, size: int) -> Figure:
    async with fresh_database(server) as db, worker_process(db) as worker:
        await define_setting(db)
        await _identify(db, plan.preload, size)
        await drained(db)
        await checkpoint(server)
        log = StatementLog()
        log.attach(db)
        async with sampling(db, worker) as lag:
            seconds, tally = await _identify(db, plan.timed, size)
            log.detach(db)
        actual = await _counts(db) | {key: tally[key] for key in EXPECTED_TALLY}
    batches = len(_batches(plan.timed, size))
    return Figure(
        plan.name, len(plan.timed), seconds, batches, log, plan.expected, actual, lag.summary()
    )


def _baseline_rows(n: int) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The rows (a) ends with: one customer and its identities per person."""
    now = utcnow()
    stamp = now.isoformat()
    customers: list[dict[str, Any]] = []
    identities: list[list[dict[str, Any]]] = []
    for i in range(n):
        person = _person(i)
        customer_id = uuid.uuid4()
        customers.append(
            {
                "id": customer_id,
                "status": "ACTIVE",
                "display_name": person.traits["displayName"],
                "city": person.traits["city"],
                "email": _email(i),
                "phone": _phone(i),
                "attributes": {},
                "field_times": {"display_name": stamp, "city": stamp},
                "first_seen_at": now,
                "last_seen_at": now,
                "created_at": now,
                "updated_at": now,
                "version": 1,
            }
        )
        identities.append(
            [
                {
                    "customer_id": customer_id,
                    "type": type_key,
                    "value": value,
                    "source": SOURCE,
                    "verified": False,
                    "first_seen_at": now,
                    "last_seen_at": now,
                }
                for type_key, value in person.identities
            ]
        )
    return customers, identities  # identities: one list per customer


async def run_baseline(server: URL, n: int, size: int) -> Figure:
    customers, per_customer = _baseline_rows(n)
    elapsed, log = 0.0, StatementLog()
    async with fresh_database(server) as db:
        await checkpoint(server)
        log.attach(db)
        with _frozen_heap():
            for start in range(0, n, size):
                rows = [r for group in per_customer[start : start + size] for r in group]
                started = time.perf_counter()
                async with db.write() as session:
                    await session.execute(insert(Customer), customers[start : start + size])
                    await session.execute(insert(Identity), rows)
                elapsed += time.perf_counter() - started
        log.detach(db)
        actual = await _counts(db)
    expected = {"customers": n, "identities": sum(map(len, per_customer))}
    return Figure("plain INSERT", n, elapsed, len(range(0, n, size)), log, expected, actual)


async def _server_facts(server: URL) -> dict[str, str]:
    names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "max_wal_size")
    values = await server_sql(server, *(f"SHOW {name}" for name in names))
    return dict(zip(names, map(str, values), strict=True))


# --- report ---


def _report(console: Console, figures: list[Figure], limit: Figure) -> bool | None:
    """Print the figures; whether (a) met its target (None when (a) did not run)."""
    table = Table(title=f"identifyBatch on PostgreSQL ({limit.inputs:,} inputs, one client)")
    names = ("scenario", "inputs", "seconds", "inputs/s", "baseline/scenario", "scenario/baseline")
    for name in (*names, "stmts/batch", "lag p99 s"):
        table.add_column(name, justify="left" if name == "scenario" else "right")
    table.add_column("checks")
    for figure in [limit, *figures]:
        per_batch = f"{figure.statements.count.total() / figure.batches:.1f}"
        table.add_row(
            figure.scenario,
            f"{figure.inputs:,}",
            f"{figure.seconds:.2f}",
            f"{figure.rate:,.0f}",
            f"{limit.rate / figure.rate:.2f}x",
            f"{figure.rate / limit.rate:.2f}x",
            per_batch,
            f"{figure.lag['p99_s']:.2f}" if figure.lag else "",
            "[green]ok[/]" if figure.verified else f"[red]FAILED {figure.actual}[/]",
        )
    console.print(table)
    for figure in figures:
        _detail(console, figure)
    new = next((f for f in figures if f.scenario.startswith("(a)")), None)
    if new is None:
        return None
    met = limit.rate / new.rate <= TARGET_RATIO and new.rate >= TARGET_RATE
    verdict = "[green]met[/]" if met else "[red]not met[/]"
    console.print(
        f"target (a): within {TARGET_RATIO:g}x of plain INSERT and >= {TARGET_RATE:,.0f} "
        f"inputs/s: {verdict} ({limit.rate / new.rate:.2f}x, {new.rate:,.0f} inputs/s)"
    )
    return met


def _detail(console: Console, figure: Figure) -> None:
    """Where a scenario's batches wait: statements per batch by kind, and their time."""
    title = f"{figure.scenario}: statements per batch of {figure.inputs // figure.batches:,}"
    detail = Table(title=title)
    for name in ("statement", "per batch", "ms per batch"):
        detail.add_column(name, justify="left" if name == "statement" else "right")
    for kind, count in figure.statements.count.most_common():
        ms = 1000 * figure.statements.seconds[kind] / figure.batches
        detail.add_row(kind, f"{count / figure.batches:.1f}", f"{ms:.1f}")
    db_ms = 1000 * figure.statements.seconds.total() / figure.batches
    total = figure.statements.count.total() / figure.batches
    detail.add_row("[b]total[/]", f"{total:.1f}", f"{db_ms:.1f}")
    console.print(detail)
    console.print(
        f"{figure.scenario}: {1000 * figure.seconds / figure.batches:.1f} ms per batch, "
        f"{db_ms:.1f} ms of it waiting on statements"
    )


def _figure_json(figure: Figure, limit: Figure) -> dict[str, Any]:
    out: dict[str, Any] = {
        "scenario": figure.scenario,
        "inputs": figure.inputs,
        "seconds": round(figure.seconds, 3),
        "inputs_per_s": round(figure.rate, 1),
        "baseline_ratio": round(limit.rate / figure.rate, 3),
        "over_baseline": round(figure.rate / limit.rate, 3),
        "batches": figure.batches,
        "verified": figure.verified,
        "expected": figure.expected,
        "actual": figure.actual,
    }
    if figure.lag is not None:
        out["derived_lag"] = figure.lag
    log = figure.statements  # COPY is not a cursor statement: not counted here
    out["statements_per_batch"] = round(log.count.total() / figure.batches, 2)
    out["statements"] = {
        kind: {
            "per_batch": round(count / figure.batches, 2),
            "ms_per_batch": round(1000 * log.seconds[kind] / figure.batches, 2),
        }
        for kind, count in log.count.most_common()
    }
    return out


async def _run(
    server: URL, n: int, size: int, seed: int, scenarios: str, console: Console
) -> dict[str, Any]:
    load_before = load_average()
    facts = await _server_facts(server)
    console.print(f"PostgreSQL {facts['server_version']}, {os.cpu_count()} cpus, {n:,} inputs")
    figures = []
    # Each scenario draws from its own generator: its mix is the same whichever others run.
    builders: dict[str, Callable[[], Plan]] = {
        "a": lambda: plan_new(n),
        "b": lambda: plan_touching(n, random.Random(f"{seed}b")),
        "c": lambda: plan_merging(n, random.Random(f"{seed}c")),
    }
    for letter in scenarios:
        plan = builders[letter]()  # one plan in memory at a time
        console.print(f"{plan.name}: preload {len(plan.preload):,}, timed {len(plan.timed):,}")
        figures.append(await run_plan(server, plan, size))
        console.print(f"  {figures[-1].seconds:.2f} s, {figures[-1].rate:,.0f} inputs/s")
    console.print("plain INSERT baseline")
    limit = await run_baseline(server, n, size)
    met = _report(console, figures, limit)
    return {
        "date": date.today().isoformat(),
        "inputs": n,
        "batch": size,
        "seed": seed,
        "scenarios_run": scenarios,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "postgres": facts,
        "load_average": {"before": load_before, "after": load_average()},
        "setting": {"rule_tags": 20, "lifecycle": "default", "materialized_segments": 10},
        "baseline": _figure_json(limit, limit),
        "scenarios": [_figure_json(f, limit) for f in figures],
        "target_a": {
            "max_ratio": TARGET_RATIO,
            "min_inputs_per_s": TARGET_RATE,
            "met": met,
        },
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench identify", description=__doc__)
    parser.add_argument("--inputs", type=int, default=100_000, help="timed inputs per scenario")
    parser.add_argument("--batch", type=int, default=1_000, help="inputs per identifyBatch call")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL),
        help="PostgreSQL server URL; a fresh database is created (and dropped) per scenario",
    )
    parser.add_argument("--seed", type=int, default=360, help="seed of the scenario mix")
    parser.add_argument(
        "--scenarios",
        default="abc",
        help="which scenarios to run, in order: letters of a, b, c (the baseline always runs)",
    )
    parser.add_argument(
        "--suffix", default="", help="appended to the results file name (bench/results/...)"
    )
    args = parser.parse_args(argv)
    if args.inputs < 20 or args.batch < 1:
        parser.error("--inputs must be at least 20 and --batch at least 1")
    if not args.scenarios or set(args.scenarios) - set("abc"):
        parser.error("--scenarios takes letters of a, b, c")
    console = Console()
    if not console.is_terminal:
        console.width = 120  # a log file, not a narrow terminal: keep the table on one line
    report = asyncio.run(
        _run(
            server_url(args.database_url),
            args.inputs,
            args.batch,
            args.seed,
            args.scenarios,
            console,
        )
    )
    write_results("identify", report, args.suffix)
    checked = [report["baseline"], *report["scenarios"]]
    return 0 if all(f["verified"] for f in checked) else 1
