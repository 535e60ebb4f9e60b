"""What a query selects below a field, read before resolving it (to prefetch a page's lists)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from strawberry.types import Info
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    """Fields of a selection set, with fragments (named or inline) expanded in place."""
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def selected_below(info: Info, *path: str) -> frozenset[str]:
    """The names of the fields selected at `path` below the field being resolved: for a
    connection of profiles, `selected_below(info, "edges", "node")`."""
    level = [child for field in info.selected_fields for child in field.selections]
    for name in path:
        level = [
            child for field in _fields(level) if field.name == name for child in field.selections
        ]
    return frozenset(field.name for field in _fields(level) if not field.name.startswith("__"))
