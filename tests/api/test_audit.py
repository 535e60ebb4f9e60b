"""The audit log: one row per mutation (refusals included) and per export, readable by admins
through auditLog(first, after, customer, actor)."""

from __future__ import annotations

from typing import Any

from domain.access.keys import Role
from tests.conftest import Api

IDENTIFY = """mutation($email: String!) {
  identify(input: {identities: [{type: "email", value: $email}]}) { customer { id } errors { code } }
}"""
AUDIT = """query($first: Int, $after: String, $customer: ID, $actor: String) {
  auditLog(first: $first, after: $after, customer: $customer, actor: $actor) {
    edges { cursor node { operation actor role outcome codes customerIds requestId at } }
    pageInfo { hasNextPage endCursor }
  }
}"""


async def audit_log(api: Api, **variables: Any) -> list[dict[str, Any]]:
    data = await api.query(AUDIT, variables)
    return [edge["node"] for edge in data["auditLog"]["edges"]]


async def identify(api: Api, email: str, role: Role = Role.INTEGRATION) -> dict[str, Any]:
    return (await api.post(IDENTIFY, {"email": email}, role=role)).json()  # type: ignore[no-any-return]


async def test_every_mutation_leaves_a_row_with_who_what_whom_and_how(api: Api) -> None:
    ann = (await identify(api, "ann@example.com"))["data"]["identify"]["customer"]["id"]
    await identify(api, "not an email")
    forbidden = await identify(api, "eve@example.com", role=Role.PARTNER)
    assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    newest_first = await audit_log(api)
    assert [(r["operation"], r["outcome"], r["codes"]) for r in newest_first] == [
        ("identify", "REFUSED", ["FORBIDDEN"]),
        ("identify", "REFUSED", ["INVALID_IDENTITY"]),
        ("identify", "OK", []),
    ]
    ok = newest_first[-1]
    assert ok["actor"] == "integration:test-integration" and ok["role"] == "integration"
    assert ok["customerIds"] == [ann] and ok["requestId"] and ok["at"]
    assert newest_first[0]["actor"] == "partner:test-partner"
    assert "ann@example.com" not in str(newest_first), "the log holds no PII"


async def test_audit_log_filters_by_customer_and_actor_and_pages(api: Api) -> None:
    ann = (await identify(api, "ann@example.com"))["data"]["identify"]["customer"]["id"]
    await identify(api, "bob@example.com")
    await api.query(
        """mutation($id: ID!) { updateCustomer(id: $id, patch: {city: "Hangzhou"}) {
             errors { code } } }""",
        {"id": ann},
        role=Role.FRONTEND,
    )
    about_ann = await audit_log(api, customer=ann)
    assert [r["operation"] for r in about_ann] == ["updateCustomer", "identify"]
    by_frontend = await audit_log(api, actor="frontend:test-frontend")
    assert [r["operation"] for r in by_frontend] == ["updateCustomer"]

    first = (await api.query(AUDIT, {"first": 2}))["auditLog"]
    assert len(first["edges"]) == 2 and first["pageInfo"]["hasNextPage"]
    rest = await api.query(AUDIT, {"first": 2, "after": first["pageInfo"]["endCursor"]})
    assert [e["node"]["operation"] for e in rest["auditLog"]["edges"]] == ["identify"]
    assert not rest["auditLog"]["pageInfo"]["hasNextPage"]


async def test_export_returns_everything_held_on_a_person_and_is_audited(api: Api) -> None:
    ann = (await identify(api, "ann@example.com"))["data"]["identify"]["customer"]["id"]
    await api.query(
        """mutation { trackEvents(events: [{customer: {type: "email", value: "ann@example.com"},
             type: "page_view", properties: {path: "/shoes"}}]) { accepted errors { code } } }""",
        role=Role.INTEGRATION,
    )
    data = await api.query("query($id: ID!) { exportCustomer(id: $id) }", {"id": ann})
    export = data["exportCustomer"]
    assert export["profile"]["email"] == "ann@example.com"
    assert [(i["type"], i["value"]) for i in export["identities"]] == [("email", "ann@example.com")]
    assert [e["properties"] for e in export["events"]] == [{"path": "/shoes"}]
    assert {"tags", "tagHistory", "stageHistory", "orders", "metrics", "merges"} <= set(export)
    assert (await audit_log(api, customer=ann))[0]["operation"] == "exportCustomer"
