"""The lifecycle over GraphQL: the model and presets, configureLifecycle, setStage with its
permissions, stage history with rules and merges, and the funnel for every role."""

from __future__ import annotations

from typing import Any

import pytest

from api.ids import to_global_id
from domain.access.keys import Role
from tests.conftest import Api
from tests.integration.identity_helpers import row_counts as all_row_counts

CONFIGURE = """mutation($input: LifecycleModelInput!, $mapping: JSON) {
  configureLifecycle(input: $input, stageMapping: $mapping) {
    model { stages { key position terminal } transitions { from to } rules { key toStage condition } }
    errors { code field } } }"""
PRESET = """mutation($preset: String!, $mapping: JSON) {
  applyLifecyclePreset(preset: $preset, stageMapping: $mapping) {
    model { stages { key } } errors { code field } } }"""
SET_STAGE = """mutation($id: ID!, $stage: String!, $force: Boolean) {
  setStage(customer: $id, stage: $stage, reason: "phoned", force: $force) {
    customer { stage { key } stageEnteredAt }
    transition { from { key } to { key } reason actor rule }
    errors { code field } } }"""
HISTORY = """query($id: ID!) { customer(id: $id) {
  stage { key } stageHistory { from { key } to { key } reason actor rule merge { id } } } }"""
FUNNEL = """query($segment: ID) { funnel(from: "2020-01-01T00:00:00Z", segment: $segment) { stages {
  stage { key } current entered conversionToNext medianDaysInStage kpis { key label value } } } }"""
IDENTIFY = """mutation($email: String!) { identify(input: {identities: [{type: "email", value: $email}]}) {
  customer { id stage { key } } } }"""

TWO_STAGES = {
    "stages": [{"key": "lead", "name": "Lead"}, {"key": "client", "name": "Client"}],
    "transitions": [{"from": "lead", "to": "client"}],
    "rules": [
        {"key": "bought", "toStage": "client", "priority": 5,
         "condition": {"orders": {"measure": "COUNT", "op": "GTE", "value": 1}}}
    ],
}  # fmt: skip


async def row_counts(db: Any) -> dict[str, int]:
    """Rows per table, but the audit log: every mutation, refused or not, is audited."""
    return {k: v for k, v in (await all_row_counts(db)).items() if not k.startswith("audit_")}


async def identify(api: Api, email: str) -> dict[str, Any]:
    customer: dict[str, Any] = (await api.query(IDENTIFY, {"email": email}))["identify"]["customer"]
    return customer


async def test_the_model_and_its_presets_are_readable(api: Api) -> None:
    data = await api.query(
        "{ lifecyclePresets lifecycleModel { stages { key } rules { key toStage priority } } }",
        role=Role.PARTNER,
    )
    assert data["lifecyclePresets"] == ["funnel", "clm"]
    stages = [s["key"] for s in data["lifecycleModel"]["stages"]]
    assert stages == ["awareness", "consideration", "purchase", "loyalty", "churned"]
    assert data["lifecycleModel"]["rules"][0] == {
        "key": "inactive", "toStage": "churned", "priority": 50
    }  # fmt: skip


async def test_configure_lifecycle_replaces_the_model_and_its_rules_apply(api: Api) -> None:
    saved = (await api.query(CONFIGURE, {"input": TWO_STAGES}))["configureLifecycle"]
    assert saved["errors"] == []
    assert saved["model"]["rules"] == [
        {"key": "bought", "toStage": "client",
         "condition": {"orders": {"measure": "COUNT", "op": "GTE", "value": 1.0}}}
    ]  # fmt: skip
    assert (await identify(api, "lead@x.com"))["stage"] == {"key": "lead"}


async def test_configure_lifecycle_lists_every_problem_and_writes_nothing(api: Api, db) -> None:
    bad = {
        "stages": [{"key": "a", "name": "A"}, {"key": "b", "name": "B"}, {"key": "c", "name": "C"}],
        "transitions": [{"from": "a", "to": "b"}, {"from": "b", "to": "x"}],
        "rules": [{"key": "r", "toStage": "a", "condition": {"tag": {"key": "nope"}}}],
    }
    before = await row_counts(db)
    refused = (await api.query(CONFIGURE, {"input": bad}))["configureLifecycle"]
    assert refused["model"] is None
    assert {(e["code"], tuple(e["field"])) for e in refused["errors"]} == {
        ("UNKNOWN_STAGE", ("input", "transitions", "1", "to")),
        ("UNREACHABLE_RULE", ("input", "rules", "0", "toStage")),
        ("UNKNOWN_TAG", ("input", "rules", "0", "condition", "tag")),
    }
    assert await row_counts(db) == before


