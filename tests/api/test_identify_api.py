"""identify, identifyBatch, mergeCustomers and unmerge over GraphQL."""

from __future__ import annotations

import asyncio
import random

from domain.access.keys import Role
from tests.conftest import Api
from tests.integration.identity_helpers import owners

IDENTIFY = """mutation($input: IdentifyInput!) { identify(input: $input) {
  customer { id displayName identities { type value } merges { id mergedId survivor { id } } }
  created merges { id mergedId } errors { code field message } } }"""
BATCH = """mutation($inputs: [IdentifyInput!]!, $key: String) { identifyBatch(inputs: $inputs, idempotencyKey: $key) {
  results { index created customer { id } merges { id } errors { code field } } errors { code field message } } }"""


def identities(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": t, "value": v} for t, v in pairs]


async def test_identify_creates_then_merges_and_the_merged_id_still_resolves(api: Api) -> None:
    one = (
        await api.query(
            IDENTIFY,
            {
                "input": {
                    "identities": identities(("email", "A@x.com")),
                    "traits": {"displayName": "A"},
                }
            },
        )
    )["identify"]
    assert one["created"] and one["errors"] == [] and one["customer"]["displayName"] == "A"
    two = (
        await api.query(IDENTIFY, {"input": {"identities": identities(("phone", "13800138000"))}})
    )["identify"]
    linked = (
        await api.query(
            IDENTIFY,
            {
                "input": {
                    "identities": identities(("email", "a@x.com"), ("phone", "+8613800138000"))
                }
            },
        )
    )["identify"]
    assert linked["customer"]["id"] == two["customer"]["id"]
    assert [m["mergedId"] for m in linked["merges"]] == [one["customer"]["id"]]
    assert linked["customer"]["merges"][0]["survivor"]["id"] == two["customer"]["id"]
    again = await api.query(
        "query($id: ID!) { customer(id: $id) { id } }", {"id": one["customer"]["id"]}
    )
    assert again["customer"]["id"] == two["customer"]["id"]
    node = await api.query(
        "query($id: ID!) { node(id: $id) { ... on MergeRecord { mergedId } } }",
        {"id": linked["merges"][0]["id"]},
    )
    assert node["node"]["mergedId"] == one["customer"]["id"]


async def test_refusals_carry_a_code_and_a_field_path(api: Api) -> None:
    bad = (
        await api.query(
            IDENTIFY, {"input": {"identities": identities(("email", "ok@x.com"), ("phone", "123"))}}
        )
    )["identify"]
    assert bad["customer"] is None and bad["created"] is False
    assert [(e["code"], e["field"]) for e in bad["errors"]] == [
        ("INVALID_IDENTITY", ["input", "identities", "1", "value"])
    ]
    batch = (
        await api.query(
            BATCH,
            {
                "inputs": [
                    {"identities": identities(("email", "fine@x.com"))},
                    {"identities": identities(("fax", "1"))},
                ]
            },
        )
    )["identifyBatch"]
    assert batch["results"][0]["customer"] and batch["results"][0]["errors"] == []
    assert batch["results"][1]["errors"] == [
        {"code": "UNKNOWN_IDENTITY_TYPE", "field": ["inputs", "1", "identities", "0", "type"]}
    ]


async def test_a_batch_over_the_limit_is_refused_whole(api: Api, db) -> None:
    inputs = [{"identities": identities(("email", f"u{i}@x.com"))} for i in range(1001)]
    # A limit (api.limits): refused before the mutation runs, as a GraphQL error.
    body = (await api.post(BATCH, {"inputs": inputs})).json()
    assert "data" not in body and body["errors"][0]["extensions"]["code"] == "BATCH_TOO_LARGE"
    assert await owners(db) == {}


async def test_a_reused_idempotency_key_is_a_payload_error(api: Api) -> None:
    first = {"inputs": [{"identities": identities(("email", "k@x.com"))}], "key": "k-1"}
    one = (await api.query(BATCH, first))["identifyBatch"]
    replay = (await api.query(BATCH, first))["identifyBatch"]
    assert replay == one
    other = (
        await api.query(
            BATCH, {**first, "inputs": [{"identities": identities(("email", "j@x.com"))}]}
        )
    )["identifyBatch"]
    assert other["errors"][0]["code"] == "IDEMPOTENCY_KEY_REUSED" and other["errors"][0][
        "field"
    ] == ["idempotencyKey"]


async def test_merge_and_unmerge_over_graphql(api: Api) -> None:
    ids = []
    for value in ("m1@x.com", "m2@x.com"):
        ids.append(
            (await api.query(IDENTIFY, {"input": {"identities": identities(("email", value))}}))[
                "identify"
            ]["customer"]["id"]
        )
    merged = (
        await api.query(
            """mutation($s: ID!, $m: ID!) { mergeCustomers(survivor: $s, merged: $m, reason: "support ticket 7") {
        merge { id reason actor mergedId } customer { id identities { value } } errors { code } } }""",
            {"s": ids[0], "m": ids[1]},
        )
    )["mergeCustomers"]
    assert merged["errors"] == [] and merged["merge"]["reason"] == "support ticket 7"
    assert merged["merge"]["actor"] == "admin:test-admin"
    assert len(merged["customer"]["identities"]) == 2
    undone = (
        await api.query(
            """mutation($m: ID!) { unmerge(merge: $m) { restored { id status } survivor { id merges { undoneAt } } errors { code } } }""",
            {"m": merged["merge"]["id"]},
        )
    )["unmerge"]
    assert undone["restored"] == {"id": ids[1], "status": "ACTIVE"}
    assert undone["survivor"]["merges"][0]["undoneAt"] is not None
    again = (
        await api.query(
            """mutation($m: ID!) { unmerge(merge: $m) { errors { code field } } }""",
            {"m": merged["merge"]["id"]},
        )
    )["unmerge"]
    assert again["errors"] == [{"code": "UNMERGE_NOT_POSSIBLE", "field": ["merge"]}]


async def test_only_admins_and_integrations_resolve_identities(api: Api) -> None:
    variables = {"input": {"identities": identities(("email", "r@x.com"))}}
    for role in (Role.FRONTEND, Role.PARTNER):
        body = (await api.post(IDENTIFY, variables, role=role)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.query(IDENTIFY, variables, role=Role.INTEGRATION))["identify"]["created"]


async def test_define_identity_type_validates_and_is_admin_only(api: Api) -> None:
    mutation = """mutation($input: IdentityTypeInput!) { defineIdentityType(input: $input) {
        identityType { key normalizer unique maxPerCustomer priority } errors { code field } } }"""
    ok = {
        "key": "loyalty_card",
        "label": "Loyalty card",
        "normalizer": "lowercase",
        "unique": True,
        "priority": 95,
    }
    body = (await api.post(mutation, {"input": ok}, role=Role.INTEGRATION)).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    saved = (await api.query(mutation, {"input": ok}))["defineIdentityType"]
    assert saved["identityType"]["key"] == "loyalty_card" and saved["errors"] == []
    bad = (await api.query(mutation, {"input": {**ok, "key": "Bad Key", "normalizer": "soundex"}}))[
        "defineIdentityType"
    ]
    assert bad["errors"][0]["field"] == ["input", "key"]
    types = (await api.query("{ identityTypes { key } }"))["identityTypes"]
    assert "loyalty_card" in [t["key"] for t in types]
    landed = (
        await api.query(IDENTIFY, {"input": {"identities": identities(("loyalty_card", "LC-9"))}})
    )["identify"]
    assert landed["customer"]["identities"] == [{"type": "loyalty_card", "value": "lc-9"}]


async def test_concurrent_clients_pushing_overlapping_chains_end_as_the_oracle_says(
    api: Api, backend: str
) -> None:
    """64 clients, 2,048 random links plus every link once (PostgreSQL; 8 clients and 128 on
    SQLite, which serializes writers anyway): each chain of identities ends as one profile, none shared."""
    clients, per_client = (64, 16) if backend == "postgresql" else (8, 16)
    chains, length = 16, 12
    calls = [(chain, step) for chain in range(chains) for step in range(length - 1)]
    rng = random.Random(7)
    work = [rng.choice(calls) for _ in range(clients * per_client)]
    work += calls  # every link at least once
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    for job in work:
        queue.put_nowait(job)
    statuses: list[int] = []
    problems: list[object] = []

    async def client() -> None:
        while not queue.empty():
            chain, step = queue.get_nowait()
            pair = identities(
                ("email", f"c{chain}-{step}@x.com"), ("wechat_openid", f"c{chain}-{step + 1}")
            )
            if step + 1 < length - 1:
                pair += identities(("email", f"c{chain}-{step + 1}@x.com"))
            response = await api.post(
                IDENTIFY, {"input": {"identities": pair}}, role=Role.INTEGRATION
            )
            statuses.append(response.status_code)
            body = response.json()
            if body.get("errors") or body["data"]["identify"]["errors"]:
                problems.append(body)

    await asyncio.gather(*(client() for _ in range(clients)))
    assert set(statuses) == {200} and not problems, problems[:3]
    assert len(statuses) == len(work) >= (1000 if backend == "postgresql" else 128)
    held = await owners(api.db)
    by_chain: dict[int, set[object]] = {}
    for (_, value), customer in held.items():
        by_chain.setdefault(int(value.split("-")[0][1:]), set()).add(customer)
    assert all(len(customers) == 1 for customers in by_chain.values()), by_chain
    assert len({next(iter(c)) for c in by_chain.values()}) == chains
