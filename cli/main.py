"""The `c360` command: serve, migrate, seed demo data, manage API keys, export the schema."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console

from domain.access.keys import (
    create_api_key,
    list_api_keys,
    parse_key_id,
    parse_role,
    revoke_api_key,
)
from domain.activity import metrics
from domain.errors import DomainError
from domain.lifecycle.rules import SWEEP_BATCH_SIZE
from domain.lifecycle.rules import sweep as lifecycle_sweep
from domain.profile import count_customers
from service.bootstrap import ensure_reference_data
from service.demo import seed_demo as run_seed
from service.settings import Settings
from store import migrate as migrations
from store.db import Database

app = typer.Typer(help="Customer-360 GraphQL API.", no_args_is_help=True)
apikey = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(apikey, name="apikey")
lifecycle = typer.Typer(help="The lifecycle model.", no_args_is_help=True)
app.add_typer(lifecycle, name="lifecycle")
console = Console(stderr=True)
T = TypeVar("T")


def with_database(work: Callable[[Database], Awaitable[T]], settings: Settings) -> T:
    async def run() -> T:
        db = Database.from_url(settings.database_url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def prepare_database(settings: Settings) -> None:
    migrations.upgrade(settings.database_url)
    with_database(ensure_reference_data, settings)


@app.command()
def migrate() -> None:
    """Upgrade the database to the latest schema and add missing reference data."""
    settings = Settings()
    prepare_database(settings)
    console.print(f"[green]database is up to date[/green] ({_safe_url(settings.database_url)})")


@app.command("seed-demo")
def seed_demo(
    customers: Annotated[int, typer.Option(help="How many customers to create.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same data.")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when customers exist.")
    ] = False,
) -> None:
    """Fill the database with realistic demo customers, identities, orders and events."""
    settings = Settings()
    prepare_database(settings)

    async def work(db: Database) -> None:
        if if_empty and await count_customers(db):
            console.print("demo data: customers already present, nothing added")
            return
        summary = await run_seed(db, customers=customers, seed=seed)
        console.print(f"[green]demo data added[/green]: {summary}")

    with_database(work, settings)


@app.command("recompute-metrics")
def recompute_metrics() -> None:
    """Rebuild every profile's metrics from its events and orders, then the RFM scores."""
    settings = Settings()
    scored = with_database(metrics.recompute_all, settings)
    console.print(f"[green]metrics recomputed[/green]; {scored} customers with orders RFM-scored")


@app.command("refresh-segments")
def refresh_segments() -> None:
    """Recompute every materialized segment's members (the periodic job: run it from cron),
    recording who entered and left."""
    from domain.segments.definitions import refresh_all

    results = with_database(refresh_all, Settings())
    entered, exited = sum(r.entered for r in results), sum(r.exited for r in results)
    console.print(
        f"[green]refreshed[/green] {len(results)} segments: {entered} entered, {exited} exited"
    )


@app.command()
def sweep(
    batch_size: Annotated[int, typer.Option(help="Profiles per transaction.")] = SWEEP_BATCH_SIZE,
) -> None:
    """Run every lifecycle rule over all live profiles: time alone moves some ("no activity in
    180 days"); `serve` also does this every lifecycle_sweep_interval_seconds."""
    started = time.perf_counter()
    result = with_database(lambda db: lifecycle_sweep(db, batch_size=batch_size), Settings())
    seconds = time.perf_counter() - started
    console.print(
        f"[green]swept[/green] {result.customers} customers: "
        f"{result.transitions} stage transitions in {seconds:.1f}s"
    )


@app.command("sweep-tags")
def sweep_tags() -> None:
    """Remove expired tag assignments (recorded as EXPIRED) and re-evaluate every RULE tag over
    all profiles: conditions that time alone makes true need it; `serve` also does this every
    tag_sweep_interval_seconds."""
    from domain.tagging.bulk import sweep as tag_sweep

    started = time.perf_counter()
    result = with_database(tag_sweep, Settings())
    seconds = time.perf_counter() - started
    assigned = sum(r.assigned for r in result.rules)
    removed = sum(r.removed for r in result.rules)
    console.print(
        f"[green]swept tags[/green]: {result.expired} expired assignments removed; "
        f"{len(result.rules)} RULE tags: {assigned} assigned, {removed} removed in {seconds:.1f}s"
    )


