"""OpenTelemetry tracing (service.tracing): off by default; when on, a span per GraphQL
operation named for it, and a span per SQL statement beneath it. Checked with the SDK's
in-memory exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.app import create_app
from domain.access.keys import Role
from service.settings import Settings
from service.tracing import tracer_provider
from tests.conftest import Api

NAMED = "query Everyone { customers(first: 2) { totalCount edges { node { id identities { type } } } } }"


@pytest.fixture
async def traced(
    api: Api, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = create_app(settings, tracing=provider)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client, exporter
    await app.state.c360.close()


async def test_a_span_per_operation_and_one_per_statement_beneath_it(
    api: Api, traced: tuple[httpx.AsyncClient, InMemorySpanExporter]
) -> None:
    client, exporter = traced
    response = await client.post(
        "/graphql",
        json={"query": NAMED, "operationName": "Everyone"},
        headers={"Authorization": f"Bearer {api.keys[Role.ADMIN]}"},
    )
    assert response.status_code == 200
    spans = exporter.get_finished_spans()
    [operation] = [span for span in spans if span.name == "query Everyone"]
    assert operation.attributes is not None
    assert operation.attributes["graphql.operation.type"] == "query"
    assert operation.attributes["graphql.operation.name"] == "Everyone"
    beneath = [
        s for s in spans if s.parent is not None and s.parent.span_id == operation.context.span_id
    ]
    assert beneath, [s.name for s in spans]
    assert all(s.attributes and s.attributes["db.statement"] for s in beneath)
    assert {s.name for s in beneath} <= {"SELECT", "WITH"}
    # the key lookup precedes the operation: its statement is a span of its own
    assert len(spans) == 1 + len(beneath) + 1


async def test_a_failed_operation_span_carries_its_codes(
    api: Api, traced: tuple[httpx.AsyncClient, InMemorySpanExporter]
) -> None:
    client, exporter = traced
    await client.post(
        "/graphql",
        json={"query": "{ nope }"},
        headers={"Authorization": f"Bearer {api.keys[Role.ADMIN]}"},
    )
    [operation] = [s for s in exporter.get_finished_spans() if s.name == "query"]
    assert operation.attributes is not None
    assert list(operation.attributes["graphql.error.codes"]) == ["GRAPHQL_VALIDATION_FAILED"]
    assert not operation.status.is_ok


def test_tracing_is_off_unless_an_exporter_is_named(settings: Settings) -> None:
    assert Settings().tracing == "off"
    assert tracer_provider(settings) is None
    for exporter in ("console", "otlp"):
        provider = tracer_provider(settings.model_copy(update={"tracing": exporter}))
        assert isinstance(provider, TracerProvider)
        provider.shutdown()


async def test_no_spans_while_tracing_is_off(api: Api) -> None:
    await api.query("{ customers { totalCount } }")
    assert api.client._transport.app.state.c360.tracer is None  # type: ignore[attr-defined]
