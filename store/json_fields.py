"""How each field of a profile is written as JSON by PostgreSQL (store.profile_json's parts).

Per GraphQL type, a map from a field's Python name to either the SQL expression of its value
(a leaf) or a function from what is picked below it to the SQL of the nested object or list
(None when that selection does not compile). Values are written as the resolvers' answer
writes them: global ids as api.ids does, DateTime as Python's `isoformat()` of a UTC datetime,
Decimal as its text, Float as Python's `repr` (an integral float keeps its `.0`).

Aliases: `c` a customer row, `i` an identity, `a` a tag assignment and `d` its definition,
`s` a lifecycle stage, `t` a stage transition (`from_s`, `to_s` its stages), `m` a
customer's metrics row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pick:
    """One field of a selection: its response key (an alias or its name), the field's Python
    name, and what is picked below it (empty for a leaf)."""

    key: str
    name: str
    below: tuple[Pick, ...] = ()


Nested = Callable[[tuple[Pick, ...]], "str | None"]
Fields = Mapping[str, "str | Nested"]


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def iso(column: str, separator: str = "T") -> str:
    """Python's isoformat() of a UTC timestamp (str() with a space separator); NULL stays."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (
        f"(to_char({utc}, 'YYYY-MM-DD\"{separator}\"HH24:MI:SS') || CASE WHEN "
        f"date_trunc('second', {column}) = {column} THEN '' ELSE to_char({utc}, '.US') END"
        " || '+00:00')"
    )


def global_id(type_name: str, column: str) -> str:
    return f"encode(convert_to('{type_name}:' || {column}::text, 'UTF8'), 'base64')"


# The values of the schema's enums that compiled fields write (api.schema's CustomerStatus,
# TagValueType and TagKind; tests/api/test_compiled_reads.py holds them equal).
ENUMS = {
    "CustomerStatus": ("ACTIVE", "MERGED", "ERASED"),
    "TagValueType": ("FLAG", "ENUM", "NUMBER", "TEXT", "DATE"),
    "TagKind": ("MANUAL", "RULE", "IMPORTED"),
}


def enum_value(column: str, enum: str) -> str:
    """The column's value when the schema's enum has it; any other value fails the statement
    (a cast that cannot succeed), as the resolvers fail to write it: the answer is an internal
    error, never a value the schema does not name."""
    values = ", ".join(quote(v) for v in ENUMS[enum])
    fails = f"({quote(f'not a {enum}: ')} || {column})::int::text"
    return f"(CASE WHEN {column} IN ({values}) THEN {column} ELSE {fails} END)"


def _float(column: str) -> str:
    """Python's repr of a float as a JSON number: PostgreSQL writes 1.0 as `1`."""
    return (
        f"(CASE WHEN {column} = trunc({column}) AND abs({column}) < 1e15 "
        f"THEN ({column}::text || '.0')::json ELSE to_json({column}) END)"
    )


def json_object(parts: Sequence[tuple[str, str]]) -> str:
    """json_build_object of (key, expression) pairs; PostgreSQL takes at most 100 arguments,
    so a wider object is the concatenation of narrower ones (keys stay in order)."""
    chunks = [parts[i : i + 50] for i in range(0, len(parts), 50)] or [[]]
    built = [
        "json_build_object(" + ", ".join(f"{quote(k)}, {v}" for k, v in chunk) + ")"
        for chunk in chunks
    ]
    if len(built) == 1:
        return built[0]
    return "(" + " || ".join(f"{b}::jsonb" for b in built) + ")::json"


def object_of(picks: tuple[Pick, ...], type_name: str, fields: Fields) -> str | None:
    """The JSON object of these picks over a type's fields, or None if one does not compile."""
    parts = []
    for pick in picks:
        field = quote(type_name) if pick.name == "__typename" else fields.get(pick.name)
        if field is None or isinstance(field, str) == bool(pick.below):
            return None
        built = field if isinstance(field, str) else field(pick.below)
        if built is None:
            return None
        parts.append((pick.key, built))
    return json_object(parts)


def _list(item: str | None, source: str, order: str) -> str | None:
    if item is None:
        return None
    return f"(SELECT coalesce(json_agg({item} ORDER BY {order}), '[]') {source})"


def _identity_fields() -> Fields:
    return {
        "type": "i.type",
        "value": "i.value",
        "source": "i.source",
        "verified": "i.verified",
        "first_seen_at": iso("i.first_seen_at"),
        "last_seen_at": iso("i.last_seen_at"),
    }


def identities(sees_pii: bool) -> Nested:
    """A profile's identities; those of PII types left out for a caller who sees no PII."""
    hidden = "" if sees_pii else " AND i.type NOT IN (SELECT key FROM identity_types WHERE is_pii)"
    source = f"FROM identities i WHERE i.customer_id = c.id{hidden}"
    return lambda picks: _list(
        object_of(picks, "Identity", _identity_fields()), source, "i.type, i.first_seen_at, i.id"
    )


def _definition_fields() -> Fields:
    return {
        "id": global_id("TagDefinition", "d.id"),
        "key": "d.key",
        "name": "d.name",
        "description": "d.description",
        "category": "d.category",
        "value_type": enum_value("d.value_type", "TagValueType"),
        "allowed_values": "d.allowed_values",
        "kind": enum_value("d.kind", "TagKind"),
        "condition": "d.condition",
        "default_ttl_days": "d.default_ttl_days",
        "archived": "d.archived",
        "pii": "d.pii",
    }


