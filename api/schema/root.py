"""The Schema object: the root types, merged from each area's root fields.

Each area keeps its root fields in its own `*_ops.py` module; this file only lists them.
"""

from __future__ import annotations

import strawberry
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.tools import merge_types

from api.errors import ErrorShaping
from api.schema.activity_ops import ActivityMutations
from api.schema.customer_ops import CustomerQueries
from api.schema.customers import Customer, MergeRecord
from api.schema.identity_ops import IdentityMutations, IdentityQueries
from api.schema.lifecycle_ops import LifecycleQueries
from api.schema.segments import Segment
from api.schema.profile_ops import ProfileMutations
from api.schema.tag_ops import TagMutations, TagQueries
from api.schema.tags import TagDefinition

Query = merge_types("Query", (CustomerQueries, IdentityQueries, LifecycleQueries, TagQueries))
Mutation = merge_types(
    "Mutation", (IdentityMutations, ActivityMutations, TagMutations, ProfileMutations)
)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Customer, MergeRecord, TagDefinition, Segment],
        # Clients send the same few documents again and again: parse and validate each once.
        extensions=[
            ErrorShaping,
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
    )
