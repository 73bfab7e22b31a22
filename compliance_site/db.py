"""Bulk writes on the hot paths (the log append, the ingest projections).

The ORM's multi-row INSERT builds, quotes and binds one parameter per cell;
at 100 rows of a dozen columns that costs more CPU than the rest of the
request. On PostgreSQL these go through COPY or one array per column; on
SQLite (development) through plain statements.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

from django.db import models, transaction


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
    with (
        connection.wrap_database_errors,
        connection.cursor() as cursor,
        cursor.cursor.copy(sql) as copy,
    ):
        for row in rows:
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
