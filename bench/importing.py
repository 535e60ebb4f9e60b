"""`c360 import` of events on PostgreSQL against COPY of the same rows, in the same run, plus a
profile of where the import's time goes.

1. `--people` customers are imported from a CSV file with `c360 import customers` (timed and
   reported, not the subject).
2. What a DBA bypassing the app would do: the same events, their customer ids already
   resolved, COPYed into the real `events` table (its partitions, indexes, constraints and
   triggers) in one statement (timed: `copy_events`); then events are emptied again
   (TRUNCATE), so that the import starts from the same state.
3. `--events` events of those customers, from a generated CSV file, go through
   `c360 import events` as its own process (timed, wall clock).
4. The derived state of the profiles the import marked dirty is brought up to date in this
   process (domain.derived.batches.drain, the worker's batches; timed and reported apart: the
   import itself commits raw facts only; `--skip-derived` leaves it out).
5. The same file is COPYed into a scratch table of the same columns in the same database
   (the floor: no identity resolution, no derived state, no de-duplication, no index).
6. `--profile-events` more events are imported in this process under cProfile, with every SQL
   statement timed by kind and the bulk path's steps timed by wall clock.

The setting is the default lifecycle model and no RULE tags or materialized segments.
It creates and drops its own databases (`c360_bench_<random>`) and never touches others.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import csv
import importlib
import json
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.table import Table
from sqlalchemy import event
from sqlalchemy.engine import URL

from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from domain.derived.batches import drain
from service.importing import default_rejects_path, import_file
from service.settings import Settings
from store.db import Database

C360 = str(Path(sys.executable).parent / "c360")
COLUMNS = (
    "customer.type",
    "customer.value",
    "type",
    "channel",
    "occurredAt",
    "properties",
    "idempotencyKey",
)
SCRATCH = """CREATE TABLE bench_events_copy (customer_type text, customer_value text, type text,
  channel text, occurred_at timestamptz, properties jsonb, idempotency_key text)"""
# Where an import's time may go: (module, attribute the import calls) -> label. The bench wraps
# them with wall-clock timers (cProfile's cumulative times are not trustworthy for coroutines).
STEPS = (
    ("domain.activity.bulk", "_land", "identity resolution (distinct identities)"),
    ("domain.activity.ingest", "land_on_holders", "  of which: held identifiers"),
    ("domain.activity.ingest", "resolve_batch", "  of which: resolve_batch (new ones)"),
    ("domain.activity.bulk", "copy_rows", "COPY of the rows"),
    ("domain.activity.channels", "count_new", "channel summaries"),
    ("domain.activity.bulk", "mark", "marking profiles dirty"),
    ("domain.activity.bulk", "_import", "a batch's transaction, whole"),
)
# The DBA's COPY: the generated events with their customer ids, into `events` itself.
EVENT_COLUMNS = (
    "customer_id", "type", "channel", "occurred_at", "received_at", "properties",
    "idempotency_key",
)  # fmt: skip


def _email(n: int) -> str:
    return f"buyer{n}@bench-mail.cn"


def _write_people(path: Path, people: int) -> None:
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(("identities.email", "traits.firstName", "source"))
        writer.writerows((_email(i), f"Buyer{i}", "crm") for i in range(people))


def _write_events(path: Path, events: int, people: int, key_prefix: str) -> None:
    kinds = ("page_view", "product_view", "add_to_cart", "login")
    now = datetime.now(UTC)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(COLUMNS)
        for i in range(events):
            at = (now - timedelta(seconds=i)).isoformat(timespec="seconds")
            sku = json.dumps({"sku": f"S{i % 97}"})
            writer.writerow(
                ("email", _email(i % people), kinds[i % 4], "web", at, sku, f"{key_prefix}{i}")
            )


def _url(db: Database) -> str:
    url: URL = db.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _c360_import(
    url: str, kind: str, path: Path, batch: int | None, window: int | None = None
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("C360_")}
    env.pop("REDIS_URL", None)
    options = [
        *(("--batch-size", str(batch)) if batch else ()),
        *(("--window", str(window)) if window else ()),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        [C360, "import", kind, str(path), *options, "--json"],
        env=env | {"DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=True,
    )
    seconds = time.perf_counter() - started
    figures: dict[str, Any] = json.loads(done.stdout)
    return figures | {"wall_seconds": seconds, "rows_per_s": figures["read"] / seconds}


async def _connect(db: Database) -> asyncpg.Connection:
    url = db.engine.url
    return await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )


async def _copy_into_events(db: Database, source: Path, folder: Path) -> dict[str, float]:
    """The DBA's baseline: the events of `source` with their customer ids looked up first (not
    timed), COPYed into `events` in one statement (timed), then TRUNCATEd again."""
    connection = await _connect(db)
    resolved = folder / "resolved.csv"
    try:
        owners = dict(
            await connection.fetch("SELECT value, customer_id FROM identities WHERE type = 'email'")
        )
        received = datetime.now(UTC).isoformat()
        with source.open(newline="") as inp, resolved.open("w", newline="") as out:
            reader, writer = csv.reader(inp), csv.writer(out)
            next(reader)
            for _type, email, kind, channel, at, properties, key in reader:
                writer.writerow((owners[email], kind, channel, at, received, properties, key))
        started = time.perf_counter()
        await connection.copy_to_table(
            "events", source=str(resolved), columns=EVENT_COLUMNS, format="csv"
        )
        seconds = time.perf_counter() - started
        rows = await connection.fetchval("SELECT count(*) FROM events")
        await connection.execute("TRUNCATE events")
    finally:
        await connection.close()
        resolved.unlink(missing_ok=True)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


async def _copy(db: Database, path: Path) -> dict[str, float]:
    connection = await _connect(db)
    try:
        await connection.execute(SCRATCH)
        started = time.perf_counter()
        await connection.copy_to_table(
            "bench_events_copy", source=str(path), format="csv", header=True
        )
        seconds = time.perf_counter() - started
        rows = await connection.fetchval("SELECT count(*) FROM bench_events_copy")
    finally:
        await connection.close()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def _statement_kind(statement: str) -> str:
    """A statement's verb and first table: SELECT identities, INSERT INTO events, ..."""
    words = re.sub(r"\s+", " ", statement.strip()).split(" ")
    verb = words[0].upper()
    table = next(
        (words[i + 1] for i, w in enumerate(words[:-1]) if w.upper() in ("FROM", "INTO", "UPDATE")),
        "",
    )
    if verb == "UPDATE":
        table = words[1]
    return f"{verb} {table.strip('(').strip(chr(34))}"


