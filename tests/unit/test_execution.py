"""The short path for plain fields (api.execution) answers exactly as graphql-core does:
the same data and the same errors, at the same paths, for plain leaves, plain objects and
lists of them, with resolvers, awaitables and failures anywhere below."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.execution import FastExecutionContext


@strawberry.type
class Leaf:
    key: str
    note: str | None = None

    @strawberry.field
    async def later(self) -> str:
        await asyncio.sleep(0)
        return self.key.upper()

    @strawberry.field
    def broken(self) -> str:
        raise ValueError(f"broken {self.key}")


@strawberry.type
class Holder:
    name: str
    count: int
    leaf: Leaf
    maybe: Leaf | None
    leaves: list[Leaf]
    optional_leaves: list[Leaf] | None

    @strawberry.field
    def resolved(self) -> list[Leaf]:
        return self.leaves

    @strawberry.field
    async def resolved_later(self) -> list[Leaf]:
        return self.leaves


@strawberry.type
class Query:
    @strawberry.field
    def holder(self) -> Holder:
        return Holder(
            name="h",
            count=2,
            leaf=Leaf(key="a"),
            maybe=None,
            leaves=[Leaf(key="b", note="n"), Leaf(key="c")],
            optional_leaves=[Leaf(key="d")],
        )

    @strawberry.field
    def bad_holder(self) -> Holder | None:
        # A non-null field holding null, and a leaf of the wrong shape: graphql-core's errors.
        return Holder(
            name=None,  # type: ignore[arg-type]
            count="x",  # type: ignore[arg-type]
            leaf=None,  # type: ignore[arg-type]
            maybe="not a leaf",  # type: ignore[arg-type]
            leaves=[Leaf(key="e"), None],  # type: ignore[list-item]
            optional_leaves=None,
        )


def _schemas() -> tuple[strawberry.Schema, strawberry.Schema]:
    plain = strawberry.Schema(
        query=Query, execution_context_class=StrawberryGraphQLCoreExecutionContext
    )
    fast = strawberry.Schema(query=Query, execution_context_class=FastExecutionContext)
    return plain, fast


def _answer(result: Any) -> tuple[Any, list[tuple[str, list[Any] | None]]]:
    errors = sorted((e.message, e.path) for e in result.errors or ())
    return result.data, errors


QUERIES = [
    "{ holder { name count leaf { key note } maybe { key } leaves { key note } } }",
    "{ holder { leaf { key later } leaves { key later } optionalLeaves { key later } } }",
    "{ holder { leaves { key broken } } }",
    "{ holder { optionalLeaves { key broken } name } }",
    "{ holder { leaf { ...L } ... on Holder { leaves { ...L } } } } fragment L on Leaf { key }",
    "{ holder { a: leaf { key } b: leaf { note } leaves { key } leaves { note } } }",
    "{ badHolder { name } }",
    "{ badHolder { count } }",
    "{ badHolder { leaf { key } } }",
    "{ badHolder { maybe { key } } }",
    "{ badHolder { leaves { key } } }",
    "{ badHolder { optionalLeaves { key } } }",
    "{ holder { resolved { key later broken } resolvedLater { key note } } }",
    "{ badHolder { resolved { key } } }",
    "{ badHolder { resolvedLater { key } } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_the_short_path_answers_as_graphql_core_does(query: str) -> None:
    plain, fast = _schemas()
    expected = _answer(await plain.execute(query))
    assert _answer(await fast.execute(query)) == expected
    assert expected[0] is not None or expected[1]  # each query answers something
