"""SQL on the hot paths: the log append, the ingest projections, the gate.

These run under the log head lock (and the gate under the firm lock), so
every round trip and every millisecond of query building there delays every
other writer. On PostgreSQL:

* bulk rows go through COPY, or as one JSON parameter unpacked by the server
  (the ORM's multi-row INSERT builds, quotes and binds one parameter per cell);
* statements that ask for it are prepared once per connection (psycopg's
  server-side binding; Django's own cursors bind client-side and never
  prepare: the settings' `prepare_threshold` is set out of reach);
* writes that need no answer in between travel together in one pipelined
  round trip (`Batch`).

Elsewhere (SQLite for `make run`) the same calls run one plain statement at a
time. Either way through a Django cursor wrapper: database errors become
Django's (IntegrityError drives ingest's and the gate's retries), and execute
wrappers and the query log see the statements.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from datetime import date
from typing import Any, cast

import psycopg
from django.db import connection, models, transaction
from django.db.models import Model
from django.db.models.sql import InsertQuery


def _fields(model: type[models.Model], columns: Sequence[str]) -> list[models.Field[Any, Any]]:
    by_column = {f.column: f for f in model._meta.concrete_fields}
    return [by_column[c] for c in columns]


def copy_rows(
    model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows (tuples in `columns` order, database column names). No pk
    comes back. A unique violation raises Django's IntegrityError."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        names = [f.attname for f in _fields(model, columns)]
        model._default_manager.bulk_create(
            [model(**dict(zip(names, r, strict=True))) for r in rows]
        )
        return
    sql = f"COPY {model._meta.db_table} ({', '.join(columns)}) FROM STDIN"
    # JSON columns take their value as JSON text (the row holds the Python value).
    json_at = [i for i, f in enumerate(_fields(model, columns)) if isinstance(f, models.JSONField)]
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = json.dumps(row[i], separators=(",", ":"))
            copy.write_row(row)


def insert_new(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: Sequence[str],
) -> set[tuple[Any, ...]]:
    """Insert the rows that do not collide with a unique constraint and return
    `returning` of those inserted. One statement on PostgreSQL (an array per
    column, unnested); a concurrent insert of the same key waits for the other
    transaction and then counts as not inserted."""
    if not rows:
        return set()
    connection = transaction.get_connection()
    sql = _insert_new_sql(model, tuple(columns), tuple(returning), connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(sql, [json.dumps(rows, default=str)])
            return {tuple(r) for r in cursor.fetchall()}
        inserted: set[tuple[Any, ...]] = set()
        for row in rows:
            cursor.execute(sql, list(row))
            inserted.update(tuple(r) for r in cursor.fetchall())
        return inserted


@functools.lru_cache(maxsize=64)
def _insert_new_sql(
    model: type[models.Model], columns: tuple[str, ...], returning: tuple[str, ...], vendor: str
) -> str:
    table, cols, ret = model._meta.db_table, ", ".join(columns), ", ".join(returning)
    if vendor == "postgresql":
        # The rows travel as one JSON array of arrays: one text parameter that
        # PostgreSQL unpacks, instead of an array literal per column built in Python.
        connection = transaction.get_connection()
        picks = ", ".join(
            f"(r->>{i})::{f.db_type(connection)}" for i, f in enumerate(_fields(model, columns))
        )
        source = f"SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS r"  # noqa: S608 - model metadata only
    else:  # one row per statement
        source = f"VALUES ({', '.join(['%s'] * len(columns))})"
    return f"INSERT INTO {table} ({cols}) {source} ON CONFLICT DO NOTHING RETURNING {ret}"


# --- prepared statements and pipelines ----------------------------------------------


class _PreparingCursor(psycopg.Cursor[Any]):
    """Server-side binding; every statement prepared (psycopg keeps the plans
    per connection and drops them after a rollback)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None
    ) -> Any:
        return super().execute(query, params, prepare=True, binary=binary)


def _raw_connection() -> Any:
    """The psycopg connection, if statements may be prepared on it."""
    if connection.vendor != "postgresql":
        return None
    connection.ensure_connection()
    raw = connection.connection
    return raw if raw.prepare_threshold is not None else None


def prepared_cursor() -> Any:
    """A Django cursor whose statements are prepared once per connection on
    PostgreSQL (a plain Django cursor elsewhere)."""
    raw = _raw_connection()
    if raw is None:
        return connection.cursor()
    connection.validate_thread_sharing()
    cursor = cast(Any, _PreparingCursor(raw))
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


class Batch:
    """Statements sent together: on PostgreSQL prepared and pipelined (one
    round trip, each statement still sees the ones before it), elsewhere one
    by one. An error in any aborts the transaction as usual."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Sequence[Any], bool]] = []
        self.results: dict[int, Any] = {}  # of the last run()

    def add(self, sql: str, params: Sequence[Any] | None = None, *, fetch: bool = False) -> int:
        """Queue a statement; with `fetch`, run() returns its first row under
        the index returned here."""
        self.statements.append((sql, params or [], fetch))
        return len(self.statements) - 1

    def run(self) -> dict[int, Any]:
        rows: dict[int, Any] = {}
        raw = _raw_connection()
        if raw is None:
            with prepared_cursor() as cursor:
                for index, (sql, params, fetch) in enumerate(self.statements):
                    cursor.execute(sql, params)
                    if fetch:
                        rows[index] = cursor.fetchone()
        else:
            # A statement whose row is wanted gets its own cursor: a cursor
            # keeps the result of its last statement, available after the sync.
            fetching: list[tuple[int, Any]] = []
            with ExitStack() as cursors:
                shared = cursors.enter_context(prepared_cursor())
                # Errors surface when the pipeline syncs, on leaving the block.
                with connection.wrap_database_errors, raw.pipeline():
                    for index, (sql, params, fetch) in enumerate(self.statements):
                        cursor = cursors.enter_context(prepared_cursor()) if fetch else shared
                        cursor.execute(sql, params)
                        if fetch:
                            fetching.append((index, cursor))
                for index, cursor in fetching:
                    rows[index] = cursor.fetchone()
        self.statements.clear()
        self.results = rows
        return rows


def insert_sql(obj: Model) -> tuple[str, Sequence[Any]]:
    """Django's own INSERT ... RETURNING pk for one new model instance, to send
    in a Batch (then `mark_inserted` with the row)."""
    opts = obj._meta
    fields = [f for f in opts.local_concrete_fields if not f.primary_key]
    query = InsertQuery(obj.__class__)
    query.insert_values(fields, [obj])
    compiler = query.get_compiler(using=connection.alias)
    compiler.returning_fields = [opts.pk]
    [(sql, params)] = compiler.as_sql()
    return sql, params


def mark_inserted(obj: Model, row: Sequence[Any]) -> None:
    """What Model.save() does after its INSERT: the pk, and the state of a stored row."""
    obj.pk = row[0]
    obj._state.adding = False
    obj._state.db = connection.alias


def date_param(day: date) -> Any:
    """SQLite keeps dates as ISO text (what Django writes there)."""
    return day if connection.vendor == "postgresql" else day.isoformat()
