"""The read benchmark's queries, written once for our schema and once, with the same fields,
for PostGraphile's (v5, Amber preset, connection-filter, stage smart tags: see
bench/postgraphile/graphile.config.mjs), plus the hand-written SQL floor for Q2.

Both sides ask for the same profile: a few core fields, identities, unexpired tags with their
definitions, the current stage, the last five stage transitions and the metrics. Our
`stageHistory` has no page argument and returns the whole history; the dataset holds at most
five transitions per customer, so both sides return the same rows (`normalized` checks that).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from api.ids import to_global_id

PAGE = 50
Q3_STAGES = ["purchase", "loyalty"]
Q3_TAG = "interest_sports"
Q3_MIN_SPENT = 3000
Q3_EVENT, Q3_WITHIN_DAYS = "add_to_cart", 30
Q4_SEGMENT = "champions"

OURS_PROFILE = """
fragment Profile on Customer {
  id displayName email phone city lastSeenAt stageEnteredAt
  identities { type value verified }
  tags { value assignedAt tag { key name category } }
  stage { key name }
  stageHistory { from { key } to { key name } at reason }
  metrics { orderCount totalSpent lastOrderAt lastActivityAt clv churnRisk }
}
"""

THEIR_PROFILE = """
fragment Profile on Customer {
  id displayName email phone city lastSeenAt stageEnteredAt
  identities: identitiesByCustomerId { nodes { type value verified } }
  tags: tagAssignmentsByCustomerId(
    filter: {or: [{expiresAt: {isNull: true}}, {expiresAt: {greaterThan: $now}}]}
  ) { nodes { value assignedAt tag: tagDefinitionByTagId { key name category } } }
  stage: stageRecord { key name }
  stageHistory: stageTransitionsByCustomerId(orderBy: AT_DESC, first: 5) {
    nodes { from: fromStageRecord { key } to: toStageRecord { key name } at reason }
  }
  metrics: customerMetricByCustomerId {
    orderCount totalSpent lastOrderAt lastActivityAt clv churnRisk
  }
}
"""

PAGE_FIELDS = "edges { cursor node { ...Profile } } pageInfo { hasNextPage endCursor }"

OURS = {
    "Q1": "query Q1($id: ID!) { customer(id: $id) { ...Profile } }",
    "Q2": f"""query Q2 {{
      customers(first: {PAGE}, orderBy: [{{field: LAST_SEEN_AT, direction: DESC}}]) {{
        {PAGE_FIELDS}
      }}
    }}""",
    "Q3": f"""query Q3 {{
      customers(first: {PAGE}, where: {{and: [
        {{stage: {{in: {json.dumps(Q3_STAGES)}}}}},
        {{tag: {{key: "{Q3_TAG}"}}}},
        {{metric: {{name: MONETARY, op: GTE, value: {Q3_MIN_SPENT}}}}},
        {{event: {{type: "{Q3_EVENT}", withinDays: {Q3_WITHIN_DAYS}}}}}
      ]}}) {{ {PAGE_FIELDS} }}
    }}""",
    "Q4": f"""query Q4 {{
      segment(key: "{Q4_SEGMENT}") {{ members(first: {PAGE}) {{ {PAGE_FIELDS} }} }}
    }}""",
}

THEIRS = {
    "Q1": """query Q1($id: UUID!, $now: Datetime!) {
      customer: customerByRowId(rowId: $id) { ...Profile }
    }""",
    "Q2": f"""query Q2($now: Datetime!) {{
      customers: allCustomers(first: {PAGE}, orderBy: [LAST_SEEN_AT_DESC, ROW_ID_DESC],
                              condition: {{status: "ACTIVE"}}) {{ {PAGE_FIELDS} }}
    }}""",
    "Q3": f"""query Q3($now: Datetime!, $since: Datetime!) {{
      customers: allCustomers(first: {PAGE}, orderBy: [CREATED_AT_ASC, ROW_ID_ASC], filter: {{
        status: {{equalTo: "ACTIVE"}}
        stage: {{in: {json.dumps(Q3_STAGES)}}}
        tagAssignmentsByCustomerId: {{some: {{
          tagDefinitionByTagId: {{key: {{equalTo: "{Q3_TAG}"}}}}
          or: [{{expiresAt: {{isNull: true}}}}, {{expiresAt: {{greaterThan: $now}}}}]
        }}}}
        customerMetricByCustomerId: {{totalSpent: {{greaterThanOrEqualTo: "{Q3_MIN_SPENT}"}}}}
        eventsByCustomerId: {{some: {{
          type: {{equalTo: "{Q3_EVENT}"}}, occurredAt: {{greaterThanOrEqualTo: $since}}
        }}}}
      }}) {{ {PAGE_FIELDS} }}
    }}""",
    "Q4": f"""query Q4($now: Datetime!) {{
      customers: allCustomers(first: {PAGE}, orderBy: [CREATED_AT_ASC, ROW_ID_ASC], filter: {{
        status: {{equalTo: "ACTIVE"}}
        segmentMembershipsByCustomerId: {{some: {{
          segmentBySegmentId: {{key: {{equalTo: "{Q4_SEGMENT}"}}}}
        }}}}
      }}) {{ {PAGE_FIELDS} }}
    }}""",
}

# Q2's rows in one statement: the page of customers, each with its nested lists as JSON built
# by correlated subqueries, aggregated into one JSON array. The order matches the API's
# (last_seen_at DESC, id DESC, a never-seen profile last), on the index the API's sort uses.
FLOOR_Q2 = f"""
SELECT coalesce(json_agg(p ORDER BY p.sort_at DESC, p.id DESC), '[]')::text FROM (
  SELECT c.id, coalesce(c.last_seen_at, '1970-01-01 00:00:00+00') AS sort_at, c.display_name,
         c.email, c.phone, c.city, c.last_seen_at, c.stage_entered_at,
         (SELECT coalesce(json_agg(json_build_object('type', i.type, 'value', i.value,
                                                     'verified', i.verified)
                                   ORDER BY i.type, i.first_seen_at, i.id), '[]')
          FROM identities i WHERE i.customer_id = c.id) AS identities,
         (SELECT coalesce(json_agg(json_build_object(
                   'value', a.value, 'assigned_at', a.assigned_at,
                   'tag', json_build_object('key', d.key, 'name', d.name, 'category', d.category))
                   ORDER BY a.assigned_at, a.id), '[]')
          FROM tag_assignments a JOIN tag_definitions d ON d.id = a.tag_id
          WHERE a.customer_id = c.id AND (a.expires_at IS NULL OR a.expires_at > now()))
           AS tags,
         (SELECT json_build_object('key', s.key, 'name', s.name)
          FROM lifecycle_stages s WHERE s.key = c.stage) AS stage,
         (SELECT coalesce(json_agg(json_build_object(
                   'from', t.from_stage, 'to', json_build_object('key', t.to_stage, 'name', s.name),
                   'at', t.at, 'reason', t.reason) ORDER BY t.at), '[]')
          FROM (SELECT * FROM stage_transitions t WHERE t.customer_id = c.id
                ORDER BY t.at DESC LIMIT 5) t
          LEFT JOIN lifecycle_stages s ON s.key = t.to_stage) AS stage_history,
         (SELECT json_build_object('order_count', m.order_count, 'total_spent', m.total_spent,
                                   'last_order_at', m.last_order_at,
                                   'last_activity_at', m.last_activity_at, 'clv', m.clv,
                                   'churn_risk', m.churn_risk)
          FROM customer_metrics m WHERE m.customer_id = c.id) AS metrics
  FROM customers c
  WHERE c.status = 'ACTIVE'
  ORDER BY coalesce(c.last_seen_at, '1970-01-01 00:00:00+00') DESC, c.id DESC
  LIMIT {PAGE}
) p
"""


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP body per variant: Q1 cycles over many customers, the others have one."""

    query: str
    system: str
    bodies: list[dict[str, Any]]


