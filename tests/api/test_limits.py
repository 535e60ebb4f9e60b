"""Limits: every hostile document is refused with its code before any resolver runs, and each
key spends a per-minute cost budget (shared through Redis, per process without it).

"Before any resolver runs" is checked by counting SQL: the only statement such a request may
cost is the API-key lookup that authenticates it, before GraphQL starts (api.auth).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from api.app import create_app
from api.ids import to_global_id
from domain.access.keys import Role
from service.settings import Settings
from tests.conftest import Api

NOBODY = to_global_id("Customer", uuid.UUID(int=0))


def nested(levels: int) -> str:
    """customer -> merges -> survivor -> merges -> ... `levels` fields deep."""
    path = ["merges" if n % 2 == 0 else "survivor" for n in range(levels - 2)]
    inner = "id"
    for name in reversed(path):
        inner = f"{name} {{ {inner} }}"
    return f'{{ customer(id: "{NOBODY}") {{ {inner} }} }}'


def doubling_fragments(levels: int, leaf: str) -> str:
    """F0 holds `leaf`; each next fragment spreads the one below twice."""
    fragments = [f"fragment F0 on Query {{ {leaf} }}"]
    fragments += [
        f"fragment F{n} on Query {{ ...F{n - 1} ...F{n - 1} }}" for n in range(1, levels + 1)
    ]
    return f"query {{ ...F{levels} }}\n" + "\n".join(fragments)


def deep_fragments(levels: int) -> str:
    """Depth hidden in a chain of fragments, each one field deeper."""
    fragments = [
        f"fragment D{n} on Customer {{ merges {{ survivor {{ ...D{n + 1} }} }} }}"
        for n in range(levels)
    ]
    fragments.append(f"fragment D{levels} on Customer {{ id }}")
    return '{ customer(id: "x") { ...D0 } }\n' + "\n".join(fragments)


ALIASES_31 = "{ " + " ".join(f"a{n}: identityTypes {{ key }}" for n in range(31)) + " }"
COSTLY = """{ customers(first: 200) { edges { node {
  events(first: 200) { edges { node { id properties } } } } } } }"""
HUGE_INPUTS = {
    "inputs": [{"identities": [{"type": "crm_id", "value": f"c{n}"}]} for n in range(1001)]
}
IDENTIFY_BATCH = (
    "mutation($inputs: [IdentifyInput!]!) { identifyBatch(inputs: $inputs) { errors { code } } }"
)

# name -> (document, variables, code)
HOSTILE: dict[str, tuple[str, dict[str, Any], str]] = {
    "deep": (nested(12), {}, "QUERY_TOO_DEEP"),
    "deep through fragments": (deep_fragments(6), {}, "QUERY_TOO_DEEP"),
    "many aliases": (ALIASES_31, {}, "TOO_MANY_ALIASES"),
    "aliases amplified by fragments": (
        doubling_fragments(12, "a: identityTypes { key } b: lifecycleModel { stages { key } }"),
        {},
        "TOO_MANY_ALIASES",
    ),
    "fragment spread amplification": (
        doubling_fragments(40, "customers(first: 200) { edges { node { id } } }"),
        {},
        "QUERY_TOO_COSTLY",
    ),
    "huge page": (
        "{ customers(first: 100000) { edges { node { id } } } }",
        {},
        "PAGE_SIZE_EXCEEDED",
    ),
    "huge page in a variable": (
        "query($n: Int) { segments(first: $n) { edges { node { id } } } }",
        {"n": 5000},
        "PAGE_SIZE_EXCEEDED",
    ),
    "huge nested page": (
        '{ customer(id: "x") { events(first: 1000) { edges { node { id } } } } }',
        {},
        "PAGE_SIZE_EXCEEDED",
    ),
    "huge batch": (IDENTIFY_BATCH, HUGE_INPUTS, "BATCH_TOO_LARGE"),
    "costly": (COSTLY, {}, "QUERY_TOO_COSTLY"),
    "token flood": ("{ " + "__typename " * 5000 + "}", {}, "QUERY_TOO_LARGE"),
    "NUL in a literal": ('{ tagDefinition(key: "a\\u0000b") { key } }', {}, "INVALID_INPUT"),
    "NUL in a variable": (
        "query($k: String!) { tagDefinition(key: $k) { key } }",
        {"k": "a\x00b"},
        "INVALID_INPUT",
    ),
    "fragment cycle": (
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
        {},
        "GRAPHQL_VALIDATION_FAILED",
    ),
}


async def test_hostile_documents_are_refused_before_any_resolver_runs(api: Api) -> None:
    for name, (document, variables, code) in HOSTILE.items():
        api.sql.reset()
        response = await api.post(document, variables, role=Role.ADMIN)
        body = response.json()
        assert response.status_code == 200, (name, body)
        assert body.get("data") is None, (name, body)
        assert [e["extensions"]["code"] for e in body["errors"]] == [code], (name, body)
        assert all("api_keys" in sql for sql in api.sql.statements), (name, api.sql.statements)


async def test_a_query_within_every_limit_runs(api: Api) -> None:
    data = await api.query(nested(10))
    assert data == {"customer": None}
    within = "{ " + " ".join(f"a{n}: identityTypes {{ key }}" for n in range(30)) + " }"
    assert len(await api.query(within)) == 30


async def test_limits_come_from_settings(api: Api, settings: Settings) -> None:
    strict = settings.model_copy(update={"max_depth": 3, "max_aliases": 1, "max_cost": 10})
    async with client_of(strict) as client:
        for document, code in (
            (nested(4), "QUERY_TOO_DEEP"),
            ("{ a: identityTypes { key } b: identityTypes { key } }", "TOO_MANY_ALIASES"),
            ("{ identityTypes { key } lifecycleModel { stages { key } } }", "QUERY_TOO_COSTLY"),
        ):
            body = (await post(client, api.keys[Role.ADMIN], document)).json()
            assert body["errors"][0]["extensions"]["code"] == code, body


async def test_introspection_can_be_switched_off(api: Api, settings: Settings) -> None:
    assert (await api.query("{ __schema { queryType { name } } }"))["__schema"]
    async with client_of(settings.model_copy(update={"introspection": False})) as client:
        body = (await post(client, api.keys[Role.ADMIN], "{ __schema { types { name } } }")).json()
        assert body["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED", body
        ok = (await post(client, api.keys[Role.ADMIN], "{ __typename }")).json()
        assert ok == {"data": {"__typename": "Query"}}


@asynccontextmanager
async def client_of(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client
    finally:
        await app.state.c360.close()


async def post(client: httpx.AsyncClient, key: str, document: str) -> httpx.Response:
    return await client.post(
        "/graphql", json={"query": document}, headers={"Authorization": f"Bearer {key}"}
    )


# A plain list of objects: static cost 10 (LIST_ESTIMATE), settled 6 (the six identity types
# of the reference data): admitted while the bucket holds 10, charged 6 (api.costs).
CHEAP = "{ identityTypes { key } }"


async def test_a_key_over_its_budget_gets_429_with_retry_after(
    api: Api, settings: Settings
) -> None:
    limited = settings.model_copy(update={"cost_budget_per_minute": 30, "redis_url": None})
    async with client_of(limited) as client:
        for _ in range(4):  # 30, 24, 18, 12 left: each holds 10; then 6 does not
            assert (await post(client, api.keys[Role.PARTNER], CHEAP)).status_code == 200
        refused = await post(client, api.keys[Role.PARTNER], CHEAP)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        error = refused.json()["errors"][0]
        assert (
            error["extensions"]["code"] == "RATE_LIMITED" and error["extensions"]["retryAfter"] >= 1
        )
        other_key = await post(client, api.keys[Role.FRONTEND], CHEAP)
        assert other_key.status_code == 200, "each key has its own budget"


async def test_two_app_instances_share_a_budget_through_redis(api: Api, settings: Settings) -> None:
    """With Redis the budget is one across instances; on the embedded default (no Redis)
    each process keeps its own."""
    limited = settings.model_copy(update={"cost_budget_per_minute": 20})
    key = api.keys[Role.INTEGRATION]
    async with client_of(limited) as first, client_of(limited) as second:
        statuses = [(await post(c, key, CHEAP)).status_code for c in (first, second) * 3]
    if settings.redis_url:  # one bucket: 20, 20, 14, 8 (< 10) ... each instance owes 6
        assert statuses == [200, 200, 200, 429, 429, 429], statuses
    else:  # a bucket each: 20, 14, then 8
        assert statuses == [200, 200, 200, 200, 429, 429], statuses
