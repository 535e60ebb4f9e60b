"""What a query selects below a field, read before resolving it (to prefetch a page's lists).

Read off graphql-core's syntax tree, not strawberry's `selected_fields`: that one expands
every fragment spread where it occurs, so a document whose fragments each spread the one
below twice expands to 2^levels nodes. Here each fragment is read once per path and its
answer reused at every spread, so a walk visits each node of the document at most once per
step of the path: linear in the document's size. `visits` counts those steps (the tests
count them rather than time them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
)
from strawberry.types import Info


@dataclass(slots=True)
class _Walk:
    fragments: Mapping[str, FragmentDefinitionNode]
    done: dict[tuple[str, tuple[str, ...]], frozenset[str]] = field(default_factory=dict)
    open: set[str] = field(default_factory=set)
    visits: int = 0

    def below(
        self, selection_sets: Iterable[SelectionSetNode | None], path: tuple[str, ...]
    ) -> frozenset[str]:
        """The names of the fields at `path` below these selection sets, fragments expanded."""
        found: set[str] = set()
        for selection_set in selection_sets:
            for selection in selection_set.selections if selection_set else ():
                self.visits += 1
                if isinstance(selection, FieldNode):
                    if not path:
                        found.add(selection.name.value)
                    elif selection.name.value == path[0]:
                        found |= self.below([selection.selection_set], path[1:])
                elif isinstance(selection, InlineFragmentNode):
                    found |= self.below([selection.selection_set], path)
                elif isinstance(selection, FragmentSpreadNode):
                    found |= self.fragment(selection.name.value, path)
        return frozenset(found)

    def fragment(self, name: str, path: tuple[str, ...]) -> frozenset[str]:
        known = self.done.get((name, path))
        if known is not None:
            return known
        definition = self.fragments.get(name)
        if definition is None or name in self.open:
            return frozenset()  # unknown or cyclic: validation refused the document already
        self.open.add(name)
        try:
            found = self.done[(name, path)] = self.below([definition.selection_set], path)
        finally:
            self.open.discard(name)
        return found


def selected_below(info: Info, *path: str) -> frozenset[str]:
    """The names of the fields selected at `path` below the field being resolved: for a
    connection of profiles, `selected_below(info, "edges", "node")`."""
    raw = info._raw_info
    walk = _Walk(raw.fragments)
    names = walk.below([node.selection_set for node in raw.field_nodes], path)
    return frozenset(name for name in names if not name.startswith("__"))
