"""Running the Alembic history programmatically (the CLI and the tests use this).

Alembic's env runs its own event loop, so upgrade and downgrade are plain synchronous
functions: call them outside a running loop. `migration_status` only reads the script
directory and `alembic_version`, for readiness.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from store.db import is_not_migrated
from store.partitions import EVENT_KEYS, is_partition

ROOT = Path(__file__).resolve().parent.parent


def alembic_config(database_url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def compared(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate's filter: indexes on expressions (the coalesced sort keys) are written by
    hand in their migration, and PostgreSQL reflects them as text that never compares equal
    to the model's expression; so are indexes and unique constraints of one dialect
    (`ddl_if`), which the other never has; events' monthly partitions on PostgreSQL are
    made by migration and by `serve` (store.partitions), not by the models, and so is their
    table of idempotency keys (`event_keys`, kept by triggers); everything else is compared."""
    if type_ == "table" and reflected and (is_partition(name) or name == EVENT_KEYS):
        return False
    if type_ == "unique_constraint" and any(
        getattr(each, "_ddl_if", None) is not None for each in (obj, compare_to)
    ):
        return False
    if type_ == "index":
        index = obj if obj is not None else compare_to
        if getattr(index, "_ddl_if", None) is not None or index.table.name == EVENT_KEYS:
            return False
        expressions = getattr(index, "expressions", ())
        if any(not isinstance(e, (Column, str)) for e in expressions):
            return False
    return True


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where a database stands in the Alembic history: `missing` lists the revisions it lacks
    (newest first), empty when it is at head."""

    current: tuple[str, ...]
    head: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return not self.missing


@functools.cache
def _scripts() -> ScriptDirectory:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    return ScriptDirectory.from_config(config)


def head_revisions() -> tuple[str, ...]:
    """The head of the migration history shipped with this code (read once per process)."""
    return tuple(sorted(_scripts().get_heads()))


def missing_revisions(current: Iterable[str]) -> tuple[str, ...]:
    """The revisions between `current` (none: an empty database) and head, newest first."""
    applied = tuple(current)
    lower = applied[0] if len(applied) == 1 else ("base" if not applied else None)
    if lower is None:  # several branches applied: compare revision sets instead
        upgrades = {r.revision for r in _scripts().walk_revisions()}
        below = set()
        for revision in applied:
            below |= {r.revision for r in _scripts().iterate_revisions(revision, "base")}
        return tuple(sorted(upgrades - below))
    heads = head_revisions()
    return tuple(
        r.revision for r in _scripts().iterate_revisions(heads, lower) if r.revision not in applied
    )


async def migration_status(connection: AsyncConnection) -> MigrationStatus:
    """Read `alembic_version` (a missing table means an unmigrated database)."""
    try:
        rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        current = tuple(sorted(row[0] for row in rows))
    except DBAPIError as error:
        if not is_not_migrated(error):
            raise
        current = ()
    return MigrationStatus(current, head_revisions(), missing_revisions(current))
