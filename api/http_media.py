"""GraphQL over HTTP as its specification (graphql-over-http, draft) says: the media type of
the answer, and what its status code and body look like.

- `Accept: application/graphql-response+json` gets that media type, and HTTP status codes that
  say what happened: a request error (a body that is not a GraphQL request, a document that
  does not parse or validate, a refusal by api.limits) is 4xx with no `data` entry at all; once
  execution has started the answer is 200 with `data` (null if a non-null root failed), even
  with field errors. A refusal that has its own status keeps it (401, 429, 503).
- `Accept: application/json`, `*/*`, or no Accept header: application/json, and 200 for every
  well-formed request, as the specification asks for that type; a request error still has no
  `data` entry. (429 and 503 keep their status: they tell a client when to come back.)
- An Accept header that names neither gets 406 NOT_ACCEPTABLE, in application/json.
- GET runs queries (the `query`, `variables`, `operationName` parameters); a mutation over
  GET is 405 METHOD_NOT_ALLOWED with `Allow: POST`.

Every error in every answer has a code (api.errors, api.request_body).
"""

from __future__ import annotations

from strawberry.types import ExecutionResult

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
# An error that ends an operation that had started, though it names no field.
_EXECUTION_CODES = frozenset({"TIMEOUT"})


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in; None when the Accept header allows neither (406).
    The highest quality wins; between equals, the one listed first."""
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, *parameters = (piece.strip() for piece in part.split(";"))
        quality = _quality(parameters)
        media = media.lower()
        if media == GRAPHQL_RESPONSE:
            chosen = GRAPHQL_RESPONSE
        elif media in (JSON, "application/*", "*/*"):
            chosen = JSON
        else:
            continue
        if quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, chosen)
    return best[2] if best else None


def _quality(parameters: list[str]) -> float:
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                return min(1.0, max(0.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def is_request_error(result: ExecutionResult) -> bool:
    """The operation never executed: parse, validation or a limit refused it."""
    if result.data is not None or not result.errors:
        return False
    return not any(
        error.path or (error.extensions or {}).get("code") in _EXECUTION_CODES
        for error in result.errors
    )


def content_type(media: str) -> str:
    return f"{media}; charset=utf-8" if media == GRAPHQL_RESPONSE else media


__all__ = ["GRAPHQL_RESPONSE", "JSON", "content_type", "is_request_error", "negotiate"]
