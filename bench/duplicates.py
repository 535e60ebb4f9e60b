"""`python -m bench duplicates`: how right and how fast probable-duplicate detection is.

Accuracy: a population with known truth (bench.duplicates_population, 10,000 people by
default: a tenth reach us twice with no identifier in common, namesakes, typos, 600 strangers
from 20 shop kiosks) is loaded into a fresh PostgreSQL database, a full find-duplicates run
trains and scores, and the suggestions at the default threshold are checked against the truth:
precision, and recall of the true pairs (no identifier links any of them: every profile holds
its own email and phone).

Scale: the same generator at two sizes (100,000 and 1,000,000 profiles by default), each
loaded with COPY into its own fresh database, and the full run timed on each; the report gives
both times, their ratio against the size ratio and its square (sub-quadratic: the time ratio
stays well under the square), and the blocked pairs scored at each size.

Results go to bench/results/duplicates-<date>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import URL

from bench.common import DEFAULT_URL, checkpoint, fresh_database, server_url, write_results
from bench.duplicates_population import Profile, Shares, population, true_pairs
from domain.duplicates import runs
from service.settings import Settings
from store.db import Database
from store.models import DuplicateSuggestion


async def _load(db: Database, profiles: list[Profile]) -> float:
    """COPY the profiles into customers; the seconds it took."""
    started = time.perf_counter()
    url = db.engine.url
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        now = await connection.fetchval("SELECT now()")
        records = [
            (
                p.customer_id,
                "ACTIVE",
                p.first_name,
                p.last_name,
                p.email,
                p.phone,
                p.birthday,
                p.city,
                "{}",
                "{}",
                now,
                now,
                1,
            )
            for p in profiles
        ]
        columns = [
            "id",
            "status",
            "first_name",
            "last_name",
            "email",
            "phone",
            "birthday",
            "city",
            "attributes",
            "field_times",
            "created_at",
            "updated_at",
            "version",
        ]
        await connection.copy_records_to_table("customers", records=records, columns=columns)
        await connection.execute("ANALYZE customers")
    finally:
        await connection.close()
    return time.perf_counter() - started


async def _suggested(db: Database) -> set[tuple[str, str]]:
    async with db.read() as session:
        rows = await session.execute(
            select(DuplicateSuggestion.customer_a_id, DuplicateSuggestion.customer_b_id)
        )
        return {(str(a), str(b)) for a, b in rows.all()}


async def accuracy(server: URL, people: int, settings: Settings) -> dict[str, Any]:
    profiles = population(people, seed=11)
    truth = true_pairs(profiles)
    kiosk = {str(p.customer_id) for p in profiles if p.person < Shares().kiosk_groups * 30}
    async with fresh_database(server) as db:
        await _load(db, profiles)
        started = time.perf_counter()
        result = await runs.find_all(db, settings)
        seconds = time.perf_counter() - started
        found = await _suggested(db)
    right = found & truth
    wrong = found - truth
    report = {
        "people": people,
        "profiles": len(profiles),
        "true_pairs": len(truth),
        "threshold": settings.duplicate_threshold,
        "suggested": len(found),
        "true_suggested": len(right),
        "false_suggested": len(wrong),
        "false_among_kiosk_strangers": sum(a in kiosk or b in kiosk for a, b in wrong),
        "precision": round(len(right) / len(found), 4) if found else None,
        "recall": round(len(right) / len(truth), 4) if truth else None,
        "model_trained": result.trained,
        "seconds": round(seconds, 1),
    }
    print(json.dumps(report))
    return report


async def scale(server: URL, sizes: list[int], settings: Settings) -> dict[str, Any]:
    timings = []
    for size in sizes:
        # 10% of people come twice: this many people give about `size` profiles.
        profiles = population(round(size / 1.1), seed=size)
        async with fresh_database(server) as db:
            load = await _load(db, profiles)
            await checkpoint(server)
            started = time.perf_counter()
            result = await runs.find_all(db, settings)
            seconds = time.perf_counter() - started
        row = {
            "profiles": len(profiles),
            "load_seconds": round(load, 1),
            "find_duplicates_seconds": round(seconds, 1),
            "suggested": result.suggested,
        }
        print(json.dumps(row))
        timings.append(row)
        del profiles
    report: dict[str, Any] = {"runs": timings}
    if len(timings) == 2:
        small, large = timings
        size_ratio = large["profiles"] / small["profiles"]
        report["size_ratio"] = round(size_ratio, 2)
        report["time_ratio"] = round(
            large["find_duplicates_seconds"] / small["find_duplicates_seconds"], 2
        )
        report["quadratic_time_ratio"] = round(size_ratio**2, 1)
        report["sub_quadratic"] = report["time_ratio"] < size_ratio**2
    return report


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench duplicates", description=__doc__)
    parser.add_argument("--url", default=DEFAULT_URL, help="PostgreSQL server")
    parser.add_argument("--people", type=int, default=10_000, help="accuracy population")
    parser.add_argument(
        "--sizes", default="100000,1000000", help="profiles of the timed full runs ('' skips)"
    )
    parser.add_argument("--no-accuracy", action="store_true", help="only the timed runs")
    args = parser.parse_args(argv)
    server = server_url(args.url)
    settings = Settings(database_url=args.url)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    async def run() -> dict[str, Any]:
        report: dict[str, Any] = {"threshold": settings.duplicate_threshold}
        if not args.no_accuracy:
            report["accuracy"] = await accuracy(server, args.people, settings)
        if sizes:
            report["scale"] = await scale(server, sizes, settings)
        return report

    report = asyncio.run(run())
    write_results("duplicates", report)
    return 0
