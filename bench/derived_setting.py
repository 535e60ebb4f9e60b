"""The setting issue 19 measures writes in, and the derived-state worker beside them.

The setting: 20 RULE tags (bench.tags.rules: attributes, metrics, stages), the default
lifecycle model (the reference data's), and 10 materialized segments (metrics, and RULE tags
read back). The worker runs as its own process (bench.derived_worker: `c360 work` that also
writes down its batches), so its work costs the timed writes only what it costs the database
and the machine. The lag of a profile is the time from the write that marked it to the commit
of the batch that brought it up to date, as the worker measured it; a phase's lags are those
of the batches committed from its start until the backlog is drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.tags import rules
from domain import tags
from domain.derived import marks
from domain.segments import definitions as segments
from domain.tags import TagSpec
from store.db import Database

SAMPLE_SECONDS = 0.05  # how often the drain is checked
RULE_TAGS, SEGMENTS = 20, 10


async def define_setting(db: Database, rule_tags: int = RULE_TAGS, count: int = SEGMENTS) -> None:
    """RULE tags and materialized segments (the default lifecycle is already there)."""
    keys = []
    for key, condition, _sql in rules(rule_tags):
        await tags.define_tag(db, TagSpec(key=key, name=key, kind="RULE", condition=condition))
        keys.append(key)
    for i in range(count):
        condition: dict[str, Any]
        if i % 2 and keys:
            condition = {"tag": {"key": keys[i % len(keys)]}}
        else:
            condition = {"metric": {"name": "FREQUENCY", "op": "GTE", "value": 1 + i // 2}}
        draft = segments.SegmentDraft(f"seg_{i:02d}", f"Segment {i}", None, condition, True)
        await segments.define_segment(db, draft)


@dataclass
class Lag:
    """Every profile's lag in a phase, and how long the backlog took to drain once the
    writes were done."""

    samples: list[float] = field(default_factory=list)
    drained_after_s: float | None = None
    batch_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.samples) or [0.0]
        busy = sum(self.batch_seconds)

        def at(q: float) -> float:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

        return {
            "profiles": len(self.samples),
            "p50_s": at(0.50),
            "p99_s": at(0.99),
            "max_s": round(ordered[-1], 3),
            "mean_s": round(statistics.fmean(ordered), 3),
            "drained_after_writes_s": self.drained_after_s,
            # The worker's throughput while it works (profiles over the time its batches
            # took, claim to commit), and its batches.
            "worker_profiles_per_s": round(len(self.samples) / busy, 1) if busy else None,
            "batches": len(self.batch_seconds),
            "batch_p50_s": round(statistics.median(self.batch_seconds or [0.0]), 3),
            "batch_max_s": round(max(self.batch_seconds or [0.0]), 3),
        }


async def drained(db: Database, lag: Lag | None = None, timeout: float = 600.0) -> None:
    """Until no profile is dirty; with `lag`, its drain time and samples."""
    started = time.perf_counter()
    while (await marks.backlog(db)).profiles:
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the derived-state worker did not drain its backlog")
        await asyncio.sleep(SAMPLE_SECONDS)
    if lag is not None:
        lag.drained_after_s = round(time.perf_counter() - started, 3)


@dataclass
class Worker:
    """The worker process's batch log."""

    log: Path

    def batches_since(self, start: float) -> list[dict[str, Any]]:
        """The batches committed since `start` (epoch seconds): at, lags, seconds."""
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [batch for batch in map(json.loads, lines) if batch["at"] >= start]


@contextlib.asynccontextmanager
async def worker_process(db: Database) -> AsyncIterator[Worker]:
    """The derived-state worker against this database, in its own process, until the block
    ends."""
    url = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "batches.jsonl"
        log.touch()
        command = [sys.executable, "-m", "bench.derived_worker", url, str(log)]
        env = {**os.environ, "C360_LOG_LEVEL": "WARNING"}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        try:
            yield Worker(log)
        finally:
            process.terminate()
            await asyncio.to_thread(process.wait, 30)


@contextlib.asynccontextmanager
async def sampling(db: Database, worker: Worker) -> AsyncIterator[Lag]:
    """The lags of the profiles brought up to date from the start of the block until the
    worker has drained the backlog after it."""
    lag = Lag()
    start = time.time()
    yield lag
    await drained(db, lag)
    done = worker.batches_since(start)
    lag.samples = [waited for batch in done for waited in batch["lags"]]
    lag.batch_seconds = [batch["seconds"] for batch in done]


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
