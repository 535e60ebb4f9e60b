"""Limits on what one request may ask, enforced before any resolver runs.

Hostile documents (deep nesting, alias or fragment amplification, huge pages or batches, token
floods) are refused while the document is parsed and measured, so they never reach the
database: the only statement such a request may cost is the lookup of a key this process does
not know yet (domain.access.key_cache), which precedes GraphQL.

    QUERY_TOO_LARGE         more tokens than `max_tokens` (the parser stops counting there)
    QUERY_TOO_DEEP          fields nested deeper than `max_depth`, fragments expanded
    TOO_MANY_ALIASES        more than `max_aliases`, counted at every fragment spread
    PAGE_SIZE_EXCEEDED      a `first`/`last` above `page_size_max`
    BATCH_TOO_LARGE         a list argument (or list inside one) above `batch_size_max`
    QUERY_TOO_COSTLY        static cost (api.query_measure) above `max_cost`
    QUERY_TOO_COMPLEX       more than `max_fields` fields once fragments are expanded (a
                            document of fragments that each spread the one below twice), or
                            one response name selected more than `max_repeated_fields` times
                            in one selection set (graphql-core's validation compares those
                            pairwise: hundreds of them take it seconds)
    VALUE_TOO_LONG          a text argument or variable longer than `max_string_length`
    RATE_LIMITED            the key's bucket holds less than the static cost: HTTP 429,
                            Retry-After (what the operation is charged, api.costs)
    INTROSPECTION_DISABLED  `__schema` / `__type` while `introspection` is off
    INVALID_INPUT           text holding U+0000 or a lone surrogate, which PostgreSQL cannot store

The measure runs before graphql-core's own validation, whose rules are not all linear in the
document's size. Every pass over a document before execution is linear in its size: the token
count stops at the limit, the measure reads each fragment once (api.query_measure), and so does
the lookahead resolvers use to prefetch (api.lookahead); a document sent again with variables of
the same shape is not measured again (api.measure_cache). Settings come from the request's
context, so one Schema serves any app.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache, reduce
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSyntaxError,
    Lexer,
    OperationDefinitionNode,
    Source,
    TokenKind,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from api import costs
from api.costs import Cost
from api.measure_cache import measured
from api.query_measure import Measure, measure
from service.settings import Settings


class NoIntrospection(NoSchemaIntrospectionCustomRule):
    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {"code": "INTROSPECTION_DISABLED"}
        super().report_error(error)


def refusal(code: str, message: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


class Limits(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        settings: Settings = context.settings
        if not settings.introspection:
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoIntrospection,
            )
        costs.begin(None)
        yield
        cost = costs.current()
        if cost is not None and cost.settled is None and context.principal is not None:
            data = getattr(self.execution_context.result, "data", None)
            cost.settled = max(1, costs.objects_in(data) + cost.items)
            context.state.limiter.settle(str(context.principal.key_id), cost.settled)

    def on_parse(self) -> Iterator[None]:
        """Counted ahead of the parser, which is never handed a flood (graphql-core's own
        `max_tokens` stop raises an uncoded syntax error past every hook under ParserCache)."""
        query = self.execution_context.query
        limit = self.execution_context.context.settings.max_tokens
        if query and _more_tokens_than(query, limit):
            raise refusal("QUERY_TOO_LARGE", f"the document has more than {limit} tokens")
        yield

    async def on_validate(self) -> Any:  # an async generator: strawberry awaits async hooks
        context = self.execution_context.context
        found = self._measure(context.settings)
        if found is not None:
            _check(found, context.settings)
            own = context.principal.budget_per_minute if context.principal else None
            budget = own or context.settings.cost_budget_per_minute
            cost = Cost(static=max(1, found.cost), budget=budget, items=found.items)
            costs.begin(cost)
            subscription = self.execution_context.operation_type is OperationType.SUBSCRIPTION
            await _admit(context, cost, subscription)
        yield

    def _measure(self, settings: Settings) -> Measure | None:
        """The operation's measure, walked once per document and variables' shape."""
        execution = self.execution_context
        document = execution.graphql_document
        if document is None:
            return None
        return measured(
            execution.schema._schema,
            execution.query,
            execution.operation_name,
            execution.variables or {},
            settings.page_size_default,
            lambda: self._walk(document, settings),
        )

    def _walk(self, document: DocumentNode, settings: Settings) -> Measure | None:
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        wanted = self.execution_context.operation_name
        chosen = [o for o in operations if o.name and o.name.value == wanted] or operations
        measures = [
            measure(
                self.execution_context.schema._schema,
                operation,
                fragments,
                self.execution_context.variables or {},
                settings.page_size_default,
            )
            for operation in chosen
        ]
        return reduce(Measure.worst, measures) if measures else None


@lru_cache(maxsize=512)
def _more_tokens_than(query: str, limit: int) -> bool:
    """Whether `query` has more than `limit` tokens; reads no further than that. Remembered
    for the documents clients send again and again, as the parser's cache remembers them."""
    lexer = Lexer(Source(query))
    try:
        for _ in range(limit + 1):
            if lexer.advance().kind is TokenKind.EOF:
                return False
    except GraphQLSyntaxError:
        return False  # the parser reports it
    return True


