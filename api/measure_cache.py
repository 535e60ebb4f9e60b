"""A document's measure (api.query_measure), computed once per document and variables' shape.

api.limits measures every operation before it runs. Besides the schema, the document, the
operation chosen and the default page size, a measure depends on the variables only through
their shape (`shape_of`): each integer (a page size, a sample), each text's length and whether
it holds what PostgreSQL cannot store, each list's length, and so on down. Requests that send
the same document with variables of the same shape have the same measure: it is kept, per
schema, for the MAX_DOCUMENTS most recently used, and a client that sends one document again
and again has it walked once. Variables too large to key on (a batch of a thousand inputs,
more than MAX_SHAPE values) are measured each time: beside the work they ask for, their walk
is small, and a cache of them would hold what clients sent.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

from graphql import GraphQLSchema

from api.query_measure import Measure
from domain.values import unstorable_text

MAX_DOCUMENTS = 512
MAX_SHAPE = 256  # values, nested ones included, in the variables of a request kept

_Key = tuple[str, str | None, int, Hashable]
_measures: WeakKeyDictionary[GraphQLSchema, OrderedDict[_Key, Measure | None]] = WeakKeyDictionary()


class _TooLarge(Exception):
    pass


def shape_of(variables: Mapping[str, Any]) -> Hashable | None:
    """What of `variables` a measure reads, or None when there is more than MAX_SHAPE of it."""
    left = MAX_SHAPE

    def shape(value: Any) -> Hashable:
        nonlocal left
        left -= 1
        if left < 0:
            raise _TooLarge
        if isinstance(value, str):
            return ("text", len(value), unstorable_text(value))
        if value is None or isinstance(value, int):  # a boolean reads as the integer it is
            return value
        if isinstance(value, Mapping):
            return ("object", tuple((shape(k), shape(v)) for k, v in value.items()))
        if isinstance(value, list):
            return ("list", tuple(shape(item) for item in value))
        return (type(value).__name__,)  # a float: never a size, nor a text

    try:
        return shape(dict(variables))
    except _TooLarge:
        return None


def measured(
    schema: GraphQLSchema,
    query: str | None,
    operation_name: str | None,
    variables: Mapping[str, Any],
    default_page: int,
    measure: Callable[[], Measure | None],
) -> Measure | None:
    """`measure()`'s answer for this document and variables' shape, computed once (None: the
    document has no operation to measure)."""
    shape = shape_of(variables) if query is not None else None
    if shape is None:
        return measure()
    assert query is not None
    known = _measures.setdefault(schema, OrderedDict())
    key = (query, operation_name, default_page, shape)
    if key in known:
        known.move_to_end(key)
        return known[key]
    found = known[key] = measure()
    if len(known) > MAX_DOCUMENTS:
        known.popitem(last=False)
    return found
