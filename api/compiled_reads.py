"""Which root fields answer with compiled JSON (domain.profile_json), and their plans.

A root field `customer` or `customers` compiles when what it selects does: every field below
it is one the domain can build in SQL, with no arguments and no directives (those take the
resolvers, which read them). The selection is read off graphql-core's syntax tree, fragments
and aliases included, into the domain's neutral `Pick`s. The compiled plan is kept per place
in the document and role (of a role, the SQL depends on whether it sees PII): ParserCache
hands every request that sends a document the same syntax tree, so a document is planned once
per role, not once per request.

The answer is a `JsonText` (api.json_text): graphql-core takes it as the field's completed
value and orjson writes it into the response as it is. Only an HTTP request's
context splices (`Context.splices_json`): a websocket's messages are written by json.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types import Info

from api import costs
from api.context import Context
from api.json_text import JsonText
from api.pii import sees_pii
from domain import profile_json
from domain.profile_json import CompiledCustomer, CompiledPage, Pick

T = TypeVar("T")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_PLANS_KEPT = 2048


def _python_name(name: str) -> str:
    return name if name.startswith("__") else _CAMEL.sub("_", name).lower()


class _Unplannable(Exception):
    """A selection the compiler does not take: an argument, a directive, a fragment on
    another type, or one response key for different fields."""


def _picks(
    selection_sets: list[SelectionSetNode | None],
    fragments: Mapping[str, FragmentDefinitionNode],
    type_name: str,
    also: frozenset[str] = frozenset(),
) -> tuple[Pick, ...]:
    """The picks of these selection sets over `type_name`; fragments may be on it or on one
    of `also` (the interfaces it is read through)."""
    merged: dict[str, tuple[str, list[SelectionSetNode | None]]] = {}

    def walk(selection_set: SelectionSetNode | None, seen: frozenset[str]) -> None:
        for selection in selection_set.selections if selection_set else ():
            if selection.directives:
                raise _Unplannable
            if isinstance(selection, FieldNode):
                if selection.arguments:
                    raise _Unplannable
                key = selection.alias.value if selection.alias else selection.name.value
                name = selection.name.value
                known = merged.setdefault(key, (name, []))
                if known[0] != name:
                    raise _Unplannable
                known[1].append(selection.selection_set)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition, below = selection.type_condition, selection.selection_set
            else:
                assert isinstance(selection, FragmentSpreadNode)
                definition = fragments.get(selection.name.value)
                if definition is None or selection.name.value in seen:
                    raise _Unplannable
                condition, below = definition.type_condition, definition.selection_set
                seen = seen | {selection.name.value}
            if condition is not None and condition.name.value not in {type_name, *also}:
                raise _Unplannable
            walk(below, seen)

    for selection_set in selection_sets:
        walk(selection_set, frozenset())
    return tuple(
        Pick(key, _python_name(name), _below(name, sets, fragments, type_name))
        for key, (name, sets) in merged.items()
    )


# The types below each field the compiler may take, for fragments' type conditions.
_TYPES = {
    "identities": "Identity",
    "edges": "CustomerEdge",
    "node": "Customer",
    "pageInfo": "PageInfo",
    "tags": "TagAssignment",
    "tag": "TagDefinition",
    "stage": "LifecycleStage",
    "stageHistory": "StageTransition",
    "from": "LifecycleStage",
    "to": "LifecycleStage",
    "metrics": "CustomerMetrics",
    "rfm": "RfmScore",
}


def _below(
    name: str,
    selection_sets: list[SelectionSetNode | None],
    fragments: Mapping[str, FragmentDefinitionNode],
    parent: str,
) -> tuple[Pick, ...]:
    if all(selection_set is None for selection_set in selection_sets):
        return ()
    return _picks(selection_sets, fragments, _TYPES.get(name, f"{parent}.{name}"))


_plans: dict[tuple[int, bool], tuple[Any, Any]] = {}


def _plan(
    info: Info[Context, None],
    type_name: str,
    build: Callable[[tuple[Pick, ...], bool], T],
    also: frozenset[str] = frozenset(),
) -> T | None:
    raw = info._raw_info
    context = info.context
    if not (context.splices_json and context.settings.compiled_reads):
        return None
    if not profile_json.supported(context.db):
        return None
    node = raw.field_nodes[0]
    shows_pii = sees_pii(context.principal)
    key = (id(node), shows_pii)
    found = _plans.get(key)
    if found is not None and found[0] is node:
        return found[1]  # type: ignore[no-any-return]
    try:
        selections = [n.selection_set for n in raw.field_nodes]
        picks = _picks(selections, raw.fragments, type_name, also)
        plan = build(picks, shows_pii)
    except _Unplannable:
        plan = None
    if len(_plans) >= _PLANS_KEPT:
        _plans.clear()
    _plans[key] = (node, plan)  # the node kept alive: its id stays its own
    return plan


def customer_plan(info: Info[Context, None]) -> CompiledCustomer | None:
    """The compiled plan of a `customer` field, or None to answer with the resolvers."""
    return _plan(info, "Customer", profile_json.compile_customer)


def node_plan(info: Info[Context, None]) -> CompiledCustomer | None:
    """The compiled plan of a `node` field, should its id be a Customer's."""
    return _plan(info, "Customer", profile_json.compile_customer, frozenset({"Node"}))


def page_plan(info: Info[Context, None]) -> CompiledPage | None:
    """The compiled plan of a `customers` or `Segment.members` field, or None to answer with
    the resolvers."""
    return _plan(info, "CustomerConnection", profile_json.compile_page)


def spliced(found: tuple[bytes, int]) -> JsonText:
    """A compiled answer's JSON, its objects charged to the operation as the resolvers'
    would be: api.costs counts the objects of `data`, which cannot see inside a fragment, and
    adds `items`, units of work beyond them."""
    document, objects = found
    cost = costs.current()
    if cost is not None:
        cost.items += objects
    return JsonText(document)