def _check(found: Measure, settings: Settings) -> None:
    if found.depth > settings.max_depth:
        raise refusal(
            "QUERY_TOO_DEEP", f"the query nests {found.depth} deep; at most {settings.max_depth}"
        )
    if found.aliases > settings.max_aliases:
        raise refusal(
            "TOO_MANY_ALIASES", f"{found.aliases} aliases; at most {settings.max_aliases}"
        )
    if found.largest_page > settings.page_size_max:
        raise refusal(
            "PAGE_SIZE_EXCEEDED",
            f"a page of {found.largest_page}; a page holds at most {settings.page_size_max}",
        )
    if found.largest_list > settings.batch_size_max:
        raise refusal(
            "BATCH_TOO_LARGE",
            f"a list of {found.largest_list}; a batch holds at most {settings.batch_size_max}",
        )
    if found.nul_in_text:
        raise refusal("INVALID_INPUT", "text may not hold U+0000 or a lone surrogate")
    if found.longest_text > settings.max_string_length:
        raise refusal(
            "VALUE_TOO_LONG",
            f"a text of {found.longest_text} characters; at most {settings.max_string_length}",
        )
    if found.cost > settings.max_cost:
        raise refusal(
            "QUERY_TOO_COSTLY",
            f"the query costs {found.cost}; at most {settings.max_cost}",
            cost=found.cost,
        )
    if found.fields > settings.max_fields:
        raise refusal(
            "QUERY_TOO_COMPLEX",
            f"{found.fields} fields once fragments are expanded; at most {settings.max_fields}",
        )
    if found.repeats > settings.max_repeated_fields:
        raise refusal(
            "QUERY_TOO_COMPLEX",
            f"a field selected {found.repeats} times in one selection set; "
            f"at most {settings.max_repeated_fields}",
        )


async def _admit(context: Any, cost: Cost, subscription: bool) -> None:
    """Admit the operation while the key's bucket holds its static cost, or refuse it with 429
    and when to come back. A subscription is charged its static cost now (api.costs)."""
    if context.principal is None:
        return
    key = str(context.principal.key_id)
    wait = await context.state.limiter.admit(key, cost.budget, cost.static)
    if not wait:
        if subscription:
            cost.settled = cost.static
            context.state.limiter.settle(key, cost.static)
        return
    response = getattr(context, "response", None)
    if isinstance(response, Response):  # a websocket has no HTTP response to set
        response.status_code = 429
        response.headers["Retry-After"] = str(wait)
    raise refusal(
        "RATE_LIMITED", "this key's query budget is spent", retryAfter=wait, cost=cost.static
    )
