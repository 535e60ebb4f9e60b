"""SQL constructs the condition language compiles to whose spelling differs by dialect.

Each construct is one SQLAlchemy expression with one rendering per dialect (`@compiles`), so a
compiled condition is a single statement that runs unchanged on SQLite and PostgreSQL, and the
renderings agree in meaning: a JSON value or a tag value of the wrong type, or a number no
double can hold, reads as NULL (never an error, never a coerced 0), text is compared by its
bytes, CONTAINS is case-sensitive.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Float, String, literal, true
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

# A JSON number, as PostgreSQL's regular expressions spell RFC 8259 (SQLite: json_valid), with
# at most four exponent digits and 1,000 characters: NUMERIC reads any such text without error.
JSON_NUMBER = r"^[ \t\n\r]*-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]{1,4})?[ \t\n\r]*$"
MAX_NUMBER_TEXT = 1000
# A stored number outside these magnitudes cannot be a double (PostgreSQL raises on overflow
# and on underflow; SQLite reads it as infinity): it reads as NULL, so it matches nothing.
LARGEST, SMALLEST = "1e300", "1e-300"


def _pg_double(number: str, text: str) -> str:
    """`text` as a double precision when the NUMERIC `number` (the same value) fits one."""
    return (
        f"CASE WHEN {number} = 0 OR abs({number}) BETWEEN {SMALLEST} AND {LARGEST} "
        f"THEN CAST({text} AS DOUBLE PRECISION) END"
    )


def _sqlite_double(value: str) -> str:
    return f"CASE WHEN abs({value}) <= {LARGEST} THEN {value} END"


def _args(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    return [compiler.process(clause, **kw) for clause in element.clauses]


def _sqlite_path(key: str) -> str:
    """A top-level key as an SQLite JSON path, built in SQL so the key stays a bound value."""
    return f"""('$."' || {key} || '"')"""


class json_number(FunctionElement[float]):
    """json_number(document, key): the value at `key` when it is a JSON number, else NULL."""

    type = Float()
    inherit_cache = True


class json_string(FunctionElement[str]):
    """json_string(document, key): the value at `key` when it is a JSON string, else NULL."""

    type = String()
    inherit_cache = True


class json_boolean(FunctionElement[bool]):
    """json_boolean(document, key): the value at `key` when it is true or false, else NULL."""

    type = Boolean()
    inherit_cache = True


class json_present(FunctionElement[bool]):
    """json_present(document, key): `key` holds a value other than JSON null (never NULL)."""

    type = Boolean()
    inherit_cache = True


class numeric_text(FunctionElement[float]):
    """numeric_text(text): the number a text spells (JSON number syntax), else NULL."""

    type = Float()
    inherit_cache = True


class byte_order(FunctionElement[str]):
    """byte_order(text): the text, ordered by its UTF-8 bytes (SQLite's BINARY collation)."""

    type = String()
    inherit_cache = True


class text_contains(FunctionElement[bool]):
    """text_contains(haystack, needle): whether needle occurs in haystack, case-sensitively."""

    type = Boolean()
    inherit_cache = True


class _json_contains(FunctionElement[bool]):
    type = Boolean()
    inherit_cache = True


def json_contains_hint(document: Any, key: str, value: str | bool) -> ColumnElement[bool]:
    """A restatement of "`key` holds `value`" that only narrows, for an index to serve: on
    PostgreSQL JSONB containment (`@>`, which a GIN jsonb_path_ops index answers), on SQLite
    true. Only ever added beside the exact comparison, which it is implied by."""
    if isinstance(value, str) and "\x00" in value:
        return true()  # JSONB holds no NUL character: nothing to narrow by
    return _json_contains(document, literal(json.dumps({key: value}), String()))


@compiles(_json_contains, "postgresql")
def _json_contains_pg(element: _json_contains, compiler: SQLCompiler, **kw: Any) -> str:
    document, pair = _args(element, compiler, **kw)
    return f"({document} @> CAST({pair} AS JSONB))"


@compiles(_json_contains, "sqlite")
def _json_contains_sqlite(element: _json_contains, compiler: SQLCompiler, **kw: Any) -> str:
    return "(1 = 1)"


@compiles(json_number, "postgresql")
def _json_number_pg(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    # Nested CASE: the NUMERIC cast runs only on a JSON number (it raises on anything else).
    number = f"CAST({document} -> {key} AS NUMERIC)"
    return (
        f"CASE WHEN jsonb_typeof({document} -> {key}) = 'number' "
        f"THEN {_pg_double(number, f'{document} ->> {key}')} END"
    )


@compiles(json_number, "sqlite")
def _json_number_sqlite(element: json_number, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    path = _sqlite_path(key)
    value = f"json_extract({document}, {path})"
    return (
        f"CASE WHEN json_type({document}, {path}) IN ('integer', 'real') "
        f"THEN {_sqlite_double(value)} END"
    )


@compiles(json_string, "postgresql")
def _json_string_pg(element: json_string, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    return f"CASE WHEN jsonb_typeof({document} -> {key}) = 'string' THEN {document} ->> {key} END"


@compiles(json_string, "sqlite")
def _json_string_sqlite(element: json_string, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    path = _sqlite_path(key)
    return (
        f"CASE WHEN json_type({document}, {path}) = 'text' "
        f"THEN json_extract({document}, {path}) END"
    )


@compiles(json_boolean, "postgresql")
def _json_boolean_pg(element: json_boolean, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    return (
        f"CASE WHEN jsonb_typeof({document} -> {key}) = 'boolean' "
        f"THEN CAST({document} ->> {key} AS BOOLEAN) END"
    )


@compiles(json_boolean, "sqlite")
def _json_boolean_sqlite(element: json_boolean, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    path = _sqlite_path(key)
    return f"CASE json_type({document}, {path}) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"


@compiles(json_present, "postgresql")
def _json_present_pg(element: json_present, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    return f"(COALESCE(jsonb_typeof({document} -> {key}), 'null') <> 'null')"


@compiles(json_present, "sqlite")
def _json_present_sqlite(element: json_present, compiler: SQLCompiler, **kw: Any) -> str:
    document, key = _args(element, compiler, **kw)
    return f"(COALESCE(json_type({document}, {_sqlite_path(key)}), 'null') <> 'null')"


@compiles(numeric_text, "postgresql")
def _numeric_text_pg(element: numeric_text, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    number = f"CAST({text} AS NUMERIC)"
    return (
        f"CASE WHEN length({text}) <= {MAX_NUMBER_TEXT} AND {text} ~ '{JSON_NUMBER}' "
        f"THEN {_pg_double(number, text)} END"
    )


@compiles(numeric_text, "sqlite")
def _numeric_text_sqlite(element: numeric_text, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    # Nested CASE: json_type raises on text that is not JSON, so it runs only on valid JSON.
    return (
        f"CASE WHEN json_valid({text}) THEN CASE WHEN json_type({text}) IN ('integer', 'real') "
        f"THEN {_sqlite_double(f'CAST({text} AS REAL)')} END END"
    )


@compiles(byte_order, "postgresql")
def _byte_order_pg(element: byte_order, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return f'({text} COLLATE "C")'


@compiles(byte_order, "sqlite")
def _byte_order_sqlite(element: byte_order, compiler: SQLCompiler, **kw: Any) -> str:
    (text,) = _args(element, compiler, **kw)
    return text


@compiles(text_contains, "postgresql")
def _text_contains_pg(element: text_contains, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _args(element, compiler, **kw)
    return f"(strpos({haystack}, {needle}) > 0)"


@compiles(text_contains, "sqlite")
def _text_contains_sqlite(element: text_contains, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle = _args(element, compiler, **kw)
    return f"(instr({haystack}, {needle}) > 0)"
