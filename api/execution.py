"""GraphQL execution with a short path for plain leaf fields.

graphql-core spends about as much per field as the resolver itself costs: it builds a
ResolveInfo, looks up arguments, checks the result for an awaitable and walks the type
wrappers to complete it. A page of 50 profiles has thousands of fields, and most of them are a
name, a date or a key read off a record already in memory. For a field strawberry marks as
basic (no resolver, no extension: nothing can observe the ResolveInfo) that takes no
arguments and returns a scalar or an enum, `FastLeafExecutionContext` reads the attribute and
coerces it exactly as graphql-core's `complete_leaf_value` would. A null on a non-null field,
a value the scalar refuses, or any other field, takes graphql-core's own path, which raises
and locates the error as usual: the short path never changes an answer, only its cost.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    Undefined,
)
from graphql.type import is_leaf_type
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

_Plan = tuple[str, GraphQLLeafType] | None
_MISSING = object()


def _plan(field: GraphQLField) -> _Plan:
    """(attribute, leaf type) when the field is a plain nullable-or-not leaf attribute."""
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if field.args or definition.default_resolver is not getattr:
        return None
    leaf = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return (definition.python_name, leaf) if is_leaf_type(leaf) else None


def _leaf_value(plan: tuple[str, GraphQLLeafType], nullable: bool, source: Any) -> Any:
    """The field's completed value, or _MISSING when graphql-core must decide (and raise)."""
    attribute, leaf = plan
    value = getattr(source, attribute, _MISSING)
    if value is None:
        return None if nullable else _MISSING
    if value is _MISSING:
        return _MISSING
    try:
        coerced = leaf.coerce_output_value(value)
    except Exception:  # graphql-core's path raises it again, located
        return _MISSING
    return _MISSING if coerced is None or coerced is Undefined else coerced


class FastLeafExecutionContext(StrawberryGraphQLCoreExecutionContext):
    # Decided once per field of a schema (fields are unhashable: keyed by id, which is stable
    # while the schema holds them), forgotten with the schema.
    _plans: WeakKeyDictionary[GraphQLSchema, dict[int, _Plan]] = WeakKeyDictionary()

    def _plan_of(self, field: GraphQLField) -> _Plan:
        plans = self._plans.setdefault(self.schema, {})
        try:
            return plans[id(field)]
        except KeyError:
            plan = plans[id(field)] = _plan(field)
            return plan

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        field = parent_type.fields.get(node.name.value)
        if field is not None and not node.arguments and not self.middleware_manager:
            plan = self._plan_of(field)
            if plan is not None:
                nullable = not isinstance(field.type, GraphQLNonNull)
                value = _leaf_value(plan, nullable, source)
                if value is not _MISSING:
                    return value
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )
