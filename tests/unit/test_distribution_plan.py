"""The Citus plan of docs/scaling.md against the models: every table has its place in it, and
every key that stops a distributed table from being distributed as it is today is one the plan
names. A new table, or a new primary key or unique constraint without the distribution column,
fails here until docs/scaling.md (and this list) says what becomes of it."""

from __future__ import annotations

from sqlalchemy import UniqueConstraint

from store.models import Base

# Distributed tables and their distribution column (docs/scaling.md, "Distribution column").
DISTRIBUTED = {
    "customers": "id",
    "identities": "customer_id",
    "events": "customer_id",
    "event_rollups": "customer_id",
    "orders": "customer_id",
    "customer_metrics": "customer_id",
    "customer_channels": "customer_id",
    "tag_assignments": "customer_id",
    "tag_history": "customer_id",
    "stage_transitions": "customer_id",
    "segment_memberships": "customer_id",
    "segment_membership_history": "customer_id",
    "trigger_firings": "customer_id",
    "audit_customers": "customer_id",
    "duplicate_profiles": "customer_id",
    "duplicate_suggestions": "customer_a_id",
    "customer_dirty": "customer_id",
}
REFERENCE = {
    "identity_types",
    "lifecycle_stages",
    "lifecycle_edges",
    "lifecycle_rules",
    "tag_definitions",
    "segments",
    "pii_attributes",
    "source_trust",
    "survivorship_rules",
    "api_keys",
    "webhooks",
}
COORDINATOR_LOCAL = {
    "outbox",
    "webhook_deliveries",
    "idempotency_keys",
    "audit_log",
    "merge_records",
    "erased_identities",
    "duplicate_scan",
}
# The keys docs/scaling.md ("Constraints and keys that must change") changes, as
# (table, columns of the key).
MUST_CHANGE = {
    ("identities", ("id",)),
    ("identities", ("type", "value")),
    ("events", ("id",)),
    ("events", ("idempotency_key",)),
    ("event_rollups", ("id",)),
    ("orders", ("id",)),
    ("orders", ("source", "external_id")),
    ("tag_assignments", ("id",)),
    ("tag_history", ("id",)),
    ("stage_transitions", ("id",)),
    ("segment_membership_history", ("id",)),
    ("duplicate_suggestions", ("id",)),
}


def _keys(table_name: str) -> set[tuple[str, ...]]:
    table = Base.metadata.tables[table_name]
    keys = {tuple(c.name for c in table.primary_key.columns)}
    keys |= {
        tuple(c.name for c in constraint.columns)
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    }
    keys |= {tuple(c.name for c in index.columns) for index in table.indexes if index.unique}
    return keys


def test_every_table_has_its_place_in_the_plan() -> None:
    planned = set(DISTRIBUTED) | REFERENCE | COORDINATOR_LOCAL
    assert set(Base.metadata.tables) == planned
    assert not set(DISTRIBUTED) & REFERENCE and not set(DISTRIBUTED) & COORDINATOR_LOCAL


def test_the_keys_that_block_distribution_are_the_ones_the_plan_changes() -> None:
    blocking = {
        (table, key)
        for table, column in DISTRIBUTED.items()
        for key in _keys(table)
        if column not in key
    }
    assert blocking == MUST_CHANGE


def test_distributed_tables_reference_others_only_on_the_distribution_column() -> None:
    """Foreign keys between distributed tables that do not join on the customer cross shards,
    and those between distributed and coordinator-local tables cannot be declared: the plan
    drops exactly these."""
    crossing = set()
    for table_name, column in DISTRIBUTED.items():
        for fk in Base.metadata.tables[table_name].foreign_keys:
            target = fk.column.table.name
            if target in DISTRIBUTED and not (
                fk.parent.name == column and fk.column.name == DISTRIBUTED[target]
            ):
                crossing.add((table_name, fk.parent.name))
            if target in COORDINATOR_LOCAL:
                crossing.add((table_name, fk.parent.name))
    for table_name in COORDINATOR_LOCAL | REFERENCE:
        for fk in Base.metadata.tables[table_name].foreign_keys:
            if fk.column.table.name in DISTRIBUTED:
                crossing.add((table_name, fk.parent.name))
    assert crossing == {
        ("customers", "merged_into_id"),
        ("duplicate_suggestions", "customer_b_id"),
        ("stage_transitions", "merge_id"),
        ("audit_customers", "audit_id"),
        ("merge_records", "survivor_id"),
        ("merge_records", "merged_id"),
    }
