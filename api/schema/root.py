"""The Schema object: the root types, merged from each area's root fields.

Each area keeps its root fields in its own `*_ops.py` module; this file only lists them.
"""

from __future__ import annotations

from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types

from api.errors import ErrorShaping
from api.execution import FastExecutionContext
from api.limits import Limits
from api.operation_log import OperationLog
from api.payloads import Refusals
from api.read_routing import ReadRouting
from api.schema.access_ops import AccessMutations, AccessQueries
from api.schema.activity_ops import ActivityMutations
from api.schema.change_ops import ChangeMutations, ChangeQueries, ChangeSubscriptions
from api.schema.customer_ops import CustomerMutations, CustomerQueries
from api.schema.customers import Customer, MergeRecord
from api.schema.duplicate_ops import DuplicateMutations, DuplicateQueries
from api.schema.identity_ops import IdentityMutations, IdentityQueries
from api.schema.lifecycle_ops import LifecycleMutations, LifecycleQueries
from api.schema.privacy_ops import PrivacyMutations, PrivacyQueries
from api.schema.segment_ops import SegmentMutations, SegmentQueries
from api.schema.segments import Segment
from api.schema.tag_ops import TagMutations, TagQueries
from api.schema.tags import TagDefinition
from api.value_guard import ValueGuard

Query = merge_types(
    "Query",
    (
        CustomerQueries,
        IdentityQueries,
        LifecycleQueries,
        TagQueries,
        ChangeQueries,
        SegmentQueries,
        AccessQueries,
        PrivacyQueries,
        DuplicateQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        IdentityMutations,
        ActivityMutations,
        TagMutations,
        ChangeMutations,
        SegmentMutations,
        CustomerMutations,
        LifecycleMutations,
        AccessMutations,
        PrivacyMutations,
        DuplicateMutations,
    ),
)
Subscription = merge_types("Subscription", (ChangeSubscriptions,))


def _answer_refusals(mutation: type) -> None:
    """Every root mutation answers a DomainError in its payload (api.payloads), inside the
    permission check; a field that places its errors declares its own `Refusals`."""
    for field in mutation.__strawberry_definition__.fields:  # type: ignore[attr-defined]
        if not any(isinstance(extension, Refusals) for extension in field.extensions):
            field.extensions.insert(0, Refusals())


def _guard_values(*roots: type) -> None:
    """Every root query and mutation field refuses values no database can hold, innermost
    (after the permission check): api.value_guard."""
    for root in roots:
        for field in root.__strawberry_definition__.fields:  # type: ignore[attr-defined]
            if not any(isinstance(extension, ValueGuard) for extension in field.extensions):
                field.extensions.insert(0, ValueGuard())


class _Schema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Each operation is logged once, with its error codes (api.operation_log), and an
        INTERNAL_ERROR's traceback once (api.errors): strawberry would log every error,
        client mistakes included, with a traceback."""


def build_schema() -> strawberry.Schema:
    _answer_refusals(Mutation)
    _guard_values(Query, Mutation)
    return _Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[Customer, MergeRecord, TagDefinition, Segment],
        execution_context_class=FastExecutionContext,
        # Clients send the same few documents again and again: parse and validate each once.
        extensions=[
            OperationLog,  # first: it sees the errors as ErrorShaping leaves them
            ErrorShaping,
            Limits,  # before ValidationCache: hostile documents never reach full validation
            ReadRouting,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
    )
