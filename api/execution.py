"""GraphQL execution with a short path for plain fields.

graphql-core spends about as much per field as the resolver itself costs: it builds a Path
and a ResolveInfo, looks up arguments, calls the resolver, checks the result for an
awaitable and walks the type wrappers to complete it. A page of 50 profiles has thousands of
fields, and most of them are a name, a date or a key read off a record already in memory, or
a small object (a tag's definition, a transition's stage) read off another.

A field is plain when it has no resolver and takes no arguments, and its extensions (if
any) are ReadGuards that allow the read: nothing can observe the ResolveInfo.
`FastExecutionContext` reads a plain field's attribute itself and
- for a scalar or enum, coerces it exactly as graphql-core's `complete_leaf_value` would;
- for an object, or a list of non-null objects, of a concrete type, executes its selection
  (through this same loop) as graphql-core's `complete_object_value` would.
A list of non-null objects that a resolver returns (a profile's identities, tags, history)
completes the same way. Each selection set's fields are planned once per request.
A null on a non-null field, a value the scalar refuses, an object of the wrong type, or any
other field, takes graphql-core's own path, which raises and locates the error as usual; an
error below a plain object is handled at that field just as graphql-core handles it. The
short path never changes an answer, only its cost.

The request's deadline (`deadline_passed`, set by api.graphql_router from
C360_REQUEST_TIMEOUT_SECONDS) is checked as each object completes, on both paths: an asyncio
timeout cannot interrupt completion that never yields to the event loop. Past it, the whole
operation ends with one TIMEOUT error and no data (`DeadlineExceeded` is never nulled at a
field, so a request cut short is never mistaken for a partial answer).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLResolveInfo,
    GraphQLSchema,
    Undefined,
)
from graphql.pyutils import Path, gather_with_cancel
from graphql.type import is_leaf_type
from strawberry.extensions.field_extension import FieldExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

from api.json_text import JsonText

_MISSING = object()


class DeadlineExceeded(GraphQLError):
    """The request ran past its deadline; ends the operation (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__(
            "the request took longer than its deadline allows", extensions={"code": "TIMEOUT"}
        )


def deadline_passed(context: Any) -> bool:
    """Whether the request's deadline (`context.deadline`, a time.monotonic() instant) is past."""
    deadline = getattr(context, "deadline", None)
    return deadline is not None and time.monotonic() > deadline


class ReadGuard(FieldExtension):
    """A field extension that, when `allows` says so for a source and a request, would pass
    the field's attribute through unchanged: the short path may then read the attribute
    itself. When it does not allow, the field takes graphql-core's path and the extension
    runs (api.pii's masking is one)."""

    def allows(self, source: Any, context: Any) -> bool:
        raise NotImplementedError


_Step = tuple[str, Any, "_Plain | None"]


@dataclass(frozen=True, slots=True)
class _Plain:
    """How to complete a plain field: `attribute` read off the source, then either coerced
    (`leaf`) or executed as `object_type`, alone or (`many`) as a list of them."""

    attribute: str
    nullable: bool
    field_type: GraphQLOutputType
    guards: tuple[ReadGuard, ...]
    leaf: GraphQLLeafType | None = None
    object_type: GraphQLObjectType | None = None
    many: bool = False


def _plain(field: GraphQLField) -> _Plain | None:
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or definition.base_resolver is not None:
        return None
    if field.args or definition.default_resolver is not getattr:
        return None
    guards = tuple(e for e in definition.extensions if isinstance(e, ReadGuard))
    if len(guards) != len(definition.extensions):
        return None
    attribute = definition.python_name
    kind: GraphQLOutputType = field.type
    nullable = not isinstance(kind, GraphQLNonNull)
    if isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    if is_leaf_type(kind):
        return _Plain(attribute, nullable, field.type, guards, leaf=kind)  # type: ignore[arg-type]
    if isinstance(kind, GraphQLObjectType):
        return _Plain(attribute, nullable, field.type, guards, object_type=kind)
    if isinstance(kind, GraphQLList) and isinstance(kind.of_type, GraphQLNonNull):
        item = kind.of_type.of_type
        if isinstance(item, GraphQLObjectType):
            return _Plain(attribute, nullable, field.type, guards, object_type=item, many=True)
    return None


def _leaf_value(plain: _Plain, source: Any) -> Any:
    """The field's completed value, or _MISSING when graphql-core must decide (and raise)."""
    value = getattr(source, plain.attribute, _MISSING)
    if value is None:
        return None if plain.nullable else _MISSING
    if value is _MISSING:
        return _MISSING
    try:
        coerced = plain.leaf.coerce_output_value(value)  # type: ignore[union-attr]
    except Exception:  # graphql-core's path raises it again, located
        return _MISSING
    return _MISSING if coerced is None or coerced is Undefined else coerced


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """(strawberry hands every request a MiddlewareManager, empty unless a schema extension
    wraps resolvers: only a non-empty one, which could observe a field, turns the path off.)"""

    # Decided once per field of a schema (fields are unhashable: keyed by id, which is stable
    # while the schema holds them), forgotten with the schema.
    _plans: WeakKeyDictionary[GraphQLSchema, dict[int, _Plain | None]] = WeakKeyDictionary()
    _schema_plans: dict[int, _Plain | None]  # this request's schema's, looked up once
    _steps: dict[int, tuple[Any, list[_Step]]]

    def _plan_of(self, field: GraphQLField) -> _Plain | None:
        try:
            plans = self._schema_plans
        except AttributeError:
            plans = self._schema_plans = self._plans.setdefault(self.schema, {})
        try:
            return plans[id(field)]
        except KeyError:
            plan = plans[id(field)] = _plain(field)
            return plan

    def _steps_of(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[_Step]:
        """Per selection set (graphql-core memoizes them, one object per place in the query):
        each field with its plan, looked up once per request rather than once per object."""
        try:
            known = self._steps
        except AttributeError:
            known = self._steps = {}
        found = known.get(id(grouped_field_set))
        if found is not None and found[0] is grouped_field_set:
            return found[1]
        steps = []
        for response_name, details in grouped_field_set.items():
            node = details[0].node
            field = parent_type.fields.get(node.name.value)
            plan = self._plan_of(field) if field is not None and not node.arguments else None
            steps.append((response_name, details, plan))
        known[id(grouped_field_set)] = (grouped_field_set, steps)  # kept alive: ids stay unique
        return steps

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        if deadline_passed(self.context_value):
            raise DeadlineExceeded()
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        waiting: list[str] = []
        is_awaitable = self.is_awaitable
        try:
            for response_name, details, plan in self._steps_of(parent_type, grouped_field_set):
                result: Any = _MISSING
                if plan is not None and plan.guards and not self._allowed(plan, source_value):
                    plan = None
                if plan is not None and plan.leaf is not None:
                    result = _leaf_value(plan, source_value)
                elif plan is not None:
                    field_path = Path(path, response_name, parent_type.name)
                    result = self._plain_object(plan, details, source_value, field_path)
                if result is _MISSING:
                    field_path = Path(path, response_name, parent_type.name)
                    result = self.execute_field(
                        parent_type, source_value, details, field_path, position_context
                    )
                    if result is Undefined:
                        continue
                results[response_name] = result
                if is_awaitable(result):
                    waiting.append(response_name)
        except Exception:
            if waiting:
                self.settle_in_background([results[name] for name in waiting])
            raise
        if not waiting:
            return results

        async def get_results() -> dict[str, Any]:
            awaited = await gather_with_cancel(*(results[name] for name in waiting))
            results.update(zip(waiting, awaited, strict=True))
            return results

        return get_results()

    def complete_value(
        self,
        return_type: GraphQLOutputType,
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A compiled answer (api.compiled_reads) is the field's completed JSON already."""
        if type(result) is JsonText:
            return result
        return super().complete_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def handle_field_error(
        self, raw_error: Exception, return_type: Any, field_details_list: Any, path: Path
    ) -> None:
        if isinstance(raw_error, DeadlineExceeded):
            raise raw_error  # the operation ends; no field is nulled for it
        super().handle_field_error(raw_error, return_type, field_details_list, path)

    def _allowed(self, plan: _Plain, source: Any) -> bool:
        return all(guard.allows(source, self.context_value) for guard in plan.guards)

    def complete_list_value(
        self,
        return_type: GraphQLList[GraphQLOutputType],
        field_details_list: Any,
        info: GraphQLResolveInfo,
        path: Path,
        result: Any,
        position_context: Any,
    ) -> Any:
        """A resolver's list of non-null objects (a profile's identities, tags, history)
        completes as a plain field's does; anything else, graphql-core's way."""
        item = return_type.of_type
        if isinstance(item, GraphQLNonNull) and isinstance(item.of_type, GraphQLObjectType):
            items = result if isinstance(result, list) else None
            if items is not None and self._completable(item.of_type, items):
                return self._objects(item.of_type, field_details_list, items, path, True)
        return super().complete_list_value(
            return_type, field_details_list, info, path, result, position_context
        )

    def _completable(self, object_type: GraphQLObjectType, items: list[Any]) -> bool:
        """No null among the items and each of the type: else graphql-core raises the error."""
        if self.middleware_manager is not None and self.middleware_manager.middlewares:
            return False
        if any(item is None for item in items):
            return False
        check = object_type.is_type_of
        # strawberry's is_type_of never reads the ResolveInfo (an isinstance check).
        return check is None or all(check(item, None) for item in items)  # type: ignore[arg-type]

    def _objects(
        self, object_type: GraphQLObjectType, details: Any, items: list[Any], path: Path, many: bool
    ) -> Any:
        """Completed objects (a list when `many`), or an awaitable of them; errors raise."""
        grouped = self.collect_subfields(object_type, details)[0]
        done = [
            self.execute_fields(
                object_type, item, Path(path, index, None) if many else path, grouped, None
            )
            for index, item in enumerate(items)
        ]
        if not any(self.is_awaitable(item) for item in done):
            return done if many else done[0]

        async def later() -> Any:
            completed = await gather_with_cancel(
                *(item if self.is_awaitable(item) else _value(item) for item in done)
            )
            return completed if many else completed[0]

        return later()

    def _plain_object(self, plan: _Plain, details: Any, source: Any, path: Path) -> Any:
        """The completed object (or list), an awaitable of it, or _MISSING for graphql-core."""
        value: Any = getattr(source, plan.attribute, _MISSING)
        if value is _MISSING or (value is None and not plan.nullable):
            return _MISSING
        if value is None:
            return None
        object_type = plan.object_type
        assert object_type is not None
        items = list(value) if plan.many else [value]
        if not self._completable(object_type, items):
            return _MISSING
        try:
            done = self._objects(object_type, details, items, path, plan.many)
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.field_type, details, path)
            return None
        if not self.is_awaitable(done):
            return done
        return self._handled(done, plan, details, path)

    async def _handled(self, done: Any, plan: _Plain, details: Any, path: Path) -> Any:
        try:
            return await done
        except Exception as raw_error:
            self.handle_field_error(raw_error, plan.field_type, details, path)
            return None


async def _value(value: Any) -> Any:
    return value
