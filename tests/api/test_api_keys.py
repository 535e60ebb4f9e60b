"""API keys administered over GraphQL: the secret is shown once and stored hashed, and a
revoked key stops working at once, in every app instance, though each knows its keys without
looking them up again (domain.access.key_cache)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from domain.access.keys import Role, hash_secret
from service.logs import configure_logging
from service.settings import Settings
from tests.api.test_costs import SET_BUDGET
from tests.api.test_limits import client_of, post
from tests.api.test_observability import Logs, logs  # noqa: F401  (the fixture)
from tests.conftest import Api

CREATE = """mutation($name: String!, $role: ApiKeyRole!) {
  createApiKey(name: $name, role: $role) { key { id name role prefix revokedAt } secret errors { code } }
}"""
REVOKE = "mutation($id: ID!) { revokeApiKey(id: $id) { key { revokedAt } errors { code } } }"
KEYS = "{ apiKeys { id name role prefix createdAt revokedAt } }"
POLLS = 250  # another instance hears of a change within milliseconds; 5 s at the most


async def test_a_created_key_works_and_its_secret_is_shown_once(api: Api) -> None:
    created = (await api.query(CREATE, {"name": "crm sync", "role": "INTEGRATION"}))["createApiKey"]
    secret = created["secret"]
    assert created["errors"] == [] and created["key"]["role"] == "INTEGRATION"
    assert secret.split("_")[1] == created["key"]["prefix"]
    response = await api.client.post(
        "/graphql",
        json={"query": "{ identityTypes { key } }"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 200 and not response.json().get("errors")

    listed = (await api.query(KEYS))["apiKeys"]
    assert "crm sync" in {k["name"] for k in listed}
    assert secret not in str(listed) and hash_secret(secret) not in str(listed)


async def test_a_key_needs_a_name(api: Api) -> None:
    refused = (await api.query(CREATE, {"name": " ", "role": "PARTNER"}))["createApiKey"]
    assert refused == {"key": None, "secret": None, "errors": [{"code": "INVALID_INPUT"}]}


async def test_a_revoked_key_is_refused_on_its_next_request(api: Api) -> None:
    created = (await api.query(CREATE, {"name": "partner x", "role": "PARTNER"}))["createApiKey"]
    assert (await post(api.client, created["secret"], "{ __typename }")).status_code == 200
    await api.query(REVOKE, {"id": created["key"]["id"]})
    assert (await post(api.client, created["secret"], "{ __typename }")).status_code == 401


async def test_a_revoked_key_stops_working_in_every_instance(api: Api, settings: Settings) -> None:
    """Other instances hear of it (Redis pub/sub, or in process on SQLite), although each
    would trust what it knows of the key for the whole test (C360_KEY_CACHE_SECONDS)."""
    created = (await api.query(CREATE, {"name": "partner x", "role": "PARTNER"}))["createApiKey"]
    secret = created["secret"]
    async with client_of(settings) as other_instance:
        assert (await post(other_instance, secret, "{ __typename }")).status_code == 200
        revoked = (await api.query(REVOKE, {"id": created["key"]["id"]}))["revokeApiKey"]
        assert revoked["errors"] == [] and revoked["key"]["revokedAt"]
        statuses = await until(lambda: post(other_instance, secret, "{ __typename }"), 401)
        assert statuses[-1] == 401
    assert (await api.post("{ __typename }", role=Role.ADMIN)).status_code == 200


async def test_a_known_key_makes_no_statement_and_a_new_one_is_looked_up_once(
    api: Api,
) -> None:
    api.sql.reset()
    assert (await api.post("{ __typename }")).status_code == 200
    assert api.sql.statements == []
    created = (await api.query(CREATE, {"name": "crm", "role": "INTEGRATION"}))["createApiKey"]
    lookups = []
    for _ in range(3):
        api.sql.reset()
        assert (await post(api.client, created["secret"], "{ __typename }")).status_code == 200
        lookups.append(sum("api_keys" in statement for statement in api.sql.statements))
    assert lookups == [1, 0, 0]


async def test_a_new_budget_holds_from_the_next_request_in_every_instance(
    api: Api,
    settings: Settings,
    logs: Logs,  # noqa: F811
) -> None:
    listed = (await api.query("{ apiKeys { id name } }"))["apiKeys"]
    partner = next(key["id"] for key in listed if key["name"] == "test-partner")
    secret = api.keys[Role.PARTNER]
    async with client_of(settings) as other_instance:
        configure_logging(settings, logs.stream)  # the new app logs where the fixture reads
        assert (await post(other_instance, secret, "{ __typename }")).status_code == 200
        await api.query(SET_BUDGET, {"id": partner, "budget": 25})
        assert (await post(api.client, secret, "{ __typename }")).status_code == 200
        assert logs.operations()[-1]["cost"]["budget"] == 25

        async def budget_seen_by_the_other() -> int:
            assert (await post(other_instance, secret, "{ __typename }")).status_code == 200
            return int(logs.operations()[-1]["cost"]["budget"])

        assert (await until(budget_seen_by_the_other, 25))[-1] == 25


async def until(attempt: Callable[[], Awaitable[Any]], expected: Any) -> list[Any]:
    """What `attempt` gave, attempt after attempt, until `expected` (at most POLLS)."""
    seen = []
    for _ in range(POLLS):
        found = await attempt()
        seen.append(getattr(found, "status_code", found))
        if seen[-1] == expected:
            break
        await asyncio.sleep(0.02)
    return seen
