"""Observability: a request id on every answer and every error, one structured log line per
operation (no traceback for a client's mistake), client disconnects logged as what they are,
and the Prometheus endpoint with who may read it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from strawberry.http.exceptions import WebSocketDisconnected
from websockets.asyncio.client import connect

from api.app import create_app
from api.resolvers import customers as customer_resolvers
from api.websockets import KeyedTransportWSHandler
from domain.access.keys import Role, authenticate
from domain.changes import Change, record_changes
from service.logs import configure_logging
from service.settings import Settings
from store.db import Database
from store.types import utcnow
from tests.api.test_limits import client_of
from tests.api.test_subscriptions import PROTOCOL
from tests.conftest import Api
from tests.servers import serve_asgi

NAMED = "query Everyone { customers(first: 2) { totalCount edges { node { id } } } }"


class Logs:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines() if line]

    def operations(self) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == "graphql operation"]

    @property
    def text(self) -> str:
        return self.stream.getvalue()


@pytest.fixture
def logs(api: Api, settings: Settings) -> Iterator[Logs]:
    captured = Logs()
    configure_logging(settings, captured.stream)
    yield captured
    configure_logging(settings)


def ids_in(body: dict[str, Any]) -> set[Any]:
    return {error["extensions"].get("requestId") for error in body["errors"]}


async def test_every_answer_carries_a_request_id_and_its_errors_name_it(
    api: Api, settings: Settings
) -> None:
    admin = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    ok = await api.post(NAMED)
    assert re.fullmatch(r"[0-9a-f]{32}", ok.headers["x-request-id"])
    answers = {
        "validation": await api.post("{ nope }"),
        "parse": await api.post("{"),
        "no key (401)": await api.client.post("/graphql", json={"query": "{ __typename }"}),
        "malformed JSON (400)": await api.client.post(
            "/graphql", content=b"{", headers={**admin, "content-type": "application/json"}
        ),
    }
    small = settings.model_copy(update={"max_body_bytes": 100, "cost_budget_per_minute": 1})
    async with client_of(small) as client:
        answers["too large (413)"] = await client.post(
            "/graphql", json={"query": "{ __typename }", "pad": "x" * 200}, headers=admin
        )
        answers["rate limited (429)"] = await client.post(
            "/graphql", json={"query": "{ customers(first: 5) { totalCount } }"}, headers=admin
        )
        answers["rate limited (429)"] = await client.post(
            "/graphql", json={"query": "{ customers(first: 5) { totalCount } }"}, headers=admin
        )
    assert answers["too large (413)"].status_code == 413
    assert answers["rate limited (429)"].status_code == 429
    for name, response in answers.items():
        request_id = response.headers.get("x-request-id")
        assert request_id, name
        assert ids_in(response.json()) == {request_id}, (name, response.json())


async def test_a_sane_incoming_request_id_is_kept_and_an_insane_one_replaced(api: Api) -> None:
    admin = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    kept = await api.client.post(
        "/graphql", json={"query": "{ nope }"}, headers={**admin, "X-Request-Id": "edge-42.a:b"}
    )
    assert kept.headers["x-request-id"] == "edge-42.a:b"
    assert ids_in(kept.json()) == {"edge-42.a:b"}
    for insane in ("a b", "x" * 129, "<script>", "line\tbreak"):
        replaced = await api.client.post(
            "/graphql", json={"query": "{ nope }"}, headers={**admin, "X-Request-Id": insane}
        )
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"]), insane


async def test_an_unavailable_database_answers_503_with_the_request_id(
    api: Api, settings: Settings
) -> None:
    gone = settings.model_copy(update={"database_url": "postgresql://nobody@127.0.0.1:1/none"})
    async with client_of(gone) as client:
        response = await client.post(
            "/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {api.keys[Role.ADMIN]}"},
        )
    assert response.status_code == 503, response.text
    assert ids_in(response.json()) == {response.headers["x-request-id"]}


async def test_one_log_line_per_operation_with_key_duration_statements_and_outcome(
    api: Api, db: Database, logs: Logs
) -> None:
    secret = api.keys[Role.ADMIN]
    principal = await authenticate(db, secret)
    assert principal is not None
    api.sql.reset()
    response = await api.client.post(
        "/graphql",
        json={"query": NAMED, "operationName": "Everyone"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200
    [line] = logs.operations()
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["key_id"] == str(principal.key_id)
    assert (line["operation_name"], line["operation_type"]) == ("Everyone", "query")
    assert line["outcome"] == "ok" and "error_codes" not in line
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    # every statement: the key is known (domain.access.key_cache), none precedes the operation
    assert line["statements"] == api.sql.count > 0
    assert line["level"] == "info" and "timestamp" in line
    assert secret.split("_", 2)[2] not in logs.text  # the secret's random part


async def test_client_mistakes_are_logged_without_a_traceback(api: Api, logs: Logs) -> None:
    await api.post("{")  # parse
    await api.post("{ nope }")  # validation
    await api.post("{ customers(first: 100000) { totalCount } }")  # a limit
    await api.post('mutation { revokeApiKey(id: "x") { errors { code } } }')  # a UserError
    await api.client.post("/graphql", json={"query": "{ __typename }"})  # 401
    outcomes = [(line["outcome"], line.get("error_codes")) for line in logs.operations()]
    assert outcomes[:3] == [
        ("error", ["GRAPHQL_PARSE_FAILED"]),
        ("error", ["GRAPHQL_VALIDATION_FAILED"]),
        ("error", ["PAGE_SIZE_EXCEEDED"]),
    ]
    assert "Traceback" not in logs.text and "exception" not in logs.text
    assert all(line["level"] in ("info", "debug") for line in logs.lines), logs.text


async def test_an_internal_error_is_logged_once_with_its_traceback(
    api: Api, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(customer_resolvers, "customers", broken)
    body = (await api.post("{ customers { totalCount } }")).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["INTERNAL_ERROR"]
    errors = [line for line in logs.lines if line["level"] == "error"]
    assert [line["event"] for line in errors] == [
        f"unexpected error [request {body['errors'][0]['extensions']['requestId']}]",
        "graphql operation",
    ]
    assert logs.text.count("Traceback") == 1 and "RuntimeError: a bug" in logs.text


async def test_a_client_gone_before_its_body_arrived_is_one_info_line(
    api: Api, logs: Logs, settings: Settings
) -> None:
    app = create_app(settings)
    configure_logging(settings, logs.stream)
    messages = [
        {"type": "http.request", "body": b'{"query": ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"authorization", f"Bearer {api.keys[Role.ADMIN]}".encode()),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("test", 80),
    }
    await app(scope, receive, send)
    await app.state.c360.close()
    assert [line["event"] for line in logs.lines] == ["client disconnected"]
    assert logs.lines[0]["level"] == "info" and "Traceback" not in logs.text


async def test_a_websocket_gone_mid_operation_is_no_error(
    api: Api, settings: Settings, logs: Logs
) -> None:
    app = create_app(settings.model_copy(update={"dispatch_interval_seconds": 0.02}))
    configure_logging(settings, logs.stream)
    async with serve_asgi(app) as base:
        url = base.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=[PROTOCOL]) as socket:
            assert socket.response.headers["x-request-id"]
            init = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
            await socket.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            query = "subscription { changes { id } }"
            await socket.send(
                json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}})
            )
            await asyncio.sleep(0.2)
            socket.transport.abort()  # gone, without a close frame
        await asyncio.sleep(0.3)
    assert not [line for line in logs.lines if line["level"] in ("error", "critical")], logs.text
    assert "Traceback" not in logs.text
    [closed] = [line for line in logs.lines if line["logger"] == "c360.websockets"]
    assert (closed["event"], closed["level"], closed["running_operations"]) == (
        "websocket closed",
        "info",
        1,
    )


async def test_websocket_errors_name_the_handshake_request_id(api: Api, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"dispatcher": False}))
    async with serve_asgi(app) as base:
        url = base.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=[PROTOCOL]) as socket:
            request_id = socket.response.headers["x-request-id"]
            init = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
            await socket.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            for n, query in enumerate(
                ("subscription { nope }", "{ customers(first: 100000) { totalCount } }")
            ):
                await socket.send(
                    json.dumps({"id": str(n), "type": "subscribe", "payload": {"query": query}})
                )
                message = json.loads(await socket.recv())
                assert message["type"] == "error", message
                assert {e["extensions"]["requestId"] for e in message["payload"]} == {request_id}


def samples(text: str, name: str) -> dict[str, float]:
    """`name`'s samples in an exposition: labels text -> value."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(\{{.*\}})? (\S+)", line)
        if match:
            found[match.group(1) or ""] = float(match.group(2))
    return found