def tags(picks: tuple[Pick, ...]) -> str | None:
    """A profile's unexpired tags with their definitions, for a caller who sees PII (what a
    partner sees of them depends on stored conditions: the resolvers answer)."""
    fields: Fields = {
        "tag": lambda below: object_of(below, "TagDefinition", _definition_fields()),
        "value": "a.value",
        "source": "a.source",
        "confidence": _float("a.confidence"),
        "assigned_at": iso("a.assigned_at"),
        "expires_at": iso("a.expires_at"),
    }
    source = (
        "FROM tag_assignments a JOIN tag_definitions d ON d.id = a.tag_id"
        " WHERE a.customer_id = c.id AND (a.expires_at IS NULL OR a.expires_at > now())"
    )
    return _list(object_of(picks, "TagAssignment", fields), source, "a.assigned_at, a.id")


def _stage_fields(key: str, stage: str) -> Fields:
    """A stage by `key`, read off the row `stage` of lifecycle_stages; a stage since gone
    from the model shows its key (api.schema.lifecycle.stage_or_unknown)."""
    return {
        "key": key,
        "name": f"coalesce({stage}.name, {key})",
        "position": f"coalesce({stage}.position, -1)",
        "terminal": f"coalesce({stage}.terminal, false)",
    }


def stage(picks: tuple[Pick, ...]) -> str | None:
    """A profile's current stage: null without one, or when the model no longer has it."""
    built = object_of(picks, "LifecycleStage", _stage_fields("s.key", "s"))
    return (
        None if built is None else f"(SELECT {built} FROM lifecycle_stages s WHERE s.key = c.stage)"
    )


def stage_history(sees_pii: bool) -> Nested:
    """A profile's stage transitions, oldest first; reasons are free text, null for a caller
    who sees no PII."""

    def one(end: str) -> Nested:
        def built(below: tuple[Pick, ...]) -> str | None:
            fields = _stage_fields(f"t.{end}_stage", f"{end}_s")
            found = object_of(below, "LifecycleStage", fields)
            return (
                None
                if found is None
                else f"CASE WHEN t.{end}_stage IS NULL THEN NULL ELSE {found} END"
            )

        return built

    fields: Fields = {
        "from": one("from"),
        "to": one("to"),
        "at": iso("t.at"),
        "reason": "t.reason" if sees_pii else "NULL::text",
        "actor": "t.actor",
        "rule": "t.rule_key",
    }
    source = (
        "FROM stage_transitions t LEFT JOIN lifecycle_stages from_s ON from_s.key = t.from_stage"
        " LEFT JOIN lifecycle_stages to_s ON to_s.key = t.to_stage WHERE t.customer_id = c.id"
    )
    return lambda picks: _list(object_of(picks, "StageTransition", fields), source, "t.at, t.id")


_RFM = "m.rfm_recency <> 0 AND m.rfm_frequency <> 0 AND m.rfm_monetary <> 0 AND m.rfm_segment <> ''"


def metrics(picks: tuple[Pick, ...]) -> str | None:
    """A profile's metrics; without a row, those of no activity (domain.activity.metrics)."""
    rfm: Fields = {
        "recency": "m.rfm_recency",
        "frequency": "m.rfm_frequency",
        "monetary": "m.rfm_monetary",
        "code": "m.rfm_recency::text || m.rfm_frequency::text || m.rfm_monetary::text",
        "segment": "m.rfm_segment",
    }

    def score(below: tuple[Pick, ...]) -> str | None:
        built = object_of(below, "RfmScore", rfm)
        return None if built is None else f"CASE WHEN {_RFM} THEN {built} END"

    fields: Fields = {
        "order_count": "coalesce(m.order_count, 0)",
        "total_spent": "coalesce(m.total_spent::text, '0.00')",
        "first_order_at": iso("m.first_order_at"),
        "last_order_at": iso("m.last_order_at"),
        "last_activity_at": iso("m.last_activity_at"),
        "rfm": score,
        "clv": "m.clv::text",
        "churn_risk": _float("m.churn_risk"),
    }
    built = object_of(picks, "CustomerMetrics", fields)
    if built is None:
        return None
    joined = "(SELECT 1) AS one LEFT JOIN customer_metrics m ON m.customer_id = c.id"
    return f"(SELECT {built} FROM {joined})"


def customer_fields(sees_pii: bool) -> Fields:
    """A profile's fields; PII null for a caller who sees none, and for an erased profile."""

    def pii(value: str) -> str:
        return (
            f"CASE WHEN c.status = 'ERASED' THEN NULL ELSE {value} END"
            if sees_pii
            else "NULL::text"
        )

    fields: dict[str, str | Nested] = {
        "id": global_id("Customer", "c.id"),
        "status": enum_value("c.status", "CustomerStatus"),
        **{name: f"c.{name}" for name in ("gender", "locale", "country", "region", "city")},
        **{
            name: iso(f"c.{name}")
            for name in (
                "created_at",
                "updated_at",
                "first_seen_at",
                "last_seen_at",
                "stage_entered_at",
            )
        },
        **{
            name: pii(f"c.{name}")
            for name in ("display_name", "first_name", "last_name", "email", "phone")
        },
        "birthday": pii("to_char(c.birthday, 'YYYY-MM-DD')"),
        "identities": identities(sees_pii),
        "stage": stage,
        "stage_history": stage_history(sees_pii),
        "metrics": metrics,
    }
    if sees_pii:  # a partner's attributes and tags depend on stored conditions: resolvers
        fields |= {"attributes": "c.attributes", "tags": tags}
    return fields