@contextmanager
def _timed_steps() -> Iterator[dict[str, float]]:
    """Wall-clock seconds spent in each of STEPS while the block runs."""
    spent = dict.fromkeys((label for _m, _a, label in STEPS), 0.0)
    saved = []
    for module_name, attribute, label in STEPS:
        module = importlib.import_module(module_name)
        original = getattr(module, attribute)
        saved.append((module, attribute, original))

        async def timed(*args: Any, _f: Any = original, _label: str = label, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return await _f(*args, **kw)
            finally:
                spent[_label] += time.perf_counter() - started

        setattr(module, attribute, timed)
    try:
        yield spent
    finally:
        for module, attribute, original in saved:
            setattr(module, attribute, original)


async def _profiled(
    db: Database, path: Path, batch: int | None, window: int | None
) -> dict[str, Any]:
    times: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
    starts: list[float] = []

    def before(*_args: Any) -> None:
        starts.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        spent = times[_statement_kind(statement)]
        spent[0] += 1
        spent[1] += time.perf_counter() - starts.pop()

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    event.listen(db.engine.sync_engine, "after_cursor_execute", after)
    profiler = cProfile.Profile()
    settings = Settings(database_url=_url(db))
    started = time.perf_counter()
    with _timed_steps() as steps:
        profiler.enable()
        result = await import_file(
            db,
            settings,
            kind="events",
            source=path,
            file_format="csv",
            batch_size=batch,
            rejects_path=default_rejects_path(path),
            window=window,
        )
        profiler.disable()
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    own = sorted(stats.items(), key=lambda item: -item[1][2])[:12]
    sql = sorted(times.items(), key=lambda item: -item[1][1])
    return {
        "events": result.read,
        "batches": result.batches,
        "seconds": total,
        "rows_per_s": result.read / total,
        "steps_seconds": dict(steps),
        "sql_seconds": {kind: {"statements": n, "seconds": s} for kind, (n, s) in sql[:15]},
        "sql_total_seconds": sum(s for _n, s in times.values()),
        "python_own_seconds_top": {
            f"{Path(f).parent.name}/{Path(f).name}:{line} {name}": tottime
            for (f, line, name), (_cc, _nc, tottime, _ct, _callers) in own
        },
    }


async def _run(args: argparse.Namespace, server: URL) -> dict[str, Any]:
    batch, window = args.batch, args.window
    with tempfile.TemporaryDirectory(prefix="c360-import-bench-") as folder:
        directory = Path(folder)
        people_csv, events_csv = directory / "people.csv", directory / "events.csv"
        profile_csv = directory / "profile.csv"
        _write_people(people_csv, args.people)
        _write_events(events_csv, args.events, args.people, "evt-")
        _write_events(profile_csv, args.profile_events, args.people, "prof-")
        async with fresh_database(server) as db:
            url = _url(db)
            customers = await asyncio.to_thread(_c360_import, url, "customers", people_csv, None)
            await checkpoint(server)
            copy_events = await _copy_into_events(db, events_csv, directory)
            await checkpoint(server)
            ours = await asyncio.to_thread(_c360_import, url, "events", events_csv, batch, window)
            derived: dict[str, Any] = {"skipped": args.skip_derived}
            if not args.skip_derived:
                started = time.perf_counter()
                derived["profiles"] = await drain(db)
                derived["seconds"] = time.perf_counter() - started
            await checkpoint(server)
            copy = await _copy(db, events_csv)
            profile = await _profiled(db, profile_csv, batch, window) if args.profile_events else {}
    return {
        "customers": customers,
        "import": ours,
        "derived": derived,
        "copy": copy,
        "copy_events": copy_events,
        "profile": profile,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench import", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events imported")
    parser.add_argument("--people", type=int, default=10_000, help="customers they belong to")
    parser.add_argument(
        "--batch", type=int, default=None, help="--batch-size of the import (default: its own)"
    )
    parser.add_argument(
        "--window", type=int, default=None, help="--window of the import (default: its own)"
    )
    parser.add_argument(
        "--skip-derived",
        action="store_true",
        help="leave the derived state of the imported profiles to no one (not timed)",
    )
    parser.add_argument("--suffix", default="", help="results file: import-<date><suffix>.json")
    parser.add_argument(
        "--profile-events", type=int, default=20_000, help="events imported under cProfile"
    )
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    server = server_url(args.database_url)
    load_before = os.getloadavg()[0]
    report = asyncio.run(_run(args, server))
    ours, copy, copy_events = report["import"], report["copy"], report["copy_events"]
    ratio = ours["rows_per_s"] / copy["rows_per_s"]
    ratio_events = ours["rows_per_s"] / copy_events["rows_per_s"]
    console = Console()
    table = Table(title=f"{args.events:,} events from CSV, {ours['batches']:,} batches")
    for column in ("what", "rows", "seconds", "rows/s"):
        table.add_column(column)
    table.add_row(
        "c360 import events",
        f"{ours['read']:,}",
        f"{ours['wall_seconds']:.1f}",
        f"{ours['rows_per_s']:,.0f}",
    )
    table.add_row(
        "COPY into a scratch table",
        f"{copy['rows']:,}",
        f"{copy['seconds']:.1f}",
        f"{copy['rows_per_s']:,.0f}",
    )
    table.add_row(
        "COPY into events (ids resolved)",
        f"{copy_events['rows']:,}",
        f"{copy_events['seconds']:.1f}",
        f"{copy_events['rows_per_s']:,.0f}",
    )
    console.print(table)
    console.print(
        f"import / COPY into a scratch table: [bold]{ratio:.3f}x[/bold]; "
        f"import / COPY into events: [bold]{ratio_events:.3f}x[/bold] (target 0.5x)"
    )
    derived = report["derived"]
    with_derived = None
    if not derived["skipped"]:
        with_derived = ours["read"] / (ours["wall_seconds"] + derived["seconds"])
        console.print(
            f"then derived state of {derived['profiles']:,} profiles: "
            f"{derived['seconds']:.1f} s; import and derived state / COPY: "
            f"{with_derived / copy['rows_per_s']:.3f}x"
        )
    people = report["customers"]
    console.print(
        f"c360 import customers: {people['read']:,} in {people['wall_seconds']:.1f} s "
        f"({people['rows_per_s']:,.0f} rows/s)"
    )
    if profile := report["profile"]:
        table = Table(
            title=f"where the time goes: {profile['events']:,} events in-process, "
            f"{profile['seconds']:.1f} s"
        )
        for column in ("step (cumulative)", "seconds", "share"):
            table.add_column(column)
        for label, seconds in profile["steps_seconds"].items():
            table.add_row(label, f"{seconds:.1f}", f"{seconds / profile['seconds']:.0%}")
        console.print(table)
        table = Table(title=f"SQL by statement kind ({profile['sql_total_seconds']:.1f} s in all)")
        for column in ("statement", "count", "seconds"):
            table.add_column(column)
        for kind, spent in profile["sql_seconds"].items():
            table.add_row(kind, f"{spent['statements']:,}", f"{spent['seconds']:.2f}")
        console.print(table)
        table = Table(title="Python: own time (cProfile tottime, profiler overhead included)")
        for column in ("function", "seconds"):
            table.add_column(column)
        for name, seconds in profile["python_own_seconds_top"].items():
            table.add_row(name, f"{seconds:.2f}")
        console.print(table)
    write_results(
        "import",
        {
            "args": vars(args) | {"database_url": "<server>"},
            "cpus": os.cpu_count(),
            "load_average": {"before": load_before, "after": os.getloadavg()[0]},
            "ratio_import_to_copy": ratio,
            "ratio_import_to_copy_into_events": ratio_events,
            "ratio_import_and_derived_to_copy": (
                with_derived / copy["rows_per_s"] if with_derived else None
            ),
            **report,
        },
        args.suffix,
    )
    return 0
