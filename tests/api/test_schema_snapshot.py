"""schema.graphql at the repo root is the served schema: any change shows up in review."""

from __future__ import annotations

import re
from pathlib import Path

from api.schema.root import build_schema

ROOT = Path(__file__).resolve().parents[2]


def test_served_schema_matches_the_committed_snapshot() -> None:
    committed = (ROOT / "schema.graphql").read_text(encoding="utf-8")
    assert build_schema().as_str() + "\n" == committed, (
        "schema changed: run `c360 export-schema` and commit it"
    )


def test_contract_types_served_so_far_keep_their_contract_fields() -> None:
    """Every field the served schema has on a contract type has the contract's shape."""
    contract = ROOT / "tests" / "contract.graphql"  # a copy of ../shared/contract.graphql
    served = build_schema()._schema
    for type_name, body in re.findall(
        r"^type (\w+)[^{]*\{(.*?)^\}", contract.read_text(), re.S | re.M
    ):
        served_type = served.get_type(type_name)
        if served_type is None:
            continue
        for name, shape in re.findall(r"^\s+(\w+)(?:\([^)]*\))?:\s*([\w\[\]!]+)", body, re.M):
            if name in served_type.fields:
                assert str(served_type.fields[name].type) == shape, f"{type_name}.{name}"
