"""Running the Alembic history programmatically (the CLI and the tests use this).

Alembic's env runs its own event loop, so these are plain synchronous functions: call them
outside a running loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Column

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
    to the model's expression; everything else is compared."""
    if type_ == "index":
        index = obj if obj is not None else compare_to
        expressions = getattr(index, "expressions", ())
        if any(not isinstance(e, (Column, str)) for e in expressions):
            return False
    return True
