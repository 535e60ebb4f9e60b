"""Insights over GraphQL: Query.insights by condition or segment, Segment.insights, the partner
policy, refusals with the argument's path, and one statement for the figures."""

from __future__ import annotations

from typing import Any

from api.ids import to_global_id
from domain.access.keys import Role
from tests.api.test_segments_api import CHINA, define, population
from tests.conftest import Api

FIELDS = """memberCount totalSpent averageOrderValue
  stages { value memberCount share } rfmSegments { value memberCount }
  channels { value memberCount } cities { value memberCount share totalSpent averageOrderValue }"""
INSIGHTS = f"""query($where: ConditionInput, $segment: ID) {{
  insights(where: $where, segment: $segment) {{ {FIELDS} }} }}"""
SEGMENT = f"""query($key: String!) {{ segment(key: $key) {{ insights {{ {FIELDS} }} }} }}"""
NAMED = {"attribute": {"field": "displayName", "op": "STARTS_WITH", "value": "A"}}


def cities(found: dict[str, Any]) -> list[tuple[str | None, int, float]]:
    return [(b["value"], b["memberCount"], b["share"]) for b in found["cities"]]


async def test_insights_of_a_condition_and_of_a_segment_agree(api: Api, db: Any) -> None:
    await population(db)  # Ann and Cai in CN, Bob in the US, Dan nowhere; nobody has a city
    segment = await define(api, "china", CHINA, materialized=True)
    by_where = (await api.query(INSIGHTS, {"where": CHINA}, role=Role.PARTNER))["insights"]
    by_id = (await api.query(INSIGHTS, {"segment": segment["id"]}))["insights"]
    on_segment = (await api.query(SEGMENT, {"key": "china"}))["segment"]["insights"]
    assert by_where == by_id == on_segment
    assert by_where == {
        "memberCount": 2,
        "totalSpent": "0.00",
        "averageOrderValue": None,
        "stages": [{"value": None, "memberCount": 2, "share": 1.0}],
        "rfmSegments": [{"value": None, "memberCount": 2}],
        "channels": [],
        "cities": [
            {"value": None, "memberCount": 2, "share": 1.0, "totalSpent": "0.00",
             "averageOrderValue": None}
        ],
    }  # fmt: skip
    everyone = (await api.query(INSIGHTS))["insights"]
    assert everyone["memberCount"] == 4


async def test_insights_cost_one_statement_after_the_key_and_the_catalog(api: Api, db: Any) -> None:
    await population(db)
    await api.query(INSIGHTS, {"where": CHINA})
    api.sql.reset()
    await api.query(INSIGHTS, {"where": CHINA})
    figures = [s for s in api.sql.statements if "customer_metrics" in s]
    assert len(figures) == 1, api.sql.statements


async def test_partners_get_no_insights_through_pii_and_bad_input_names_its_path(
    api: Api, db: Any
) -> None:
    await population(db)
    named = await define(api, "a_names", NAMED, materialized=True)
    for query, variables in (
        (INSIGHTS, {"where": NAMED}),
        (INSIGHTS, {"segment": named["id"]}),
        (SEGMENT, {"key": "a_names"}),
    ):
        body = (await api.post(query, variables, role=Role.PARTNER)).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
    customer_id = to_global_id("Customer", "00000000-0000-0000-0000-000000000000")
    body = (await api.post(INSIGHTS, {"segment": customer_id})).json()
    assert body["errors"][0]["extensions"].pop("requestId")
    assert body["errors"][0]["extensions"] == {"code": "INVALID_ID", "field": ["segment"]}
    bad = {"and": [CHINA, {"tag": {"key": "no-such-tag"}}]}
    body = (await api.post(INSIGHTS, {"where": bad})).json()
    assert body["errors"][0]["extensions"].pop("requestId")
    assert body["errors"][0]["extensions"] == {
        "code": "UNKNOWN_TAG",
        "field": ["where", "and", "1", "tag"],
    }
