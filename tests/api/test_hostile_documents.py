"""Documents built to amplify are refused with a code at once, by passes linear in their size;
and no request executes past its deadline (C360_REQUEST_TIMEOUT_SECONDS).

Linear is checked by counting the nodes each pre-execution pass visits, not by timing them.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import pytest
import strawberry
from graphql import FieldNode, FragmentDefinitionNode, OperationDefinitionNode, parse
from sqlalchemy import text

from api.execution import FastExecutionContext
from api.lookahead import _Walk as Lookahead
from api.query_measure import _Walk as MeasureWalk
from api.resolvers import customers as customer_resolvers
from api.schema.root import build_schema
from domain.access.keys import Role
from service.settings import Settings
from tests.api.test_limits import client_of, post
from tests.conftest import Api


def fan_out(levels: int) -> str:
    """The probe's document: each fragment spreads the one below twice, used under a page."""
    fragments = ["fragment F0 on Customer { id displayName }"]
    fragments += [
        f"fragment F{n} on Customer {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"{{ customers(first: 1) {{ edges {{ node {{ ...F{levels} }} }} }} }}\n" + "\n".join(
        fragments
    )


def _parts(document: str) -> tuple[OperationDefinitionNode, dict[str, FragmentDefinitionNode]]:
    parsed = parse(document)
    fragments = {
        d.name.value: d for d in parsed.definitions if isinstance(d, FragmentDefinitionNode)
    }
    operation = next(d for d in parsed.definitions if isinstance(d, OperationDefinitionNode))
    return operation, fragments


def test_the_lookahead_visits_each_node_of_a_fan_out_document_a_bounded_number_of_times() -> None:
    for levels in (10, 39):
        operation, fragments = _parts(fan_out(levels))
        customers = operation.selection_set.selections[0]
        assert isinstance(customers, FieldNode)
        walk = Lookahead(fragments)
        names = walk.below([customers.selection_set], ("edges", "node"))
        assert names == {"id", "displayName"}
        # Two spreads per fragment, each read once per step of the path: linear in size.
        assert walk.visits <= 4 * (2 * levels + 4), (levels, walk.visits)


def test_the_measure_counts_the_expanded_size_without_expanding() -> None:
    schema = build_schema()._schema
    operation, fragments = _parts(fan_out(39))
    walk = MeasureWalk(schema, fragments, {}, 50)
    found = walk.selections(operation.selection_set, schema.query_type)
    assert found.fields == 3 + 2 * 2**39
    assert walk.visits <= 2 * (2 * 39 + 4), walk.visits


async def test_a_fan_out_document_is_refused_as_too_complex_before_any_resolver_runs(
    api: Api,
) -> None:
    api.sql.reset()
    response = await api.post(fan_out(39), role=Role.PARTNER)
    body = response.json()
    assert response.status_code == 200, body
    assert body.get("data") is None, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"], body
    assert all("api_keys" in sql for sql in api.sql.statements), api.sql.statements


async def test_a_fan_out_document_within_the_limit_runs(api: Api) -> None:
    data = await api.query(fan_out(4))
    assert data == {"customers": {"edges": []}}


def repeated(times: int) -> str:
    """One field selected `times` times in one selection set, through two fragments (graphql-core's
    validation compares such fields pairwise: hundreds of them, with differing arguments, take
    it seconds)."""
    half = [f"events(first: {n}) {{ edges {{ cursor }} }}" for n in range(times)]
    return (
        '{ customer(id: "x") { ...A ...B } }\n'
        f"fragment A on Customer {{ {' '.join(half[: times // 2])} }}\n"
        f"fragment B on Customer {{ {' '.join(half[times // 2 :])} }}"
    )


async def test_a_field_repeated_past_the_limit_in_one_selection_set_is_refused(
    api: Api, settings: Settings
) -> None:
    body = (await api.post(repeated(21))).json()
    assert [e["extensions"]["code"] for e in body["errors"]] == ["QUERY_TOO_COMPLEX"], body
    body = (await api.post(repeated(20))).json()
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", body
    async with client_of(settings.model_copy(update={"max_repeated_fields": 4})) as client:
        body = (await post(client, api.keys[Role.ADMIN], repeated(5))).json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body


async def test_the_expanded_size_limit_comes_from_settings(api: Api, settings: Settings) -> None:
    async with client_of(settings.model_copy(update={"max_fields": 20})) as client:
        body = (await post(client, api.keys[Role.ADMIN], fan_out(4))).json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX", body
        ok = (await post(client, api.keys[Role.ADMIN], fan_out(2))).json()
        assert ok == {"data": {"customers": {"edges": []}}}, ok


@strawberry.type
class _Item:
    n: int

    @strawberry.field
    def slow(self, info: strawberry.Info) -> int:
        """Synchronous work that never yields to the event loop; the deadline passes at the
        tenth item."""
        info.context.completed += 1
        if info.context.completed == 10:
            info.context.deadline = time.monotonic() - 1
        return self.n


@strawberry.type
class _Query:
    @strawberry.field
    def items(self) -> list[_Item]:
        return [_Item(n=n) for n in range(1000)]


@dataclass
class _Context:
    deadline: float | None = None
    completed: int = 0


async def test_the_deadline_ends_synchronous_completion_with_one_timeout_error() -> None:
    schema = strawberry.Schema(query=_Query, execution_context_class=FastExecutionContext)
    context = _Context(deadline=time.monotonic() + 60)
    result = await schema.execute("{ items { n slow } }", context_value=context)
    assert result.data is None
    assert [e.extensions for e in result.errors or []] == [{"code": "TIMEOUT"}]
    assert context.completed == 10, "no object completes once the deadline has passed"


async def test_a_request_past_its_deadline_gets_a_timeout_error_and_its_statement_is_cancelled(
    api: Api, settings: Settings, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that waits on a slow statement (PostgreSQL: pg_sleep) or on anything else."""
    db = api.db

    async def slow(*_args: Any, **_kwargs: Any) -> Any:
        if backend == "postgresql":
            async with db.read() as session:
                await session.execute(text("SELECT pg_sleep(30)"))
        else:
            await asyncio.sleep(30)
        raise AssertionError("the deadline should have cut this short")

    monkeypatch.setattr(customer_resolvers, "customers", slow)
    async with client_of(settings.model_copy(update={"request_timeout_seconds": 0.3})) as client:
        response = await post(client, api.keys[Role.ADMIN], "{ customers { totalCount } }")
    body = response.json()
    assert response.status_code == 200, body
    assert [e["extensions"]["code"] for e in body["errors"]] == ["TIMEOUT"], body
    assert body["data"] is None
    if backend == "postgresql":
        async with db.read() as session:
            running = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%'"
                )
            )
        assert running == 0, "the statement was cancelled on the server"
