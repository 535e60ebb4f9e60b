"""Erasure's redaction of copies: what holds a value goes, what only sits beside it stays."""

from __future__ import annotations

from domain.access.erasure_conditions import redact_condition
from domain.access.erasure_scrub import REDACTED, Needles, _redact_messages, redact

NEEDLES = Needles(frozenset({"ann@example.com", "ann", "38"}))


def test_strings_holding_a_value_are_redacted_and_short_values_only_whole() -> None:
    payload = {"reason": "merge: ann@example.com", "size": "38", "at": "2026-01-01T10:38:00"}
    assert redact(payload, NEEDLES) == {"reason": REDACTED, "size": REDACTED, "at": payload["at"]}


def test_free_text_keys_of_change_events_go_whatever_they_hold() -> None:
    payload = {"customerId": "c-1", "reason": "phoned", "tag": "note", "value": "call back"}
    assert redact(payload, NEEDLES, free_text=True) == {
        "customerId": "c-1",
        "reason": None,
        "tag": "note",
        "value": None,
    }


def test_a_stored_answer_loses_only_the_messages_that_quote_a_value() -> None:
    answer = {
        "results": [
            {"customer_id": "ann-0380", "errors": [{"code": "X", "message": "Ann refused"}]},
            {"customer_id": "bob-38", "errors": [{"code": "Y", "message": "bad phone"}]},
        ]
    }
    assert _redact_messages(answer, NEEDLES) == {
        "results": [
            {"customer_id": "ann-0380", "errors": [{"code": "X", "message": REDACTED}]},
            {"customer_id": "bob-38", "errors": [{"code": "Y", "message": "bad phone"}]},
        ]
    }


def test_condition_literals_equal_to_a_value_are_redacted_and_containing_ones_reported() -> None:
    condition = {
        "and": [
            {"attribute": {"field": "email", "op": "IN", "values": ["x@y.com", "ANN@example.com"]}},
            {"not": {"tag": {"key": "note", "op": "CONTAINS", "value": "to ann@example.com"}}},
            {"attribute": {"field": "channel", "op": "EQ", "value": "web"}},
        ]
    }
    assert redact_condition(condition, NEEDLES) == (True, True)
    assert condition["and"][0]["attribute"]["values"] == ["x@y.com", REDACTED]
    assert condition["and"][1]["not"]["tag"]["value"] == "to ann@example.com"
    assert condition["and"][2]["attribute"] == {"field": "channel", "op": "EQ", "value": "web"}