async def test_metrics_cover_operations_errors_pool_outbox_webhooks_and_websockets(
    api: Api, db: Database
) -> None:
    await api.client.post(
        "/graphql",
        json={"query": NAMED, "operationName": "Everyone"},
        headers={"Authorization": f"Bearer {api.keys[Role.ADMIN]}"},
    )
    await api.post("{ nope }")
    await api.post("{ nope }")
    await api.client.post("/graphql", json={"query": "{ __typename }"})  # no key
    await api.client.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {api.keys[Role.ADMIN]}", "Accept": "text/csv"},
    )
    async with db.write() as session:
        await record_changes(
            session,
            [Change("customer.created", None, at=utcnow() - timedelta(seconds=90))],
        )
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    text = response.text
    latency = samples(text, "c360_graphql_operation_seconds_count")
    assert latency['{operation="Everyone",type="query"}'] == 1
    errors = samples(text, "c360_graphql_errors_total")
    assert errors['{code="GRAPHQL_VALIDATION_FAILED"}'] == 2
    assert errors['{code="UNAUTHENTICATED"}'] == errors['{code="NOT_ACCEPTABLE"}'] == 1
    pool = samples(text, "c360_db_pool_connections")
    assert set(pool) == {'{state="size"}', '{state="checked_out"}', '{state="overflow"}'}
    assert samples(text, "c360_outbox_events_waiting")[""] == 1
    assert 89 <= samples(text, "c360_outbox_lag_seconds")[""] < 600
    assert samples(text, "c360_webhook_deliveries") == {
        '{status="PENDING"}': 0,
        '{status="DEAD"}': 0,
    }
    assert samples(text, "c360_websocket_connections") == {"": 0}


