"""Who may do what: every root field of the served schema, for every role and for no key,
against the one table below (DESIGN.md, "Access"). A field added without an entry here fails.

Each field is called over HTTP with the least arguments that pass GraphQL validation, made up
from its argument types, so that the role, not the arguments, decides: a role outside the
entry gets FORBIDDEN for that field, a role inside it gets anything but FORBIDDEN.
"""

from __future__ import annotations

from typing import Any

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    Undefined,
    get_named_type,
    is_leaf_type,
)

from api.schema.root import build_schema
from domain.access.keys import Role
from tests.conftest import Api

EVERYONE = frozenset(Role)
ADMIN = frozenset({Role.ADMIN})
INGEST = frozenset({Role.ADMIN, Role.INTEGRATION})  # ingest, identify, merge
TAGGERS = frozenset({Role.ADMIN, Role.INTEGRATION, Role.FRONTEND})
EDITORS = frozenset({Role.ADMIN, Role.FRONTEND})  # update profiles, set stage

WHO_MAY: dict[str, frozenset[Role]] = {
    # Query: everyone reads (partners with PII masked), except administration.
    "node": EVERYONE,
    "customer": EVERYONE,
    "customers": EVERYONE,
    "identityTypes": EVERYONE,
    "lifecycleModel": EVERYONE,
    "lifecyclePresets": EVERYONE,
    "funnel": EVERYONE,
    "tagDefinitions": EVERYONE,
    "tagDefinition": EVERYONE,
    "segment": EVERYONE,
    "segments": EVERYONE,
    "previewSegment": EVERYONE,
    "insights": EVERYONE,
    "webhooks": ADMIN,
    "webhookDeliveries": ADMIN,
    "apiKeys": ADMIN,
    "auditLog": ADMIN,
    "exportCustomer": ADMIN,
    "piiAttributes": ADMIN,
    "sharedIdentifiers": ADMIN,
    "survivorship": ADMIN,
    "duplicateSuggestions": ADMIN,
    # Mutation
    "identify": INGEST,
    "identifyBatch": INGEST,
    "mergeCustomers": INGEST,
    "unmerge": INGEST,
    "trackEvents": INGEST,
    "recordOrders": INGEST,
    "tagCustomers": TAGGERS,
    "untagCustomers": TAGGERS,
    "updateCustomer": EDITORS,
    "setStage": EDITORS,
    "defineIdentityType": ADMIN,
    "findDuplicates": ADMIN,
    "acceptDuplicate": ADMIN,
    "rejectDuplicate": ADMIN,
    "defineTag": ADMIN,
    "updateTag": ADMIN,
    "archiveTag": ADMIN,
    "defineSegment": ADMIN,
    "updateSegment": ADMIN,
    "deleteSegment": ADMIN,
    "refreshSegment": ADMIN,
    "configureLifecycle": ADMIN,
    "applyLifecyclePreset": ADMIN,
    "defineWebhook": ADMIN,
    "deleteWebhook": ADMIN,
    "replayWebhookDelivery": ADMIN,
    "createApiKey": ADMIN,
    "revokeApiKey": ADMIN,
    "setApiKeyBudget": ADMIN,
    "eraseCustomer": ADMIN,
    "declareAttributePii": ADMIN,
    "configureSurvivorship": ADMIN,
}

SCALARS = {
    "String": '"x"',
    "ID": '"x"',
    "Int": "1",
    "Float": "1.0",
    "Boolean": "false",
    "JSON": "{}",
    "DateTime": '"2024-01-01T00:00:00+00:00"',
    "Date": '"2024-01-01"',
    "Decimal": '"1"',
}
SCHEMA = build_schema()._schema


def literal(kind: GraphQLInputType) -> str:
    """The smallest valid GraphQL literal of a (required) input type."""
    if isinstance(kind, GraphQLNonNull):
        return literal(kind.of_type)
    if isinstance(kind, GraphQLList):
        return "[]"
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLScalarType):
        return SCALARS.get(kind.name, '"x"')
    assert isinstance(kind, GraphQLInputObjectType)
    fields = kind.fields.items()
    if _one_of(kind):  # exactly one field: the first (`and: []` for a condition)
        name, first = next(iter(fields))
        return f"{{ {name}: {literal(first.type)} }}"
    required = [
        f"{name}: {literal(f.type)}"
        for name, f in fields
        if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
    ]
    return "{ " + ", ".join(required) + " }"


def _one_of(kind: GraphQLInputObjectType) -> bool:
    definition = (kind.extensions or {}).get("strawberry-definition")
    directives = getattr(definition, "directives", ()) or ()
    return kind.is_one_of or any(type(d).__name__ == "OneOf" for d in directives)


def _required(argument: GraphQLArgument) -> bool:
    return isinstance(argument.type, GraphQLNonNull) and argument.default_value is Undefined


def document(operation: str, name: str, field: GraphQLField) -> str:
    arguments = [f"{n}: {literal(a.type)}" for n, a in field.args.items() if _required(a)]
    call = f"{name}({', '.join(arguments)})" if arguments else name
    selection = "" if is_leaf_type(get_named_type(field.type)) else " { __typename }"
    return f"{operation} {{ {call}{selection} }}"


def root_fields() -> list[tuple[str, str, GraphQLField]]:
    return [
        (operation, name, field)
        for operation, root in (("query", SCHEMA.query_type), ("mutation", SCHEMA.mutation_type))
        if root is not None
        for name, field in root.fields.items()
    ]


def test_every_root_field_has_an_entry_in_the_table() -> None:
    missing = sorted(name for _, name, _ in root_fields() if name not in WHO_MAY)
    assert not missing, f"root fields without an entry in WHO_MAY: {missing}"


def _forbidden(body: dict[str, Any], name: str) -> bool:
    return any(
        (error.get("extensions") or {}).get("code") == "FORBIDDEN" and error.get("path") == [name]
        for error in body.get("errors") or []
    )


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: r.value if r else "no-key")
async def test_each_role_may_call_exactly_the_fields_its_entry_names(
    api: Api, role: Role | None
) -> None:
    wrong = []
    for operation, name, field in root_fields():
        response = await api.post(document(operation, name, field), role=role)
        if role is None:
            assert response.status_code == 401, (name, response.text)
            continue
        body = response.json()
        assert response.status_code == 200, (name, body)
        codes = {(e.get("extensions") or {}).get("code") for e in body.get("errors") or []}
        assert not codes & {"GRAPHQL_VALIDATION_FAILED", "INTERNAL_ERROR"}, (name, body)
        if _forbidden(body, name) != (role not in WHO_MAY.get(name, frozenset())):
            wrong.append((name, body.get("errors")))
    assert not wrong, f"{role}: {wrong}"


def test_every_mutation_is_guarded_and_audited_by_allow() -> None:
    """The audit trail rides on `allow(...)`: a mutation without it would be neither."""
    from strawberry.permission import PermissionExtension

    from api.audit import AuditTrail
    from api.schema.root import Mutation

    for field in Mutation.__strawberry_definition__.fields:
        kinds = [type(extension) for extension in field.extensions]
        assert PermissionExtension in kinds and kinds[-1] is AuditTrail, field.name
