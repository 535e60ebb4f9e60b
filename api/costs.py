"""What an operation costs against its key's budget: settled after it ran, from what it did.

Before execution, api.limits measures the static cost (api.query_measure: every list at its
page size, or LIST_ESTIMATE when it has none) to refuse a hostile document (QUERY_TOO_COSTLY)
and to admit the request only while the key's bucket holds that much. After execution the
operation is charged what it did: one unit per object in its answer (each row fetched and
returned: a customer, an identity, a tag and its definition, ...), plus one per item of the
list arguments it was given (a batch of 1,000 inputs is 1,000 units of work), at least 1. A
subscription is charged its static cost once, when it starts. The charge is paid with the
key's next admission (store.ratelimit), so settling costs no round trip.

A page of 20 customers with identities, tags (and their definitions), stage and metrics has a
static cost of 681; settled, it costs what it returned (1 + 20 x (2 + identities + 2 x tags +
2) for the connection, its edges, nodes, stage and metrics).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Cost:
    """One operation's cost: `static` as measured before it ran, `settled` as charged after."""

    static: int
    budget: int
    items: int = 0  # items of its list arguments
    settled: int | None = None

    def as_log(self) -> dict[str, Any]:
        return {"static": self.static, "settled": self.settled, "budget": self.budget}


_current: ContextVar[Cost | None] = ContextVar("c360_cost", default=None)


def begin(cost: Cost | None) -> None:
    """The cost of the operation running in this context (None until it is measured)."""
    _current.set(cost)


def current() -> Cost | None:
    return _current.get()


def objects_in(data: Any) -> int:
    """Objects in an answer's `data`, the root excluded; iterative, so any depth is fine."""
    count = 0
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            count += 1
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return max(0, count - 1) if isinstance(data, dict) else count


__all__ = ["Cost", "begin", "current", "objects_in"]