async def test_only_admins_configure_the_lifecycle(api: Api) -> None:
    for role in (Role.FRONTEND, Role.INTEGRATION, Role.PARTNER):
        body = (await api.post(CONFIGURE, {"input": TWO_STAGES}, role=role)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_preset_needs_a_mapping_for_stages_that_hold_customers(api: Api) -> None:
    await identify(api, "someone@x.com")
    refused = (await api.query(PRESET, {"preset": "clm"}))["applyLifecyclePreset"]
    assert refused == {
        "model": None,
        "errors": [{"code": "STAGE_MAPPING_REQUIRED", "field": ["stageMapping", "awareness"]}],
    }
    unknown = (await api.query(PRESET, {"preset": "aarrr"}))["applyLifecyclePreset"]
    assert unknown["errors"] == [{"code": "UNKNOWN_PRESET", "field": ["preset"]}]
    applied = await api.query(PRESET, {"preset": "clm", "mapping": {"awareness": "acquisition"}})
    assert applied["applyLifecyclePreset"]["model"]["stages"][0] == {"key": "acquisition"}


async def test_frontend_sets_a_stage_along_an_edge_and_history_shows_it(api: Api) -> None:
    customer = await identify(api, "fe@x.com")
    moved = (
        await api.query(
            SET_STAGE, {"id": customer["id"], "stage": "consideration"}, role=Role.FRONTEND
        )
    )["setStage"]
    assert moved["errors"] == [] and moved["customer"]["stage"] == {"key": "consideration"}
    assert moved["transition"] == {
        "from": {"key": "awareness"}, "to": {"key": "consideration"}, "reason": "phoned",
        "actor": "frontend:test-frontend", "rule": None,
    }  # fmt: skip
    history = (await api.query(HISTORY, {"id": customer["id"]}))["customer"]["stageHistory"]
    assert [(h["from"], h["to"]["key"], h["reason"]) for h in history] == [
        (None, "awareness", "new profile"),
        ({"key": "awareness"}, "consideration", "phoned"),
    ]


async def test_a_move_outside_the_graph_is_refused_and_writes_nothing(api: Api, db) -> None:
    customer = await identify(api, "out@x.com")
    before = await row_counts(db)
    refused = (await api.query(SET_STAGE, {"id": customer["id"], "stage": "loyalty"}))["setStage"]
    assert refused["errors"] == [{"code": "INVALID_TRANSITION", "field": ["stage"]}]
    assert refused["customer"] is None and await row_counts(db) == before


@pytest.mark.parametrize(("role", "allowed"), [(Role.ADMIN, True), (Role.FRONTEND, False)])
async def test_only_admins_force_a_move(api: Api, role: Role, allowed: bool) -> None:
    customer = await identify(api, f"force-{role.value}@x.com")
    variables = {"id": customer["id"], "stage": "loyalty", "force": True}
    body = (await api.post(SET_STAGE, variables, role=role)).json()
    if allowed:
        assert body["data"]["setStage"]["transition"]["reason"] == "forced: phoned"
    else:
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("role", [Role.PARTNER, Role.INTEGRATION])
async def test_partners_and_integrations_do_not_set_stages(api: Api, role: Role) -> None:
    customer = await identify(api, f"ro-{role.value}@x.com")
    body = (
        await api.post(SET_STAGE, {"id": customer["id"], "stage": "consideration"}, role=role)
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_stage_history_marks_the_transitions_a_merge_brought(api: Api) -> None:
    first, second = await identify(api, "m1@x.com"), await identify(api, "m2@x.com")
    merged = await api.query(
        """mutation($a: ID!, $b: ID!) { mergeCustomers(survivor: $a, merged: $b) { merge { id } } }""",
        {"a": first["id"], "b": second["id"]},
    )
    merge_id = merged["mergeCustomers"]["merge"]["id"]
    history = (await api.query(HISTORY, {"id": first["id"]}))["customer"]["stageHistory"]
    assert [h["merge"] for h in history] == [None, {"id": merge_id}]


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_reads_the_funnel(api: Api, role: Role) -> None:
    await identify(api, "funnel@x.com")
    stages = (await api.query(FUNNEL, role=role))["funnel"]["stages"]
    assert stages[0] == {
        "stage": {"key": "awareness"}, "current": 1, "entered": 1, "conversionToNext": 0.0,
        "medianDaysInStage": 0.0,
        "kpis": [{"key": "visits", "label": "Visits 网站访问量", "value": 0.0},
                 {"key": "exposure", "label": "Exposure 品牌曝光", "value": 0.0}],
    }  # fmt: skip
    assert [k["key"] for k in stages[2]["kpis"]] == ["conversion_rate", "average_order_value"]


async def test_the_funnel_refuses_an_unknown_segment(api: Api) -> None:
    body = (
        await api.post(
            FUNNEL, {"segment": to_global_id("Segment", "00000000-0000-0000-0000-000000000000")}
        )
    ).json()
    assert body["errors"][0]["extensions"]["code"] == "UNKNOWN_SEGMENT"


CUSTOM_KPIS = {
    "stages": [
        {"key": "lead", "name": "Lead", "kpis": [
            {"key": "app_users", "name": "App users", "measure": "EVENT_CUSTOMERS",
             "eventType": "page_view", "channel": "app"},
            {"key": "csat", "name": "CSAT", "measure": "SATISFACTION"},
            {"key": "spend", "name": "Average spend", "measure": "METRIC_AVERAGE",
             "metric": "TOTAL_SPENT"},
        ]},
        {"key": "client", "name": "Client"},
    ],
    "transitions": [{"from": "lead", "to": "client"}],
}  # fmt: skip
TRACK = """mutation($events: [EventInput!]!) { trackEvents(events: $events) { accepted } }"""
RECORD = """mutation($orders: [OrderInput!]!) { recordOrders(orders: $orders) { accepted } }"""


async def test_a_custom_model_declares_its_own_kpis_and_the_funnel_measures_them(
    api: Api,
) -> None:
    configured = (await api.query(CONFIGURE, {"input": CUSTOM_KPIS}))["configureLifecycle"]
    assert configured["errors"] == []
    model = await api.query("{ lifecycleModel { stages { key kpis { key measure channel } } } }")
    assert model["lifecycleModel"]["stages"][0]["kpis"] == [
        {"key": "app_users", "measure": "EVENT_CUSTOMERS", "channel": "app"},
        {"key": "csat", "measure": "SATISFACTION", "channel": None},
        {"key": "spend", "measure": "METRIC_AVERAGE", "channel": None},
    ]
    assert model["lifecycleModel"]["stages"][1]["kpis"] == []
    who = [{"type": "email", "value": f"k{i}@x.com"} for i in range(3)]
    events = [
        {"customer": who[0], "type": "page_view", "channel": "app"},
        {"customer": who[0], "type": "page_view", "channel": "app"},
        {"customer": who[1], "type": "page_view", "channel": "web"},
        {"customer": who[0], "type": "survey", "properties": {"satisfaction": 4}},
        {"customer": who[1], "type": "survey", "properties": {"satisfaction": 5}},
    ]
    assert (await api.query(TRACK, {"events": events}))["trackEvents"]["accepted"] == 5
    orders = [{"customer": who[2], "externalId": "k-1", "amount": "90", "currency": "CNY"}]
    assert (await api.query(RECORD, {"orders": orders}))["recordOrders"]["accepted"] == 1
    stages = (await api.query(FUNNEL))["funnel"]["stages"]  # everyone is a lead: no rules
    assert [(s["stage"]["key"], s["kpis"]) for s in stages] == [
        ("lead", [{"key": "app_users", "label": "App users", "value": 1.0},
                  {"key": "csat", "label": "CSAT", "value": 4.5},
                  {"key": "spend", "label": "Average spend", "value": 30.0}]),
        ("client", []),
    ]  # fmt: skip


async def test_bad_kpi_declarations_are_refused_with_their_paths(api: Api) -> None:
    bad = {
        "stages": [{"key": "lead", "name": "Lead", "kpis": [
            {"key": "n", "name": "N", "measure": "EVENTS"},
            {"key": "n", "name": "Twice", "measure": "METRIC_AVERAGE", "metric": "HEIGHT"},
        ]}],
        "transitions": [],
    }  # fmt: skip
    refused = (await api.query(CONFIGURE, {"input": bad}))["configureLifecycle"]
    assert refused["model"] is None
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [
        ("INVALID_KPI", ["input", "stages", "0", "kpis", "0", "eventType"]),
        ("INVALID_KPI", ["input", "stages", "0", "kpis", "1", "metric"]),
        ("INVALID_KPI", ["input", "stages", "0", "kpis", "1", "key"]),
    ]
