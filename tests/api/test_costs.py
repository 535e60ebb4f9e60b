"""Costs and budgets: an operation is admitted on its static cost and charged what it returned
(api.costs); each key may have its own budget (setApiKeyBudget); admission stays one Redis
round trip per request."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from api import limits
from api.ids import to_global_id
from api.query_measure import measure
from domain.access.keys import Role, authenticate
from service.settings import Settings
from store.db import Database
from tests.api.test_limits import client_of, post
from tests.api.test_observability import Logs, logs  # noqa: F401  (the fixture)
from tests.builders import make_customer
from tests.conftest import Api

PAGE = """query Page { customers(first: 20) { edges { node {
  id displayName
  identities { type value }
  tags { value tag { key name } }
  stage { key name }
  metrics { orderCount totalSpent }
} } } }"""
# The connection, and per customer its edge, node, 2 identities, 3 tags with their
# definitions, stage and metrics.
SETTLED_PAGE = 1 + 20 * (1 + 1 + 2 + 3 * 2 + 1 + 1)
STATIC_PAGE = 681
SET_BUDGET = """mutation($id: ID!, $budget: Int) {
  setApiKeyBudget(id: $id, costBudgetPerMinute: $budget) {
    key { name costBudgetPerMinute } errors { code field } } }"""


async def twenty_full_profiles(db: Database) -> None:
    for n in range(20):
        await make_customer(
            db,
            identities=[("email", f"p{n}@example.com"), ("phone", f"+86 138 0013 {n:04d}")],
            tags=["vip", "sports", "newsletter"],
            stages=["awareness"],
            stage="awareness",
            display_name=f"P{n}",
        )


async def key_id(db: Database, secret: str) -> str:
    principal = await authenticate(db, secret)
    assert principal is not None
    return to_global_id("ApiKey", principal.key_id)


async def test_a_page_of_20_full_profiles_is_charged_what_it_returned(
    api: Api,
    db: Database,
    logs: Logs,  # noqa: F811
) -> None:
    await twenty_full_profiles(db)
    data = await api.query(PAGE)
    assert len(data["customers"]["edges"]) == 20
    [line] = logs.operations()
    assert line["cost"] == {
        "static": STATIC_PAGE,
        "settled": SETTLED_PAGE,
        "budget": Settings().cost_budget_per_minute,
    }
    assert SETTLED_PAGE == 241


async def test_the_bucket_is_charged_the_settled_cost_not_the_static_one(
    api: Api, db: Database, settings: Settings
) -> None:
    """A budget of 1,000: the static cost (681) would admit one page a minute; charged 241 a
    page, the key gets two before the bucket holds less than 681."""
    await twenty_full_profiles(db)
    limited = settings.model_copy(update={"cost_budget_per_minute": 1000, "redis_url": None})
    async with client_of(limited) as client:
        statuses = [
            (await post(client, api.keys[Role.FRONTEND], PAGE)).status_code for _ in range(3)
        ]
    assert statuses == [200, 200, 429]


async def test_a_batch_is_charged_its_items(api: Api, logs: Logs) -> None:  # noqa: F811
    mutation = "mutation($i: [IdentifyInput!]!) { identifyBatch(inputs: $i) { errors { code } } }"
    inputs = [{"identities": [{"type": "crm_id", "value": f"c{n}"}]} for n in range(30)]
    response = await api.post(mutation, {"i": inputs}, role=Role.INTEGRATION)
    assert response.status_code == 200 and "errors" not in response.json(), response.json()
    [line] = logs.operations()
    # the 30 inputs, plus what came back: the payload and its (empty) error list's items
    assert line["cost"]["settled"] == 30 + 1


async def test_an_admin_sets_a_key_its_own_budget(
    api: Api, db: Database, settings: Settings
) -> None:
    partner = await key_id(db, api.keys[Role.PARTNER])
    body = (await api.post(SET_BUDGET, {"id": partner, "budget": 25})).json()
    assert body["data"]["setApiKeyBudget"] == {
        "key": {"name": "test-partner", "costBudgetPerMinute": 25},
        "errors": [],
    }
    listed = await api.query("{ apiKeys { name costBudgetPerMinute } }")
    budgets = {key["name"]: key["costBudgetPerMinute"] for key in listed["apiKeys"]}
    assert budgets["test-partner"] == 25 and budgets["test-frontend"] is None

    cheap = "{ identityTypes { key } }"  # admitted at 10, charged 6
    local = settings.model_copy(update={"redis_url": None})
    async with client_of(local) as client:
        own = [(await post(client, api.keys[Role.PARTNER], cheap)).status_code for _ in range(4)]
        default = [
            (await post(client, api.keys[Role.FRONTEND], cheap)).status_code for _ in range(4)
        ]
    assert own == [200, 200, 200, 429]  # 25, 19, 13, then 7
    assert default == [200] * 4

    back = (await api.post(SET_BUDGET, {"id": partner, "budget": None})).json()
    assert back["data"]["setApiKeyBudget"]["key"]["costBudgetPerMinute"] is None
    await api.post(SET_BUDGET, {"id": partner, "budget": 25})
    omitted = """mutation($id: ID!) { setApiKeyBudget(id: $id) {
      key { costBudgetPerMinute } errors { code } } }"""
    body = (await api.post(omitted, {"id": partner})).json()
    assert body["data"]["setApiKeyBudget"] == {"key": {"costBudgetPerMinute": None}, "errors": []}


@pytest.mark.parametrize("budget", [0, -5, 2**31 - 1 + 1])
async def test_a_budget_out_of_range_is_refused_and_changes_nothing(
    api: Api, db: Database, budget: int
) -> None:
    partner = await key_id(db, api.keys[Role.PARTNER])
    body = (await api.post(SET_BUDGET, {"id": partner, "budget": budget})).json()
    if budget > 2**31 - 1:  # not an Int: GraphQL refuses the variable
        assert "data" not in body
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    else:
        assert body["data"]["setApiKeyBudget"] == {
            "key": None,
            "errors": [{"code": "INVALID_INPUT", "field": ["costBudgetPerMinute"]}],
        }
    listed = await api.query("{ apiKeys { name costBudgetPerMinute } }")
    assert {k["name"]: k["costBudgetPerMinute"] for k in listed["apiKeys"]}["test-partner"] is None


async def test_only_admins_set_budgets_and_unknown_keys_are_not_found(
    api: Api, db: Database
) -> None:
    partner = await key_id(db, api.keys[Role.PARTNER])
    refused = (await api.post(SET_BUDGET, {"id": partner, "budget": 5}, role=Role.FRONTEND)).json()
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    nobody = to_global_id("ApiKey", "00000000-0000-0000-0000-000000000000")
    missing = (await api.post(SET_BUDGET, {"id": nobody, "budget": 5})).json()
    assert missing["data"]["setApiKeyBudget"]["errors"] == [{"code": "NOT_FOUND", "field": ["id"]}]


async def test_admission_is_one_redis_round_trip_per_request(
    api: Api, db: Database, settings: Settings
) -> None:
    if not settings.redis_url:
        pytest.skip("Redis only: without it the buckets are in-process")
    await twenty_full_profiles(db)
    async with client_of(settings) as client:
        limiter = client._transport.app.state.c360.limiter  # type: ignore[attr-defined]
        script = limiter._script
        calls: list[Any] = []

        async def counted(*args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return await script(*args, **kwargs)

        limiter._script = counted
        for _ in range(5):
            assert (await post(client, api.keys[Role.FRONTEND], PAGE)).status_code == 200
    assert len(calls) == 5
    # each admission pays what the request before it was charged
    assert [call["args"][3] for call in calls] == [0] + [SETTLED_PAGE] * 4


async def test_a_known_key_s_request_is_one_redis_command_on_the_wire(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted where redis-py writes to its sockets: the admission (one EVALSHA, paying what
    the request before was charged) and nothing else, neither for the key nor for the cost."""
    if not settings.redis_url:
        pytest.skip("Redis only: without it the buckets are in-process")
    sent: list[bytes] = []
    write = AbstractConnection.send_packed_command

    async def counted(self: AbstractConnection, command: Any, *args: Any, **kwargs: Any) -> None:
        sent.append(b"".join(command) if isinstance(command, list) else bytes(command))
        await write(self, command, *args, **kwargs)

    async with client_of(settings) as client:
        for _ in range(2):  # the script loaded and the key known
            assert (await post(client, api.keys[Role.FRONTEND], PAGE)).status_code == 200
        monkeypatch.setattr(AbstractConnection, "send_packed_command", counted)
        for _ in range(5):
            assert (await post(client, api.keys[Role.FRONTEND], PAGE)).status_code == 200
    assert len(sent) == 5 and all(b"EVALSHA" in command for command in sent), sent


async def test_a_document_is_measured_once_per_shape_of_its_variables(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same document with the same page size, or another text of the same length, is not
    walked again; another page size is, and is refused as it would be on a first sight."""
    walks = 0

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal walks
        walks += 1
        return measure(*args, **kwargs)

    monkeypatch.setattr(limits, "measure", counted)
    document = "query($n: Int, $q: String) { sharedIdentifiers(type: $q, first: $n) { type } }"
    answers = []
    for variables in (
        {"n": 5, "q": "li"},
        {"n": 5, "q": "li"},
        {"n": 5, "q": "wu"},  # another text, as long
        {"n": 6, "q": "wu"},  # another page
        {"n": 5000, "q": "wu"},  # a page too large
        {"n": 5000, "q": "wu"},
        {"n": 5, "q": "l\x00"},  # a text PostgreSQL cannot store
    ):
        body = (await api.post(document, variables)).json()
        answers.append(body["errors"][0]["extensions"]["code"] if "errors" in body else "ok")
    assert answers == ["ok"] * 4 + ["PAGE_SIZE_EXCEEDED"] * 2 + ["INVALID_INPUT"]
    assert walks == 4
