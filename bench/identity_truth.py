"""Deterministic identity resolution against a population with known truth, on PostgreSQL.

People reach us several times, each visit carrying some of their own identifiers (email,
phone, their device). Some visits happen at a shop's kiosk: the kiosk's device id with the
shopper's own email or phone. Some carry a placeholder email (`null@null.com`, `test@...`).
Every visit goes through identifyBatch; then each visit's profile (merges followed) is compared
with the person who made it, over all pairs of visits:

- precision: of the pairs put on one profile, the share made by one person (target 1.0);
- recall: of the pairs made by one person, the share put on one profile; and the ceiling of
  deterministic rules, the share of them their own identifiers connect at all;
- profiles holding two people or more (target 0).

The run is made twice on fresh databases: device ids with their shared limit (1, the default)
and without any. It creates and drops its own databases (`c360_bench_<random>`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
from collections import Counter
from dataclasses import dataclass
from datetime import date
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy.engine import URL

from bench.common import DEFAULT_URL, fresh_database, server_url, write_results
from domain.identity.linking import IdentifyInput, identify_batch
from domain.identity.types import define_identity_type, list_identity_types
from domain.profile import live_customers
from store.db import Database

REGION, ACTOR = "CN", "bench"
PLACEHOLDERS = ("null@null.com", "test@shop.cn", "noreply@brand.com")


@dataclass(frozen=True, slots=True)
class Visit:
    person: int
    identities: tuple[tuple[str, str], ...]
    personal: frozenset[tuple[str, str]]  # the person's own identifiers in it


def population(people: int, kiosks: int, rng: random.Random) -> list[Visit]:
    """1 to 3 visits per person; 15% at a kiosk, 3% with a placeholder email too."""
    visits = []
    for n in range(people):
        own = {
            "email": ("email", f"p{n}@truth-mail.cn"),
            "phone": ("phone", f"+86137{n + 10_000_000:08d}"),
            "device_id": ("device_id", f"dev-{n:07d}"),
        }
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.15:
                mine = [own[rng.choice(("email", "phone"))]]
                extra = [("device_id", f"kiosk-{rng.randrange(kiosks):03d}")]
            else:
                kinds = rng.sample(["email", "phone", "device_id"], rng.randint(1, 3))
                mine, extra = [own[k] for k in kinds], []
            if rng.random() < 0.03:
                extra.append(("email", rng.choice(PLACEHOLDERS)))
            identities = [*mine, *extra]
            rng.shuffle(identities)
            visits.append(Visit(n, tuple(identities), frozenset(mine)))
    rng.shuffle(visits)
    return visits


def pairs(groups: Counter[Any]) -> int:
    return sum(k * (k - 1) // 2 for k in groups.values())


def ceiling_pairs(visits: list[Visit]) -> int:
    """Pairs of one person's visits that their own identifiers connect (union-find per person)."""
    parent: dict[int, int] = {}

    def find(i: int) -> int:
        while parent.setdefault(i, i) != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    holder: dict[tuple[str, str], int] = {}
    for index, visit in enumerate(visits):
        find(index)
        for key in visit.personal:
            if key in holder:
                parent[find(index)] = find(holder[key])
            else:
                holder[key] = index
    return pairs(Counter((visits[i].person, find(i)) for i in range(len(visits))))


async def _without_shared_limit(db: Database) -> None:
    from dataclasses import replace

    device = next(t for t in await list_identity_types(db) if t.key == "device_id")
    await define_identity_type(db, replace(device, shared_limit=None), REGION)


async def run(server: URL, visits: list[Visit], batch: int, limited: bool) -> dict[str, Any]:
    async with fresh_database(server) as db:
        if not limited:
            await _without_shared_limit(db)
        landed: list[Any] = []
        for start in range(0, len(visits), batch):
            chunk = visits[start : start + batch]
            inputs = [IdentifyInput(list(v.identities), None, "truth") for v in chunk]
            results = await identify_batch(db, inputs, region=REGION, actor=ACTOR)
            landed.extend(r.customer_id for r in results)
        live = await live_customers(db, [c for c in set(landed) if c is not None])
    profile_of = [live[c].id if c in live else None for c in landed]
    by_profile = Counter(p for p in profile_of if p is not None)
    by_cell = Counter((p, v.person) for p, v in zip(profile_of, visits, strict=True) if p)
    by_person = Counter(v.person for v in visits)
    people_per_profile = Counter(p for p, _ in by_cell)
    predicted, correct, true = pairs(by_profile), pairs(by_cell), pairs(by_person)
    return {
        "shared_limit": 1 if limited else None,
        "visits": len(visits),
        "landed_nowhere": profile_of.count(None),
        "profiles": len(by_profile),
        "precision": round(correct / predicted, 4) if predicted else 1.0,
        "recall": round(correct / true, 4) if true else 1.0,
        "recall_ceiling": round(ceiling_pairs(visits) / true, 4) if true else 1.0,
        "profiles_with_two_people_or_more": sum(1 for k in people_per_profile.values() if k > 1),
        "most_people_on_one_profile": max(people_per_profile.values(), default=0),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench identity_truth", description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--kiosks", type=int, default=40)
    parser.add_argument("--batch", type=int, default=500, help="inputs per identifyBatch call")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument(
        "--database-url", default=os.environ.get("C360_BENCH_DATABASE_URL", DEFAULT_URL)
    )
    args = parser.parse_args(argv)
    visits = population(args.people, args.kiosks, random.Random(args.seed))
    server = server_url(args.database_url)
    runs = [asyncio.run(run(server, visits, args.batch, limited)) for limited in (True, False)]
    table = Table(title=f"{args.people:,} people, {len(visits):,} visits, {args.kiosks} kiosks")
    for name in runs[0]:
        table.add_column(name.replace("_", " "))
    for figures in runs:
        table.add_row(*(str(v) for v in figures.values()))
    Console(width=200).print(table)
    report = {
        "date": date.today().isoformat(),
        "people": args.people,
        "kiosks": args.kiosks,
        "seed": args.seed,
        "runs": runs,
    }
    write_results("identity_truth", report)
    kept = runs[0]
    return 0 if kept["precision"] == 1.0 and kept["profiles_with_two_people_or_more"] == 0 else 1
