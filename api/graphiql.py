"""GraphiQL served by the service itself: the page (GET /graphql from a browser, when
C360_GRAPHIQL is on) and its assets under /graphql/assets/, vendored in api/static/graphiql/
(versions and licences in its LICENSES file). Nothing is loaded from a CDN, so the page works
on a network that reaches only the service."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

ASSETS = Path(__file__).parent / "static" / "graphiql"
ASSETS_PATH = "/graphql/assets"


@cache
def page() -> str:
    return (ASSETS / "index.html").read_text(encoding="utf-8")


def mount_assets(app: FastAPI) -> None:
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS), name="graphiql-assets")
