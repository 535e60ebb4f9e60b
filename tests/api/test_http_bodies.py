"""Requests the GraphQL view cannot read get HTTP 400 (a body over the limit, 413) with a
GraphQL-shaped JSON body and a code: never a 500, never plain text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from domain.access.keys import Role
from service.settings import Settings
from tests.api.test_limits import client_of
from tests.conftest import Api

JSON = {"content-type": "application/json"}
DEEP = b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"

# name -> raw body sent as application/json
MALFORMED: dict[str, bytes] = {
    "a string": b'"{ __typename }"',
    "a number": b"42",
    "null": b"null",
    "true": b"true",
    "not JSON": b"{ __typename }",
    "empty": b"",
    "invalid UTF-8": b'{"query": "{ __typename \xff\xfe }"}',
    "100,000-deep nesting in variables": DEEP,
    "a lone surrogate in operationName": b'{"query": "{ __typename }", "operationName": "\\ud800"}',
    "a lone surrogate in the query": b'{"query": "{ tagDefinition(key: \\"\\udfff\\") { key } }"}',
    "variables a list": b'{"query": "{ __typename }", "variables": [1]}',
    "variables a string": b'{"query": "{ __typename }", "variables": "x"}',
    "operationName a number": b'{"query": "{ __typename }", "operationName": 5}',
    "operationName an object": b'{"query": "{ __typename }", "operationName": {}}',
    "query a number": b'{"query": 5}',
    "a 5,000-digit integer": b'{"query": "{ __typename }", "variables": {"x": '
    + b"9" * 5000
    + b"}}",
    "a batch": b'[{"query": "{ __typename }"}]',
}


def _assert_coded(response: httpx.Response, status: int, code: str, name: str) -> None:
    assert response.status_code == status, (name, response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json"), (name, response)
    errors = response.json()["errors"]
    assert [e["extensions"]["code"] for e in errors] == [code], (name, errors)
    assert all(isinstance(e["message"], str) for e in errors), name


@pytest.mark.parametrize("role", [Role.ADMIN, Role.PARTNER])
async def test_malformed_bodies_get_400_with_a_code(api: Api, role: Role) -> None:
    headers = {**JSON, "Authorization": f"Bearer {api.keys[role]}"}
    for name, body in MALFORMED.items():
        response = await api.client.post("/graphql", content=body, headers=headers)
        _assert_coded(response, 400, "BAD_REQUEST", name)


IDENTIFY = "mutation($i: IdentifyInput!) { identify(input: $i) { errors { code field } } }"
# Values, not syntax: they reach the operation, whose checks refuse them with a code (the
# field's path where a mutation's payload can carry it), never a 5xx.
VALUES: dict[str, tuple[bytes, str]] = {
    "a lone surrogate in a variable": (
        b'{"query": "query($k: String!) { tagDefinition(key: $k) { key } }",'
        b' "variables": {"k": "a\\ud800b"}}',
        "INVALID_INPUT",
    ),
    "a lone surrogate in a JSON key": (
        b'{"query": "' + IDENTIFY.encode() + b'", "variables": {"i": {"identities":'
        b' [{"type": "email", "value": "a@example.com"}], "traits": {"\\ud800": 1}}}}',
        "INVALID_INPUT",
    ),
    "NaN": (
        b'{"query": "' + IDENTIFY.encode() + b'", "variables": {"i": {"identities":'
        b' [{"type": "email", "value": "a@example.com"}], "traits": {"s": NaN}}}}',
        "INVALID_INPUT",
    ),
    "-Infinity": (
        b'{"query": "' + IDENTIFY.encode() + b'", "variables": {"i": {"identities":'
        b' [{"type": "email", "value": "a@example.com"}], "traits": {"s": -Infinity}}}}',
        "INVALID_INPUT",
    ),
    "1e400": (
        b'{"query": "' + IDENTIFY.encode() + b'", "variables": {"i": {"identities":'
        b' [{"type": "email", "value": "a@example.com"}], "traits": {"s": 1e400}}}}',
        "INVALID_INPUT",
    ),
}


async def test_values_no_database_holds_reach_the_operation_and_get_a_code(api: Api) -> None:
    headers = {**JSON, "Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    for name, (body, code) in VALUES.items():
        response = await api.client.post("/graphql", content=body, headers=headers)
        assert response.status_code == 200, (name, response.text[:300])
        answer = response.json()
        codes = [e["extensions"]["code"] for e in answer.get("errors", [])]
        codes += [
            e["code"] for e in ((answer.get("data") or {}).get("identify") or {}).get("errors", [])
        ]
        assert codes == [code], (name, answer)


BAD_GETS: dict[str, dict[str, str]] = {
    "variables not JSON": {"query": "{ __typename }", "variables": "{nope"},
    "variables a number": {"query": "{ __typename }", "variables": "5"},
    "variables deep": {"query": "{ __typename }", "variables": "[" * 5000 + "]" * 5000},
    "extensions not JSON": {"query": "{ __typename }", "extensions": "{"},
    "a mutation": {"query": "mutation { __typename }"},
}


async def test_malformed_get_requests_get_a_coded_json_error(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    for name, params in BAD_GETS.items():
        response = await api.client.get("/graphql", params=params, headers=headers)
        assert 400 <= response.status_code < 500, (name, response.text[:300])
        _assert_coded(response, response.status_code, _code(response.status_code), name)


def _code(status: int) -> str:
    return {400: "BAD_REQUEST", 405: "METHOD_NOT_ALLOWED"}[status]


async def test_an_unsupported_content_type_gets_a_coded_json_error(api: Api) -> None:
    response = await api.client.post(
        "/graphql",
        content=b"query=x",
        headers={
            "content-type": "text/plain",
            "Authorization": f"Bearer {api.keys[Role.ADMIN]}",
        },
    )
    _assert_coded(response, 400, "BAD_REQUEST", "text/plain")


async def test_a_well_formed_request_still_runs(api: Api) -> None:
    variables = {"k": "\u00e9\U0001f600", "extra": [1e308, -1e-308, 10**30]}
    assert await api.query(LONG_TEXT, variables) == {"tagDefinition": None}


async def test_a_body_over_the_limit_gets_413_before_it_is_read(
    api: Api, settings: Settings
) -> None:
    headers = {**JSON, "Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    small = settings.model_copy(update={"max_body_bytes": 1000})
    async with client_of(small) as client:
        padded = b'{"query": "{ __typename }", "variables": {"pad": "' + b"x" * 2000 + b'"}}'
        response = await client.post("/graphql", content=padded, headers=headers)
        _assert_coded(response, 413, "REQUEST_TOO_LARGE", "declared length")

        read: list[int] = []

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            for n in range(1000):
                read.append(n)
                yield b" " * 100

        response = await client.post("/graphql", content=chunks(), headers=headers)
        _assert_coded(response, 413, "REQUEST_TOO_LARGE", "chunked")
        assert len(read) < 20, "the rest of the body was never read"

        ok = await client.post("/graphql", json={"query": "{ __typename }"}, headers=headers)
        assert ok.json() == {"data": {"__typename": "Query"}}


async def test_the_default_limit_is_one_megabyte(api: Api) -> None:
    headers = {**JSON, "Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    body = b'{"query": "{ __typename }", "variables": {"pad": "' + b"x" * 1_048_576 + b'"}}'
    response = await api.client.post("/graphql", content=body, headers=headers)
    _assert_coded(response, 413, "REQUEST_TOO_LARGE", "over 1 MB")


LONG_TEXT = "query($k: String!) { tagDefinition(key: $k) { key } }"


async def test_a_text_over_the_length_limit_is_refused_with_a_code(
    api: Api, settings: Settings
) -> None:
    within: dict[str, Any] = {"k": "x" * 100}
    assert await api.query(LONG_TEXT, within) == {"tagDefinition": None}
    strict = settings.model_copy(update={"max_string_length": 99})
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    async with client_of(strict) as client:
        for document, variables in (
            (LONG_TEXT, within),
            ('{ tagDefinition(key: "' + "y" * 100 + '") { key } }', {}),
            (
                "query($w: ConditionInput) { customers(where: $w) { totalCount } }",
                {"w": {"attribute": {"key": "k", "op": "EQ", "value": "z" * 100}}},
            ),
        ):
            response = await client.post(
                "/graphql", json={"query": document, "variables": variables}, headers=headers
            )
            body = response.json()
            assert [e["extensions"]["code"] for e in body["errors"]] == ["VALUE_TOO_LONG"], body


async def test_other_methods_and_unknown_paths_get_a_coded_json_error(api: Api) -> None:
    headers = {"Authorization": f"Bearer {api.keys[Role.ADMIN]}"}
    for method in ("PUT", "DELETE", "PATCH"):
        response = await api.client.request(method, "/graphql", content=b"{}", headers=headers)
        _assert_coded(response, 405, "METHOD_NOT_ALLOWED", method)
    response = await api.client.get("/nowhere", headers=headers)
    _assert_coded(response, 404, "NOT_FOUND", "/nowhere")
