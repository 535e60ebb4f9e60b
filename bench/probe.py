"""One hostile request of `python -m bench fuzz`, and a GraphQL one built from a document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Probe:
    name: str
    body: bytes | None = None  # sent as application/json, as is
    params: dict[str, str] | None = None  # a GET request
    chunks: int = 0  # a body of `chunks` × 64 kB, chunked, with no Content-Length

    def request(self) -> dict[str, Any]:
        """httpx keyword arguments for this probe."""
        if self.params is not None:
            return {"method": "GET", "params": self.params}
        if self.chunks:
            return {"method": "POST", "content": _chunks(self.chunks), "headers": JSON}
        return {"method": "POST", "content": self.body or b"", "headers": JSON}


JSON = {"content-type": "application/json"}


async def _chunks(count: int) -> AsyncIterator[bytes]:
    yield b'{"query": "{ __typename }", "pad": "'
    for _ in range(count):
        yield b"x" * 65536
    yield b'"}'


def gql(name: str, query: str, variables: dict[str, Any] | None = None) -> Probe:
    body = {"query": query, "variables": variables or {}}
    return Probe(name, json.dumps(body, allow_nan=True).encode())