def requests(query: str, customer_ids: list[str], now: datetime) -> dict[str, Request]:
    """The bodies both systems receive for `query`; `customer_ids` are row UUIDs (Q1 picks
    from them at random, the same list for both)."""
    variables: dict[str, Any] = {
        "now": now.isoformat(),
        "since": (now - timedelta(days=Q3_WITHIN_DAYS)).isoformat(),
    }
    ours_doc, their_doc = OURS[query] + OURS_PROFILE, THEIRS[query] + THEIR_PROFILE
    their_vars = {k: v for k, v in variables.items() if f"${k}" in their_doc}
    if query == "Q1":
        ours = [
            {"query": ours_doc, "variables": {"id": to_global_id("Customer", i)}}
            for i in customer_ids
        ]
        theirs = [{"query": their_doc, "variables": {**their_vars, "id": i}} for i in customer_ids]
    else:
        ours, theirs = [{"query": ours_doc}], [{"query": their_doc, "variables": their_vars}]
    return {
        "ours": Request(query, "ours", ours),
        "postgraphile": Request(query, "postgraphile", theirs),
    }


def _nodes(value: Any) -> list[Any]:
    return value["nodes"] if isinstance(value, dict) else value or []


def normalized(data: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What both systems must agree on, whatever their shapes: per customer, in page order,
    its email, identities, tag keys, stage, transitions and order count."""
    root = (
        data.get("customer") or data.get("customers") or (data.get("segment") or {}).get("members")
    )
    if root is None:
        return []
    nodes = [root] if "edges" not in root else [edge["node"] for edge in root["edges"]]
    return [
        (
            node["email"],
            sorted((i["type"], i["value"]) for i in _nodes(node["identities"])),
            sorted(t["tag"]["key"] for t in _nodes(node["tags"])),
            node["stage"] and node["stage"]["key"],
            sorted(
                ((h["from"] or {}).get("key", ""), h["to"]["key"])
                for h in _nodes(node["stageHistory"])
            ),
            (node["metrics"] or {}).get("orderCount"),
        )
        for node in nodes
    ]