async def test_metrics_are_for_loopback_clients_or_token_holders(
    api: Api, settings: Settings
) -> None:
    app = create_app(settings)
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=remote, base_url="http://test") as client:
        refused = await client.get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    await app.state.c360.close()

    app = create_app(settings.model_copy(update={"metrics_token": "scrape-me"}))
    remote = httpx.ASGITransport(app=app, client=("203.0.113.9", 4000))
    async with httpx.AsyncClient(transport=remote, base_url="http://test") as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert right.status_code == 200 and "c360_graphql_errors" in right.text
    await app.state.c360.close()


async def test_open_websockets_are_counted(api: Api, settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"dispatcher": False}))
    async with serve_asgi(app) as base:
        url = base.replace("http://", "ws://") + "/graphql"
        async with connect(url, subprotocols=[PROTOCOL]) as socket:
            init = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
            await socket.send(json.dumps({"type": "connection_init", "payload": init}))
            assert json.loads(await socket.recv())["type"] == "connection_ack"
            async with httpx.AsyncClient(base_url=base) as client:
                during = (await client.get("/metrics")).text
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=base) as client:
            after = (await client.get("/metrics")).text
    assert samples(during, "c360_websocket_connections") == {"": 1}
    assert samples(after, "c360_websocket_connections") == {"": 0}


WORKER = """
import sys
from api.metrics import Metrics
metrics = Metrics()
metrics.observe_operation("Everyone", "query", 0.01, ["RATE_LIMITED"])
metrics.websockets.inc()
"""
SCRAPE = """
from api.metrics import Metrics
from domain.changes import Backlog
from domain.derived.marks import Backlog as Behind
print(Metrics().exposition(Backlog(0, None), {}, Behind(0, None)).decode())
"""


def test_several_workers_are_added_up_through_the_multiprocess_directory(
    tmp_path: Path,
) -> None:
    """`serve --workers N` sets PROMETHEUS_MULTIPROC_DIR (cli.serving); each worker process
    writes there, and the one that answers a scrape reports them all."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", WORKER], env=env, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", SCRAPE], env=env, check=True, capture_output=True, text=True
    ).stdout
    latency = samples(scraped, "c360_graphql_operation_seconds_count")
    assert latency['{operation="Everyone",type="query"}'] == 2
    assert samples(scraped, "c360_graphql_errors_total")['{code="RATE_LIMITED"}'] == 2


async def test_an_unexpected_error_outside_graphql_is_a_coded_500_with_the_request_id(
    api: Api, settings: Settings, logs: Logs
) -> None:
    app = create_app(settings)
    configure_logging(settings, logs.stream)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug outside GraphQL")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom", headers={"X-Request-Id": "trace-me"})
    await app.state.c360.close()
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "trace-me"
    assert response.json() == {
        "errors": [
            {
                "message": "Internal error",
                "extensions": {"code": "INTERNAL_ERROR", "requestId": "trace-me"},
            }
        ]
    }
    [line] = [line for line in logs.lines if line["level"] == "error"]
    assert line["event"] == "unexpected error outside GraphQL [request trace-me]"
    assert "RuntimeError: a bug outside GraphQL" in line["exception"]


async def test_a_send_to_a_vanished_websocket_is_an_info_line(logs: Logs) -> None:
    """The race the test above rarely meets: an operation sends to a socket whose client has
    just vanished, before the socket's reader notices."""
    handler = KeyedTransportWSHandler.__new__(KeyedTransportWSHandler)
    await handler.handle_task_exception(WebSocketDisconnected())
    assert [(line["event"], line["level"]) for line in logs.lines] == [
        ("websocket client disconnected mid-operation", "info")
    ]
