"""The `c360` command: serve, migrate, seed demo data, manage API keys, export the schema."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn
from rich.console import Console

from domain import metrics
from domain.access import create_api_key, parse_role
from domain.bootstrap import ensure_reference_data
from domain.demo import seed_demo as run_seed
from domain.errors import DomainError
from domain.profile import count_customers
from domain.settings import Settings
from store import migrate as migrations
from store.db import Database

app = typer.Typer(help="Customer-360 GraphQL API.", no_args_is_help=True)
apikey = typer.Typer(help="Create API keys.", no_args_is_help=True)
app.add_typer(apikey, name="apikey")
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
