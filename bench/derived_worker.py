"""`python -m bench.derived_worker URL FILE`: the derived-state worker (service.deriving) as
`c360 work` runs it, appending one JSON line per batch to FILE: when it committed (epoch
seconds), how long each of its profiles had waited, from its mark to that commit, and how
long the batch took (claim to commit). The benchmarks read the lag of derived state and the
worker's throughput from there (bench.derived_setting)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time

from domain.derived.batches import BatchResult
from service.deriving import DerivedWorker
from service.settings import Settings
from store.db import Database


async def _run(url: str, path: str) -> None:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    db = Database.from_url(url)
    with open(path, "a", encoding="utf-8") as out:

        def record(result: BatchResult) -> None:
            batch = {"at": time.time(), "lags": result.lags, "seconds": result.seconds}
            out.write(json.dumps(batch) + "\n")
            out.flush()

        try:
            await DerivedWorker(db, Settings(database_url=url), on_batch=record).run()
        finally:
            await db.dispose()


if __name__ == "__main__":
    with contextlib.suppress(asyncio.CancelledError):
        asyncio.run(_run(sys.argv[1], sys.argv[2]))
