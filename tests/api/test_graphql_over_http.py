"""GraphQL over HTTP as its specification says (api.http_media): the graphql-response+json
media type and its status codes, application/json's behaviour, no `data` entry on a request
error, a code on every error, GET for queries only, 406 for an Accept nobody can meet."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from domain.access.keys import Role
from service.settings import Settings
from tests.api.test_limits import client_of
from tests.conftest import Api

GRAPHQL_RESPONSE = "application/graphql-response+json"
FILTERED = "query($where: ConditionInput) { customers(where: $where) { totalCount } }"
UNKNOWN_TAG = {"where": {"tag": {"key": "no-such-tag"}}}


async def ask(
    api: Api,
    accept: str | None,
    query: str,
    variables: dict[str, Any] | None = None,
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    if accept is not None:
        headers["Accept"] = accept
    body = {"query": query, "variables": variables or {}}
    return await api.client.post("/graphql", json=body, headers=headers)


def codes(response: httpx.Response) -> list[str]:
    errors = response.json()["errors"]
    assert all(isinstance(e["extensions"]["code"], str) for e in errors), errors
    return [e["extensions"]["code"] for e in errors]


@pytest.mark.parametrize(
    ("document", "variables", "code"),
    [
        ("{ customers { totalCount ", None, "GRAPHQL_PARSE_FAILED"),
        ("{ customers { nope } }", None, "GRAPHQL_VALIDATION_FAILED"),
        (
            "query($n: Int!) { customers(first: $n) { totalCount } }",
            None,
            "GRAPHQL_VALIDATION_FAILED",
        ),
        ("{ customers(first: 100000) { totalCount } }", None, "PAGE_SIZE_EXCEEDED"),
    ],
)
async def test_request_errors_have_no_data_entry_and_a_code(
    api: Api, document: str, variables: dict[str, Any] | None, code: str
) -> None:
    strict = await ask(api, GRAPHQL_RESPONSE, document, variables)
    assert strict.status_code == 400
    assert strict.headers["content-type"] == f"{GRAPHQL_RESPONSE}; charset=utf-8"
    assert "data" not in strict.json() and codes(strict) == [code]
    legacy = await ask(api, "application/json", document, variables)
    assert legacy.status_code == 200  # application/json: 200 for a well-formed request
    assert legacy.headers["content-type"] == "application/json"
    assert "data" not in legacy.json() and codes(legacy) == [code]


async def test_a_field_error_in_execution_is_200_with_data(api: Api) -> None:
    for accept in (GRAPHQL_RESPONSE, "application/json"):
        response = await ask(api, accept, FILTERED, UNKNOWN_TAG)
        assert response.status_code == 200, accept
        body = response.json()
        assert "data" in body and body["data"] is None
        assert codes(response) == ["UNKNOWN_TAG"]
        assert body["errors"][0]["path"] == ["customers"]


async def test_success_in_each_media_type(api: Api) -> None:
    for accept, media in [
        (GRAPHQL_RESPONSE, f"{GRAPHQL_RESPONSE}; charset=utf-8"),
        ("application/json", "application/json"),
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/*", "application/json"),
        (f"application/json;q=0.5, {GRAPHQL_RESPONSE}", f"{GRAPHQL_RESPONSE}; charset=utf-8"),
        (f"{GRAPHQL_RESPONSE};q=0.4, application/json;q=0.9", "application/json"),
        (f"text/html, {GRAPHQL_RESPONSE}, application/json", f"{GRAPHQL_RESPONSE}; charset=utf-8"),
    ]:
        response = await ask(api, accept, "{ customers { totalCount } }")
        assert response.status_code == 200, accept
        assert response.headers["content-type"] == media, accept
        assert response.json() == {"data": {"customers": {"totalCount": 0}}}


async def test_an_accept_header_naming_neither_type_is_406(api: Api) -> None:
    for accept in ("text/plain", "text/html", f"{GRAPHQL_RESPONSE};q=0", "image/*"):
        response = await ask(api, accept, "{ customers { totalCount } }")
        assert response.status_code == 406, accept
        assert response.headers["content-type"] == "application/json"
        assert "data" not in response.json() and codes(response) == ["NOT_ACCEPTABLE"]


async def test_malformed_json_answers_json_of_the_accepted_type(api: Api) -> None:
    for accept, media in [
        (GRAPHQL_RESPONSE, f"{GRAPHQL_RESPONSE}; charset=utf-8"),
        ("application/json", "application/json"),
    ]:
        response = await api.client.post(
            "/graphql",
            content=b'{"query": "{ __typename',
            headers={
                "Authorization": f"Bearer {api.keys[Role.ADMIN]}",
                "Content-Type": "application/json",
                "Accept": accept,
            },
        )
        assert response.status_code == 400
        assert response.headers["content-type"] == media
        assert "data" not in response.json() and codes(response) == ["BAD_REQUEST"]


async def test_get_runs_queries_and_refuses_mutations_with_405(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}", "Accept": GRAPHQL_RESPONSE}
    query = await api.client.get(
        "/graphql", params={"query": "{ customers { totalCount } }"}, headers=headers
    )
    assert query.status_code == 200
    assert query.json() == {"data": {"customers": {"totalCount": 0}}}
    mutation = 'mutation { createApiKey(name: "x", role: PARTNER) { key { id } } }'
    refused = await api.client.get("/graphql", params={"query": mutation}, headers=headers)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "POST"
    assert "data" not in refused.json() and codes(refused) == ["METHOD_NOT_ALLOWED"]
    keys = await api.query("{ apiKeys { name } }")
    assert "x" not in [key["name"] for key in keys["apiKeys"]]


async def test_refusals_with_a_status_of_their_own_keep_it(api: Api, settings: Settings) -> None:
    unauthenticated = await api.client.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": GRAPHQL_RESPONSE}
    )
    assert unauthenticated.status_code == 401 and codes(unauthenticated) == ["UNAUTHENTICATED"]
    limited = settings.model_copy(update={"cost_budget_per_minute": 1, "redis_url": None})
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}", "Accept": GRAPHQL_RESPONSE}
    async with client_of(limited) as client:
        document = {"query": "{ customers(first: 5) { totalCount } }"}
        for _ in range(2):
            response = await client.post("/graphql", json=document, headers=headers)
    assert response.status_code == 429
    assert "data" not in response.json() and codes(response) == ["RATE_LIMITED"]
