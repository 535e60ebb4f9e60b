"""GraphiQL in headless Chromium against a real server: the page loads from the service alone
(no CDN), runs a query over HTTP and a subscription over graphql-transport-ws, and leaves a
screenshot at build/graphiql.png (docs/graphiql.png is a committed copy). Chromium is driven
over the DevTools protocol; without /usr/bin/chromium the test skips, except under CI=true,
where it fails (.ci/run installs Debian's `chromium`)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from api.app import create_app
from domain.access.keys import Role, create_api_key
from service.settings import Settings
from store.db import Database
from tests.servers import ROOT, serve_asgi

FAST = {"dispatch_interval_seconds": 0.02, "trigger_interval_seconds": 3600.0}
SCREENSHOT = ROOT / "build" / "graphiql.png"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
    "--window-size=1280,800",
]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: Debian's `chromium` is not installed (.ci/run installs it)")
        pytest.skip("no chromium on PATH (apt-get install chromium); CI=true makes this a failure")
    return found


class Page:
    """One DevTools-protocol session on a page target."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        await self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(await asyncio.wait_for(self.socket.recv(), 10))
            if message.get("id") == ident:
                assert "error" not in message, message
                return message["result"]  # type: ignore[no-any-return]

    async def eval(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = await self.eval(expression)
            if value:
                return value
            await asyncio.sleep(0.1)
        seen = await self.eval("document.body ? document.body.innerText.slice(0, 300) : ''")
        raise AssertionError(f"timed out waiting for {what}; the page shows {seen!r}")

    async def open(self, url: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.wait_for("!!document.querySelector('.graphiql-execute-button')", "GraphiQL")

    async def response_text(self) -> str:
        return await self.eval(  # type: ignore[no-any-return]
            "(document.querySelector('.result-window') || {}).innerText || ''"
        )


@asynccontextmanager
async def browser(tmp_path: Path) -> AsyncIterator[Page]:
    profile = tmp_path / "chromium-profile"
    process = subprocess.Popen(
        [chromium(), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, "chromium exited"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            await asyncio.sleep(0.05)
        port = port_file.read_text().split()[0]
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{port}/json/list")).json()
        target = next(t for t in targets if t["type"] == "page")
        async with connect(target["webSocketDebuggerUrl"], max_size=None) as socket:
            page = Page(socket)
            await page.call("Page.enable")
            await page.call("Runtime.enable")
            yield page
    finally:
        process.kill()
        process.wait(timeout=10)


async def test_graphiql_runs_a_query_and_a_subscription_from_the_service_alone(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    key = (await create_api_key(db, "graphiql", Role.ADMIN)).secret
    app = create_app(settings.model_copy(update=FAST | {"graphiql": True}))
    async with serve_asgi(app) as url, browser(tmp_path) as page:
        headers = json.dumps({"Authorization": f"Bearer {key}"})
        await page.open(url + "/graphql")
        await page.eval(
            f"localStorage.clear(); localStorage.setItem('graphiql:headers', {json.dumps(headers)})"
        )
        outside = await page.eval(
            "performance.getEntriesByType('resource').map(e => e.name)"
            f".filter(n => !n.startsWith({json.dumps(url)}))"
        )
        assert outside == [], f"GraphiQL loaded from elsewhere: {outside}"

        async with httpx.AsyncClient(base_url=url) as client:
            identify = {
                "query": 'mutation($e: String!) { identify(input: {identities: [{type: "email", value: $e}]}) { errors { code } } }',
                "variables": {"e": "first@example.com"},
            }
            auth = {"Authorization": f"Bearer {key}"}
            assert (await client.post("/graphql", json=identify, headers=auth)).status_code == 200

            await page.open(url + "/graphql?q=" + quote("{ customers(first: 1) { totalCount } }"))
            await page.eval("document.querySelector('.graphiql-execute-button').click()")
            text = await page.wait_for(
                "(document.querySelector('.result-window') || {}).innerText || ''",
                "the query's result",
            )
            await page.wait_for(
                "((document.querySelector('.result-window') || {}).innerText || '').includes('totalCount')",
                f"the query's result (saw {text!r})",
            )
            assert '"totalCount": 1' in await page.response_text()

            subscription = (
                'subscription { changes(kinds: ["customer.created"]) { kind customerId } }'
            )
            editor = "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror"
            await page.eval(
                f"{editor}.setValue({json.dumps(subscription)})"
            )  # same tab, same headers
            await page.eval("document.querySelector('.graphiql-execute-button').click()")
            for n in range(50):  # until the subscription is live
                identify["variables"] = {"e": f"browser{n}@example.com"}
                await client.post("/graphql", json=identify, headers=auth)
                await asyncio.sleep(0.2)
                if "customer.created" in await page.response_text():
                    break
            else:
                raise AssertionError(f"no event reached GraphiQL: {await page.response_text()!r}")
        shot = await page.call("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.write_bytes(base64.b64decode(shot["data"]))
