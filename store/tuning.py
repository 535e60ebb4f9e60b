"""Session settings for bulk work: a few large generated statements over many rows (the funnel
report, a lifecycle sweep batch).

PostgreSQL's defaults suit many small queries. For bulk work they misfire: a 4 MB work_mem
sends the sorts of a report over millions of rows to disk, and the JIT compiler, triggered by
the high cost estimate of a wide generated CASE, spends seconds compiling what runs in
milliseconds. SET LOCAL changes them for the current transaction alone. SQLite has neither.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

BULK_WORK_MEM = "256MB"


async def tune_for_bulk(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(f"SET LOCAL work_mem = '{BULK_WORK_MEM}'"))
        await session.execute(text("SET LOCAL jit = off"))


async def no_nested_loops(session: AsyncSession) -> None:
    """For the rest of the transaction, join without nested loops (PostgreSQL).

    An INSERT ... SELECT ... WHERE NOT EXISTS over the table it inserts into (a tag assigned
    to a whole segment, a RULE tag evaluated over everyone) planned as a nested loop from the
    statistics of an empty or small table rescans, for every row, the rows the statement has
    inserted so far: quadratic (200,000 rows: minutes instead of seconds). A hash anti-join
    reads the table once."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL enable_nestloop = off"))
