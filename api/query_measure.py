"""Measuring a GraphQL operation before it runs: depth, aliases, cost, page and list sizes,
the number of fields once fragments are expanded, and whether any text argument holds U+0000
or a lone surrogate.

One walk over the operation's selections with the variables in hand, fragment spreads
expanded. Each fragment is measured once and its measure reused at every spread, so a
document built to amplify (fragments spreading fragments, each twice) costs a walk linear in
its size while its measure grows as the execution would (`fields`, the expanded size, counts
2^levels for such a document without ever expanding it; `_Walk.visits` counts the steps).
Fields the schema does not know are skipped: validation reports them.

Cost: a leaf field costs 0, an object field 1 plus its selection, and a list multiplies what
it holds by its size: a connection's edges by its `first`/`last` (the default page size when
absent), a sample by `sample`, any other list by LIST_ESTIMATE. List arguments add one per
item (a batch of 1,000 inputs is 1,000 units of work). Introspection fields (`__schema`,
`__type`) are not measured: they are bounded by the schema, and can be switched off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
    get_nullable_type,
    is_leaf_type,
)

from domain.values import unstorable_text

LIST_ESTIMATE = 10
PAGE_ARGUMENTS = ("first", "last")
SIZE_ARGUMENTS = ("sample",)


@dataclass(frozen=True, slots=True)
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    largest_page: int = 0
    largest_list: int = 0
    # Text holding U+0000 or a lone surrogate (domain.values.unstorable_text), which PostgreSQL
    # cannot store: refused on every backend
    nul_in_text: bool = False
    fields: int = 0  # fields in the operation with every fragment spread expanded
    longest_text: int = 0  # characters in the longest text argument (variables included)
    # Most times one response name is selected in one selection set, fragments expanded:
    # graphql-core's OverlappingFieldsCanBeMerged compares such fields pairwise.
    repeats: int = 0
    items: int = 0  # items of list arguments, nested lists' included (the cost counts them)

    def worst(self, other: Measure) -> Measure:
        """The larger of two measures, part by part (several operations in one document)."""
        return Measure(
            max(self.depth, other.depth),
            max(self.aliases, other.aliases),
            max(self.cost, other.cost),
            max(self.largest_page, other.largest_page),
            max(self.largest_list, other.largest_list),
            self.nul_in_text or other.nul_in_text,
            max(self.fields, other.fields),
            max(self.longest_text, other.longest_text),
            max(self.repeats, other.repeats),
            max(self.items, other.items),
        )

    def beside(self, other: Measure) -> Measure:
        """Two selections of one selection set."""
        return Measure(
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.cost + other.cost,
            max(self.largest_page, other.largest_page),
            max(self.largest_list, other.largest_list),
            self.nul_in_text or other.nul_in_text,
            self.fields + other.fields,
            max(self.longest_text, other.longest_text),
            max(self.repeats, other.repeats),
            self.items + other.items,
        )


_Names = Counter[str]  # response names at the top of a selection set, fragments expanded


@dataclass(slots=True)
class _Walk:
    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any]
    default_page: int
    done: dict[tuple[str, int | None], tuple[Measure, _Names]] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    visits: int = 0

    def selections(
        self, selection_set: SelectionSetNode | None, parent: Any, page: int | None = None
    ) -> Measure:
        """`page`: the size of the lists directly in this selection set (a connection's
        edges), set by the paged field above them."""
        return self._selections(selection_set, parent, page)[0]

    def _selections(
        self, selection_set: SelectionSetNode | None, parent: Any, page: int | None
    ) -> tuple[Measure, _Names]:
        total = Measure()
        names: _Names = Counter()
        for selection in selection_set.selections if selection_set else ():
            self.visits += 1
            if isinstance(selection, FieldNode):
                total = total.beside(self.field(selection, parent, page))
                names[(selection.alias or selection.name).value] += 1
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                found, inner_names = self._selections(selection.selection_set, inner, page)
                total = total.beside(found)
                names.update(inner_names)
            elif isinstance(selection, FragmentSpreadNode):
                found, inner_names = self.fragment(selection.name.value, page)
                total = total.beside(found)
                names.update(inner_names)
        crowd = max(names.values(), default=0)
        return (replace(total, repeats=crowd) if crowd > total.repeats else total), names

    def fragment(self, name: str, page: int | None) -> tuple[Measure, _Names]:
        if (name, page) in self.done:
            return self.done[(name, page)]
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return Measure(), Counter()  # unknown or cyclic: validation refuses the document
        self.open.add(name)
        parent = self.schema.get_type(definition.type_condition.name.value)
        self.done[(name, page)] = self._selections(definition.selection_set, parent, page)
        self.open.discard(name)
        return self.done[(name, page)]

    def field(self, node: FieldNode, parent: Any, page: int | None) -> Measure:
        alias = 1 if node.alias else 0
        name = node.name.value
        fields = getattr(parent, "fields", None)
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return Measure(aliases=alias, fields=1)
        definition = fields.get(name) if fields else None
        if definition is None:
            return Measure(aliases=alias, fields=1)
        arguments = {a.name.value: self.value(a.value) for a in node.arguments or ()}
        texts = _texts(arguments)
        asked = [a for n in PAGE_ARGUMENTS if isinstance(a := arguments.get(n), int)]
        lists = [len(found) for value in arguments.values() for found in _lists(value)]
        items = sum(len(value) for value in arguments.values() if isinstance(value, list))
        named: GraphQLNamedType = get_named_type(definition.type)
        paged = any(n in definition.args for n in PAGE_ARGUMENTS)
        inner_page = max([*asked, 0]) if asked else self.default_page
        inner = self.selections(node.selection_set, named, inner_page if paged else None)
        times = 1 if paged else self.size(definition, arguments, page)
        cost = 0 if is_leaf_type(named) else times * (1 + inner.cost)
        return Measure(
            depth=1 + inner.depth,
            aliases=alias + inner.aliases,
            cost=cost + items,
            largest_page=max([*asked, inner.largest_page]),
            largest_list=max([*lists, inner.largest_list]),
            nul_in_text=inner.nul_in_text or any(unstorable_text(t) for t in texts),
            fields=1 + inner.fields,
            longest_text=max([inner.longest_text, *map(len, texts)]),
            repeats=inner.repeats,
            items=items + times * inner.items,
        )

    def size(self, definition: Any, arguments: Mapping[str, Any], page: int | None) -> int:
        """How many items a field that is not a connection returns at most: a sample its
        `sample`, a connection's edges its page, any other list LIST_ESTIMATE."""
        for name in SIZE_ARGUMENTS:
            if name in definition.args:
                given = arguments.get(name, definition.args[name].default_value)
                return given if isinstance(given, int) and given >= 0 else LIST_ESTIMATE
        if not isinstance(get_nullable_type(definition.type), GraphQLList):
            return 1
        return page if page is not None else LIST_ESTIMATE

    def value(self, node: ValueNode) -> Any:
        """An argument's value as far as needed here: ints, lists and objects, variables read."""
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        if isinstance(node, IntValueNode):
            return int(node.value)
        if isinstance(node, StringValueNode):
            return node.value
        if isinstance(node, ListValueNode):
            return [self.value(item) for item in node.values]
        if isinstance(node, ObjectValueNode):
            return {f.name.value: self.value(f.value) for f in node.fields}
        return None


def _texts(value: Any) -> list[str]:
    """Every string inside a value, dictionary keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [*value.keys(), *(t for item in value.values() for t in _texts(item))]
    if isinstance(value, list):
        return [t for item in value for t in _texts(item)]
    return []


def _lists(value: Any) -> list[list[Any]]:
    """Every list inside a value, nested ones included."""
    if isinstance(value, Mapping):
        return [found for item in value.values() for found in _lists(item)]
    if isinstance(value, list):
        return [value, *(found for item in value for found in _lists(item))]
    return []


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
    default_page: int,
) -> Measure:
    root = schema.get_root_type(operation.operation)
    return _Walk(schema, fragments, variables, default_page).selections(
        operation.selection_set, root
    )
