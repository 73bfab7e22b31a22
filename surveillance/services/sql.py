"""Plain SQL for the gate's hot path, which runs under the firm lock: every
order in the firm waits while one is decided, so each statement there is
planned once per connection (prepared) and the writes of a decision travel
in one round trip.

On PostgreSQL: psycopg's prepared statements (server-side binding) and its
pipeline mode. Django's own cursors bind client-side and never prepare; the
settings' `prepare_threshold` (set high) only lets the cursors below ask for
it. Elsewhere (SQLite for `make run`): Django's cursor, one statement at a
time. Either way through a Django cursor wrapper: database errors become
Django's (IntegrityError drives the gate's retry), execute wrappers and the
query log see the statements."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from datetime import date
from typing import Any, cast

import psycopg
from django.db import connection
from django.db.models import Model
from django.db.models.sql import InsertQuery


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
