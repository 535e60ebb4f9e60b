"""The short path for plain fields (api.execution) answers exactly as graphql-core does:
the same data and the same errors, at the same paths, for plain leaves, plain objects and
lists of them, with resolvers, awaitables and failures anywhere below."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import strawberry
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from api.execution import FastExecutionContext, ReadGuard


class OnlyKeyA(ReadGuard):
    """Masks the field on every leaf but `a`, like api.pii masks PII."""

    def allows(self, source: Any, context: Any) -> bool:
        return bool(source.key == "a")

    def resolve(self, next_: Any, source: Any, info: Any, **kwargs: Any) -> Any:
        return next_(source, info, **kwargs) if source.key == "a" else None


@strawberry.type
class Leaf:
    key: str
    note: str | None = None
    secret: str | None = strawberry.field(default="s", extensions=[OnlyKeyA()])

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
    "{ holder { leaf { secret } leaves { key secret } } }",
    "{ badHolder { resolved { key } } }",
    "{ badHolder { resolvedLater { key } } }",
]


@pytest.mark.parametrize("query", QUERIES)
async def test_the_short_path_answers_as_graphql_core_does(query: str) -> None:
    plain, fast = _schemas()
    expected = _answer(await plain.execute(query))
    assert _answer(await fast.execute(query)) == expected
    assert expected[0] is not None or expected[1]  # each query answers something


async def test_plain_fields_never_reach_graphql_cores_general_path(monkeypatch) -> None:
    """Only the root field (a resolver) and `later` (async) go through execute_field: a
    context that never takes its short path (session 1's did not) fails here."""
    called: list[str] = []
    general = FastExecutionContext.execute_field

    def counted(self: Any, parent_type: Any, source: Any, details: Any, *rest: Any) -> Any:
        called.append(f"{parent_type.name}.{details[0].node.name.value}")
        return general(self, parent_type, source, details, *rest)

    monkeypatch.setattr(FastExecutionContext, "execute_field", counted)
    _, fast = _schemas()
    result = await fast.execute(
        "{ holder { name count leaf { key note secret later } leaves { key secret } } }"
    )
    assert result.errors is None
    assert result.data["holder"]["leaves"] == [  # type: ignore[index]
        {"key": "b", "secret": None},
        {"key": "c", "secret": None},
    ]
    # `a` passes the guard and is read plainly; `b` and `c` take the extension's path.
    assert sorted(called) == [
        "Leaf.later",
        "Leaf.secret",
        "Leaf.secret",
        "Query.holder",
    ]
