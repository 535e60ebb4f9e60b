"""`c360 import` as a user meets it: a summary table, `--json`, the reject file beside the input
by default or where --rejects says, and one-line refusals of bad options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from store.db import Database
from tests.cli.test_cli import c360, c360_async
from tests.integration.test_import import ORDERS, write_file


async def test_import_prints_a_summary_table_and_keeps_rejects_beside_the_file(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "orders.csv", [*ORDERS, {**ORDERS[0], "externalId": ""}])
    result = await c360_async("import", "orders", str(path), url=database_url)
    assert result.exit_code == 0, result.output
    assert "orders imported from orders.csv" in result.stdout
    table = {
        line.split("│")[1].strip(): line.split("│")[2].strip()
        for line in result.stdout.splitlines()
        if line.count("│") == 3
    }
    assert (table["records read"], table["loaded"], table["rejected"]) == ("5", "4", "1")
    [reject] = (tmp_path / "orders.csv.rejects.jsonl").read_text().splitlines()
    assert json.loads(reject)["line"] == 6


async def test_import_json_output_and_a_chosen_reject_file(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    path = write_file(tmp_path / "orders.txt", [])
    path.write_text("".join(json.dumps(row) + "\n" for row in ORDERS))
    rejects = tmp_path / "out" / "bad.jsonl"
    rejects.parent.mkdir()
    args = ("import", "orders", str(path), "--format", "jsonl", "--rejects", str(rejects))
    first = await c360_async(*args, "--batch-size", "3", "--json", url=database_url)
    assert first.exit_code == 0, first.output
    figures = json.loads(first.stdout)
    assert figures["loaded"] == 4 and figures["batches"] == 2 and figures["format"] == "jsonl"
    assert figures["rejects_path"] == str(rejects) and rejects.read_text() == ""
    again = json.loads((await c360_async(*args, "--json", url=database_url)).stdout)
    assert (again["loaded"], again["duplicates"]) == (0, 4)


@pytest.mark.parametrize("size", ["0", "-5"])
def test_import_refuses_a_batch_size_below_one(size: str, tmp_path: Path) -> None:
    path = write_file(tmp_path / "orders.jsonl", ORDERS)
    result = c360("import", "orders", str(path), "--batch-size", size)
    assert result.exit_code == 2
    assert "--batch-size" in result.output and "greater than or equal to 1" in result.output


def test_import_refuses_an_unknown_kind_or_format_in_one_line(tmp_path: Path) -> None:
    path = write_file(tmp_path / "orders.jsonl", ORDERS)
    unknown = c360("import", "refunds", str(path), url=f"sqlite:///{tmp_path / 'x.db'}")
    assert unknown.exit_code == 1 and "unknown kind 'refunds'" in unknown.stderr
    (tmp_path / "orders.xml").write_text("<orders/>")
    odd = c360("import", "orders", str(tmp_path / "orders.xml"))
    assert odd.exit_code == 1 and "cannot tell the format of orders.xml" in odd.stderr