@lifecycle.command("preset")
def lifecycle_preset(
    name: Annotated[str, typer.Argument(help="funnel or clm.")],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--map", help="OLD=NEW: where the customers of a dropped stage go."),
    ] = None,
    churn_days: Annotated[
        int | None, typer.Option(help="Days without any activity before a customer churns.")
    ] = None,
) -> None:
    """Replace the lifecycle model with a preset; customers of dropped stages need --map."""
    from domain.lifecycle.config import ModelRefused, apply_preset

    pairs = [item.partition("=") for item in mapping or []]
    if any(not old or not new for old, _, new in pairs):
        console.print("[red]--map takes OLD=NEW, such as --map awareness=acquisition[/red]")
        raise typer.Exit(2)
    stages = {old: new for old, _, new in pairs}
    try:
        model = with_database(
            lambda db: apply_preset(db, name, stages, churn_days=churn_days, actor="cli"),
            Settings(),
        )
    except DomainError as error:
        problems = error.errors if isinstance(error, ModelRefused) else (error,)
        for problem in problems:
            console.print(f"[red]{problem.code}[/red] {'.'.join(problem.field)}: {problem.message}")
        raise typer.Exit(2) from None
    console.print(
        f"[green]lifecycle model[/green] {name}: {' -> '.join(s.key for s in model.stages)}"
    )


@apikey.command("create")
def apikey_create(
    role: Annotated[str, typer.Option(help="admin, integration, frontend or partner.")],
    name: Annotated[str, typer.Option(help="Who or what the key is for.")],
) -> None:
    """Create a key; its secret is printed once, alone on the last line of stdout."""
    settings = Settings()
    try:
        new = with_database(lambda db: create_api_key(db, name, parse_role(role)), settings)
    except DomainError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    console.print(
        f"created {new.record.role.value} key [bold]{new.record.name}[/bold] ({new.record.id})"
    )
    print(new.secret)


@apikey.command("list")
def apikey_list() -> None:
    """Every key: id, role, name, secret prefix, created, revoked (secrets are not kept)."""
    for key in with_database(list_api_keys, Settings()):
        revoked = key.revoked_at.isoformat() if key.revoked_at else "-"
        print(
            f"{key.id}\t{key.role.value}\t{key.name}\t{key.prefix}\t"
            f"{key.created_at.isoformat()}\t{revoked}"
        )


@apikey.command("revoke")
def apikey_revoke(key_id: Annotated[str, typer.Argument(help="The key's id (see list).")]) -> None:
    """Revoke a key: it stops working at once, in every worker."""
    try:
        record = with_database(lambda db: revoke_api_key(db, parse_key_id(key_id)), Settings())
    except DomainError as error:
        console.print(f"[red]{error.message}[/red]")
        raise typer.Exit(2) from None
    console.print(f"revoked {record.role.value} key [bold]{record.name}[/bold] ({record.id})")


@app.command("export-schema")
def export_schema(
    path: Annotated[Path, typer.Argument(help="Where to write the SDL.")] = Path("schema.graphql"),
) -> None:
    """Write the served GraphQL schema (SDL) to schema.graphql."""
    from api.schema.root import build_schema

    path.write_text(build_schema().as_str() + "\n", encoding="utf-8")
    console.print(f"schema written to {path}")


@app.command()
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (needs PostgreSQL).")] = 1,
) -> None:
    """Run the API (GraphQL and GraphiQL at /graphql)."""
    settings = Settings()
    if workers > 1 and settings.database_url.startswith("sqlite"):
        console.print("[red]several workers need PostgreSQL: SQLite serves one process[/red]")
        raise typer.Exit(2)
    console.print(f"GraphiQL: [bold]http://{host}:{port}/graphql[/bold]")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers)


@app.command()
def dispatch() -> None:
    """Run the change dispatcher in this process: outbox to subscribers and webhooks, triggers."""
    from redis.asyncio import Redis

    from service.dispatcher import Dispatcher
    from store.pubsub import changes_channel, create_broker

    settings = Settings()
    if not settings.redis_url:
        console.print("no REDIS_URL: subscribers of other processes will not see these events")

    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        db = Database.from_url(settings.database_url)
        redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        broker = create_broker(redis, changes_channel(settings.database_url))
        try:
            await Dispatcher(db, broker, settings).run()
        finally:
            await broker.close()
            await db.dispose()
            if redis is not None:
                await redis.aclose()

    console.print(f"dispatching changes from {_safe_url(settings.database_url)}")
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run())


@app.command()
def demo(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option()] = 8000,
) -> None:
    """Migrate, seed demo data once, create an admin key, and serve: the quickest look."""
    settings = Settings()
    prepare_database(settings)

    async def work(db: Database) -> str:
        if not await count_customers(db):
            console.print("seeding demo data ...")
            console.print(f"[green]demo data added[/green]: {await run_seed(db)}")
        return (await create_api_key(db, "demo", parse_role("admin"))).secret

    secret = with_database(work, settings)
    console.rule("customer-360")
    console.print(f"GraphiQL:  [bold]http://{host}:{port}/graphql[/bold]")
    console.print(f"Admin key: [bold]{secret}[/bold]")
    console.print('In GraphiQL, open Headers and set {"Authorization": "Bearer <admin key>"}')
    console.rule()
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
