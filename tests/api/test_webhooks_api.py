"""Webhook administration over GraphQL: admins only, validated, refusals write nothing;
dead deliveries are visible and can be replayed."""

from __future__ import annotations

import uuid

from domain.access.keys import Role
from service.dispatcher import Dispatcher
from service.settings import Settings
from store.pubsub import InProcessBroker
from tests.conftest import Api
from tests.integration.change_helpers import SECRET, created, emit
from tests.servers import receiver

DEFINE = """
mutation($url: String!, $kinds: [String!]!, $secret: String!) {
  defineWebhook(url: $url, kinds: $kinds, secret: $secret) {
    webhook { id url kinds createdBy }
    errors { code field message }
  }
}"""
LIST = "{ webhooks { id url kinds } }"
DELIVERIES = """
query($status: WebhookDeliveryStatus) {
  webhookDeliveries(status: $status, first: 10) {
    edges { node { id status attempts lastStatusCode lastError eventId kind webhook { url } } }
    pageInfo { hasNextPage }
  }
}"""
REPLAY = """
mutation($id: ID!) {
  replayWebhookDelivery(id: $id) { delivery { id status attempts } errors { code field } }
}"""
DELETE = "mutation($id: ID!) { deleteWebhook(id: $id) { deletedId errors { code field } } }"


async def define(api: Api, url: str, kinds: list[str], role: Role = Role.ADMIN) -> dict:  # type: ignore[type-arg]
    response = await api.post(DEFINE, {"url": url, "kinds": kinds, "secret": SECRET}, role=role)
    return response.json()  # type: ignore[no-any-return]


async def test_an_admin_defines_lists_and_deletes_a_webhook_whose_secret_is_never_shown(
    api: Api,
) -> None:
    body = await define(api, "https://hooks.example.com/c360", ["customer.merged", "stage.changed"])
    payload = body["data"]["defineWebhook"]
    assert payload["errors"] == []
    assert payload["webhook"]["kinds"] == ["customer.merged", "stage.changed"]
    assert payload["webhook"]["createdBy"] == "admin:test-admin"
    listed = (await api.query(LIST))["webhooks"]
    assert listed == [
        {
            "id": payload["webhook"]["id"],
            "url": "https://hooks.example.com/c360",
            "kinds": ["customer.merged", "stage.changed"],
        }
    ]
    assert SECRET not in str(body) + str(listed)

    deleted = (await api.query(DELETE, {"id": listed[0]["id"]}))["deleteWebhook"]
    assert deleted == {"deletedId": listed[0]["id"], "errors": []}
    assert (await api.query(LIST))["webhooks"] == []
    again = (await api.query(DELETE, {"id": listed[0]["id"]}))["deleteWebhook"]
    assert again["errors"] == [{"code": "NOT_FOUND", "field": ["id"]}]


async def test_only_admins_may_manage_or_read_webhooks(api: Api) -> None:
    for role in (Role.PARTNER, Role.FRONTEND, Role.INTEGRATION):
        body = await define(api, "https://hooks.example.com/x", ["customer.created"], role)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        listed = (await api.post(LIST, role=role)).json()
        assert listed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await api.query(LIST))["webhooks"] == []


async def test_a_refused_definition_says_why_and_writes_nothing(api: Api) -> None:
    cases = [
        ("javascript:alert(1)", ["customer.created"], ["url"]),
        ("https://hooks.example.com/x", ["customer.created", "nope"], ["kinds", "1"]),
    ]
    for url, kinds, field in cases:
        payload = (await define(api, url, kinds))["data"]["defineWebhook"]
        assert payload["webhook"] is None
        assert [(e["code"], e["field"]) for e in payload["errors"]] == [("INVALID_INPUT", field)]
    short = await api.query(
        DEFINE, {"url": "https://hooks.example.com/x", "kinds": ["tag.assigned"], "secret": "x"}
    )
    assert short["defineWebhook"]["errors"][0]["field"] == ["secret"]
    assert (await api.query(LIST))["webhooks"] == []


async def test_a_dead_delivery_is_listed_and_a_replay_delivers_it(
    api: Api, settings: Settings
) -> None:
    once = settings.model_copy(update={"webhook_max_attempts": 1})
    async with receiver() as endpoint, Dispatcher(api.db, InProcessBroker(), once) as dispatcher:
        endpoint.statuses.append(500)
        await define(api, endpoint.url + "/in", ["customer.created"])
        await emit(api.db, created(uuid.uuid4()))
        await dispatcher.dispatch_once()
        await dispatcher.deliver_once()

        dead = (await api.query(DELIVERIES, {"status": "DEAD"}))["webhookDeliveries"]["edges"]
        [node] = [edge["node"] for edge in dead]
        assert (node["status"], node["attempts"], node["lastStatusCode"]) == ("DEAD", 1, 500)
        assert (node["kind"], node["webhook"]["url"]) == ("customer.created", endpoint.url + "/in")

        replayed = (await api.query(REPLAY, {"id": node["id"]}))["replayWebhookDelivery"]
        assert replayed == {
            "delivery": {"id": node["id"], "status": "PENDING", "attempts": 0},
            "errors": [],
        }
        await dispatcher.deliver_once()

    edges = (await api.query(DELIVERIES))["webhookDeliveries"]["edges"]
    assert [e["node"]["status"] for e in edges] == ["DELIVERED"]
    assert [r.event_id for r in endpoint.at("/in")] == [node["eventId"]] * 2
    missing = (await api.query(REPLAY, {"id": "V2ViaG9va0RlbGl2ZXJ5Ojk5OTk="}))[
        "replayWebhookDelivery"
    ]
    assert missing["errors"] == [{"code": "NOT_FOUND", "field": ["id"]}]
