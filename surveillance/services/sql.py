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

from datetime import date
from typing import Any, cast

import psycopg
from django.db import connection


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
        self.statements: list[tuple[str, list[Any]]] = []

    def add(self, sql: str, params: list[Any] | None = None) -> None:
        self.statements.append((sql, params or []))

    def run(self) -> None:
        if not self.statements:
            return
        raw = _raw_connection()
        with prepared_cursor() as cursor:
            if raw is None:
                for sql, params in self.statements:
                    cursor.execute(sql, params)
            else:
                # Errors surface when the pipeline syncs, on leaving the block.
                with connection.wrap_database_errors, raw.pipeline():
                    for sql, params in self.statements:
                        cursor.execute(sql, params)
        self.statements.clear()


def date_param(day: date) -> Any:
    """SQLite keeps dates as ISO text (what Django writes there)."""
    return day if connection.vendor == "postgresql" else day.isoformat()
