"""How the `c360` command reaches its database, and what it says when it can't.

Every command opens the database through `run` (or `migrate_database`), which
- resolves a relative SQLite path against the current directory and says which file is used;
- refuses a SQLite file that does not exist, unless the command creates the database
  (`migrate`, `seed-demo`, `demo`): aiosqlite would otherwise create an empty file and the
  command would fail further on, or worse, succeed against nothing;
- checks that the server answers and that the schema is at the head of the migration history
  before the command's work starts;
- turns any failure into one line and a hint, exit code 1. `--debug` (or C360_DEBUG=1) shows
  the traceback instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from service.bootstrap import ensure_reference_data
from service.settings import Settings
from store import migrate as migrations
from store.db import Database, async_url

console = Console(stderr=True)
T = TypeVar("T")
URL_HINT = (
    "set DATABASE_URL to postgresql://user:password@host:5432/name or sqlite:///path/to/c360.db"
)


class State:
    """Options of the `c360` command itself (set by its callback on every invocation)."""

    debug = False


def fail(message: str, hint: str | None = None) -> NoReturn:
    """One line on stderr (and a hint on the next), exit code 1."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    if hint:
        console.print(f"[dim]hint:[/dim] {escape(hint)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def safe_url(url: str | URL) -> str:
    return (url if isinstance(url, URL) else make_url(url)).render_as_string(hide_password=True)


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip() or type(error).__name__
    return text.splitlines()[0]


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Anything unexpected becomes one line (the traceback only with --debug)."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as error:
        if State.debug:
            raise
        fail(
            f"{type(error).__name__}: {_first_line(error)}",
            "run again with --debug (or C360_DEBUG=1) to see the traceback",
        )


def resolve_settings(*, creates: bool = False) -> Settings:
    """The settings, with the database URL checked and a SQLite path made absolute."""
    settings = Settings()
    raw = settings.database_url
    try:
        url = async_url(raw)
    except (ArgumentError, ValueError) as error:
        fail(f"bad DATABASE_URL {raw!r}: {_first_line(error)}", URL_HINT)
    if url.get_backend_name() != "sqlite":
        return settings
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        fail(f"bad DATABASE_URL {raw!r}: a SQLite database needs a file path", URL_HINT)
    path = (Path.cwd() / Path(database).expanduser()).resolve()
    console.print(
        f"[dim]database: SQLite file {escape(str(path))}[/dim]", highlight=False, soft_wrap=True
    )
    if not path.exists() and not creates:
        fail(
            f"no SQLite database at {path}",
            "run `c360 migrate` (or `make run`) to create it there, or set DATABASE_URL to "
            "the file you mean: sqlite:////absolute/path/c360.db",
        )
    resolved = make_url(raw).set(database=str(path)).render_as_string(hide_password=False)
    return settings.model_copy(update={"database_url": resolved})


async def _check(db: Database, url: str, *, migrated: bool) -> None:
    try:
        async with db.engine.connect() as connection:
            status = await migrations.migration_status(connection)
    except Exception as error:
        if State.debug:
            raise
        fail(
            f"cannot reach the database at {safe_url(url)}: {_first_line(error)}",
            "is the server running and does the database exist? Check DATABASE_URL "
            "(host, port, user, password, database name)",
        )
    if migrated and not status.ready:
        behind = len(status.missing)
        fail(
            f"the database at {safe_url(url)} is not migrated: it lacks revision "
            f"{status.missing[0]} ({behind} revision{'s' if behind > 1 else ''} behind)",
            "run `c360 migrate`",
        )


def run(work: Callable[[Database], Awaitable[T]], settings: Settings) -> T:
    """Check the database (reachable, migrated), then run `work` on it."""

    async def main() -> T:
        db = Database.from_url(settings.database_url)
        try:
            await _check(db, settings.database_url, migrated=True)
            return await work(db)
        finally:
            await db.dispose()

    with friendly_errors():
        return asyncio.run(main())


def migrate_database(settings: Settings) -> str:
    """Upgrade to head and add missing reference data; returns the head revision."""

    async def reachable() -> None:
        db = Database.from_url(settings.database_url)
        try:
            await _check(db, settings.database_url, migrated=False)
        finally:
            await db.dispose()

    with friendly_errors():
        asyncio.run(reachable())
        migrations.upgrade(settings.database_url)
    run(ensure_reference_data, settings)
    return ", ".join(migrations.head_revisions())
