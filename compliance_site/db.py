"""The transport of hand-written SQL: only the apps' stores (<app>/store.py) call it.

Glossary:

* **prepared statement**: a statement parsed and planned once per connection
  (named `_cs_N` here), then run with new parameters; PostgreSQL only.
* **round trip**: one exchange with the server, however many statements it
  carries. What runs under the gate's locks is counted in round trips.
* **pipeline**: statements sent one after another without waiting for each
  answer, then one sync and every answer read in order (libpq pipeline mode,
  `pipeline_exchange`). One failing statement aborts the rest of the run.
* **the wire** (`_Wire`): this module's own use of a pipeline, per psycopg
  connection: parameters dumped by psycopg's adapters, statements prepared
  on first use, and BEGIN/COMMIT in the same round trip when they can be.
* **watched**: someone sees every statement (the query log under DEBUG or a
  test counting queries, an execute wrapper). Then statements go through
  Django's cursor wrappers instead of the wire: same results, unprepared.
* **Batch**: statements queued by a store and sent together (`Batch.run`).
* **independent** (statements of a Batch): writes that touch rows no other of
  their run touches and read nothing they write; a run of them is sent as
  one statement (each a data-modifying WITH query).
* **COPY** (`copy_rows`): bulk rows streamed in one statement.
* **insert_new**: insert the rows that do not collide with a unique key and
  return which went in.

Why: the hot paths (the log append, the ingest projections, the gate) run
under the log head lock (and the gate under the firm lock), so every round
trip and every millisecond of query building there delays every other
writer. The ORM's multi-row INSERT builds, quotes and binds one parameter per
cell; Django's cursors bind client-side and never prepare (the settings'
`prepare_threshold` is set out of reach, so psycopg prepares nothing of its
own either).

Elsewhere (SQLite for `make run`) the same calls run one plain statement at a
time through a Django cursor, or through the ORM. Either way database errors
become Django's (IntegrityError drives ingest's and the gate's retries).
"""

from __future__ import annotations

import functools
import json
import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, models, transaction


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
    `returning` (column names) of those inserted. One prepared statement on
    PostgreSQL (the rows as one JSON parameter); a concurrent insert of the
    same key waits for the other transaction and then counts as not inserted.
    Elsewhere the ORM, one row (and savepoint) at a time."""
    if not rows:
        return set()
    connection = transaction.get_connection()
    if connection.vendor == "postgresql":
        sql = _insert_new_sql(model, tuple(columns), tuple(returning))
        found = fetch_prepared(sql, [json.dumps(rows, default=str)], every_row=True)
        return {tuple(r) for r in found}
    names = [f.attname for f in _fields(model, columns)]
    wanted = [f.attname for f in _fields(model, returning)]
    inserted: set[tuple[Any, ...]] = set()
    for row in rows:
        try:
            with transaction.atomic():
                obj = model._default_manager.create(**dict(zip(names, row, strict=True)))
        except IntegrityError:
            continue
        inserted.add(tuple(getattr(obj, name) for name in wanted))
    return inserted


@functools.lru_cache(maxsize=64)
def _insert_new_sql(
    model: type[models.Model], columns: tuple[str, ...], returning: tuple[str, ...]
) -> str:
    table, cols, ret = model._meta.db_table, ", ".join(columns), ", ".join(returning)
    # The rows travel as one JSON array of arrays: one text parameter that
    # PostgreSQL unpacks, instead of an array literal per column built in Python.
    connection = transaction.get_connection()
    picks = ", ".join(
        f"(r->>{i})::{f.db_type(connection)}" for i, f in enumerate(_fields(model, columns))
    )
    return (
        f"INSERT INTO {table} ({cols}) SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS r"  # noqa: S608 - model metadata only
        f" ON CONFLICT DO NOTHING RETURNING {ret}"
    )


# --- prepared statements and pipelines ----------------------------------------------


_PLACEHOLDER = re.compile(r"%%|%s|%\((\w+)\)s|%")


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """`sql` with its placeholders numbered as PostgreSQL's own (`$1`, `$2`,
    ...; `%%` becomes `%`), and the parameter names in the order of their
    numbers (None for positional `%s`). psycopg does this for every statement
    but remembers it only for statements under 4 kB: the gate's fused write is
    longer, and rescanning it cost 0.2 ms per order, under the locks. Ours
    come in a few dozen shapes, so every one is remembered here."""
    names: list[str] = []
    positional = 0

    def number(match: re.Match[str]) -> str:
        nonlocal positional
        text, name = match.group(0), match.group(1)
        if text == "%%":
            return "%"
        if text == "%s":
            positional += 1
            return f"${positional}"
        if name is None:
            raise ValueError(f"only %s and %(name)s placeholders are supported: {sql[:120]!r}")
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    out = _PLACEHOLDER.sub(number, sql)
    if positional and names:
        raise ValueError(f"positional and named placeholders mixed: {sql[:120]!r}")
    return out, (tuple(names) if names else None)


class _NumberingCursor(psycopg.RawCursor[Any]):
    """Takes Django's `%s` and `%(name)s` placeholders, binds server-side
    (the watched road; the hot one prepares through `_Wire`)."""

    def execute(
        self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: Any = None
    ) -> Any:
        sql, names = numbered(query)
        if names is not None:
            params = [params[name] for name in names]
        return super().execute(sql, params, prepare=False, binary=binary)


_Params = Sequence[Any] | Mapping[str, Any]
_ONE, _ALL = 1, 2  # a unit's rows wanted: its first one, or all of them
_Unit = tuple[str, Sequence[Any], int]  # numbered sql, positional params, rows wanted (0: none)
_SYNC = psycopg.pq.ExecStatus.PIPELINE_SYNC
_FAILED = psycopg.pq.ExecStatus.FATAL_ERROR
_TUPLES = psycopg.pq.ExecStatus.TUPLES_OK
_AUTO = psycopg.adapt.PyFormat.AUTO


class _Wire:
    """Prepared statements pipelined straight through libpq: one round trip
    for a run of statements, each prepared once per connection.

    psycopg's cursors do the same in pipeline mode, but their Python
    bookkeeping (a send-and-receive attempt after every statement, a result
    queue, the prepared-statement manager) cost as much CPU per statement as
    the server's work on it, under the gate's locks. Here: the parameters are
    dumped by psycopg's own (compiled) adapters, the messages queued, one
    sync, one flush, and the results read in order.

    The statements prepared here are this class's alone (named `_cs_N`); the
    connection's `prepare_threshold` is out of reach, so psycopg prepares
    none of its own and never sends the DEALLOCATE ALL it sends after a
    rollback when it has some. Prepared statements are not transactional: a
    rollback keeps them. One failing statement aborts the rest of the run
    (and the transaction), as in any pipeline: the error is raised as psycopg
    raises it, for Django to translate."""

    MAX_STATEMENTS = 512

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.tx = psycopg.adapt.Transformer(raw)
        self.names: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self.made = 0

    def usable(self) -> bool:
        """The connection is in a transaction already, or in autocommit (a
        transaction psycopg would begin by itself, with its own options,
        goes the cursors' way)."""
        status = self.raw.pgconn.transaction_status
        return status == psycopg.pq.TransactionStatus.INTRANS or (
            status == psycopg.pq.TransactionStatus.IDLE and self.raw.autocommit
        )

    def run(
        self, units: Sequence[_Unit], *, begin: bool = False, commit: bool = False
    ) -> list[Any]:
        """Send BEGIN (with `begin`), the units and COMMIT (with `commit`) in one
        round trip; return, per unit, its row, its rows, or None."""
        raw, tx = self.raw, self.tx
        # Every parameter dumped before anything is queued: a value that cannot
        # be sent fails the call with nothing sent.
        dumped: list[tuple[tuple[str, tuple[int, ...]], Sequence[Any], Any]] = []
        for sql, params, _ in units:
            if params:
                values = tx.dump_sequence(params, [_AUTO] * len(params))
                dumped.append(((sql, tuple(tx.types or ())), values, tuple(tx.formats or ())))
            else:
                dumped.append(((sql, ()), (), None))
        fresh: dict[tuple[str, tuple[int, ...]], bytes] = {}
        commands: list[Command] = []
        # Per command, in order: the unit whose result it is (-1: none), or the
        # key of a statement being prepared.
        expected: list[int | tuple[str, tuple[int, ...]]] = []
        if len(self.names) >= self.MAX_STATEMENTS:
            self.names.clear()
            commands.append(Command(b"DEALLOCATE ALL"))
            expected.append(-1)
        if begin:
            commands.append(Command(b"BEGIN"))
            expected.append(-1)
        for index, (key, values, formats) in enumerate(dumped):
            name = self.names.get(key) or fresh.get(key)
            if name is None:
                self.made += 1
                name = fresh[key] = b"_cs_%d" % self.made
                commands.append(Command(key[0].encode(), prepare_as=name, types=key[1]))
                expected.append(key)
            commands.append(Command(b"", run_prepared=name, params=values, formats=formats))
            expected.append(index)
        if commit:
            commands.append(Command(b"COMMIT"))
            expected.append(-1)
        results = pipeline_exchange(raw, commands)
        out: list[Any] = [None] * len(units)
        error = None
        for what, result in zip(expected, results, strict=True):
            status = result.status if result is not None else None
            if status == _FAILED and error is None:
                error = result
            elif isinstance(what, tuple):
                if status == psycopg.pq.ExecStatus.COMMAND_OK:
                    self.names[what] = fresh[what]
            elif what >= 0 and status == _TUPLES and units[what][2]:
                tx.set_pgresult(result)
                count = result.ntuples
                if units[what][2] == _ALL:
                    out[what] = tx.load_rows(0, count, tuple)
                elif count:
                    out[what] = tx.load_row(0, tuple)
        if error is not None:
            raise psycopg.errors.error_from_result(error, encoding=raw.info.encoding)
        return out


@dataclass(frozen=True)
class Command:
    """One command of a pipeline: a plain query (`sql` alone), the preparation
    of `sql` as `prepare_as` (with its parameter type oids), or the run of the
    prepared statement `run_prepared` with dumped `params` in `formats`."""

    sql: bytes
    prepare_as: bytes | None = None
    types: Sequence[int] = ()
    run_prepared: bytes | None = None
    params: Sequence[Any] = ()
    formats: Sequence[Any] | None = None


def pipeline_exchange(raw: psycopg.Connection[Any], commands: Sequence[Command]) -> list[Any]:
    """The one use of psycopg's low-level pipeline API (libpq pipeline mode):
    send every command, one sync and one flush, then read one result per
    command, in order (a PGresult, or None where the server sent none). A
    failing command's result is FATAL_ERROR and the ones after it are
    PIPELINE_ABORTED; nothing is raised for them here. If the exchange itself
    breaks (the connection, an interrupted wait) with results still pending,
    nothing more can be sent on the connection: it is closed (Django then
    finds it closed and opens another) and the error raised."""
    pg = raw.pgconn
    with raw.lock:
        pg.enter_pipeline_mode()
        try:
            for command in commands:
                if command.prepare_as is not None:
                    pg.send_prepare(
                        command.prepare_as, command.sql, param_types=command.types or None
                    )
                elif command.run_prepared is not None:
                    pg.send_query_prepared(
                        command.run_prepared, command.params, param_formats=command.formats
                    )
                else:
                    pg.send_query_params(command.sql, None)
            pg.pipeline_sync()
            raw.wait(psycopg.generators.send(pg))
            results: list[Any] = []
            for _ in commands:
                [result] = raw.wait(psycopg.generators.fetch_many(pg)) or [None]
                results.append(result)
            [sync] = raw.wait(psycopg.generators.fetch_many(pg))
            if sync.status != _SYNC:  # not a reply to what was sent: give up the connection
                raise psycopg.OperationalError(f"unexpected reply in a pipeline: {sync.status}")
            pg.exit_pipeline_mode()
        except BaseException:
            if pg.pipeline_status != psycopg.pq.PipelineStatus.OFF:
                raw.close()
            raise
    return results


# Each psycopg connection's wire (its prepared statements), for as long as the
# connection lives: a new connection starts with none prepared.
_wires: weakref.WeakKeyDictionary[Any, _Wire] = weakref.WeakKeyDictionary()


def _positional(sql: str, params: _Params) -> _Unit:
    numbered_sql, names = numbered(sql)
    if names is not None:
        params = [cast(Mapping[str, Any], params)[name] for name in names]
    return numbered_sql, cast(Sequence[Any], params), 0


def _db() -> Any:
    """The default connection's wrapper itself: each attribute read through the
    `django.db.connection` proxy costs a context-local lookup, and the hot
    paths read a dozen per statement."""
    return connections[DEFAULT_DB_ALIAS]


def _raw_connection(db: Any) -> Any:
    """The psycopg connection, if statements may be prepared on it."""
    if db.vendor != "postgresql":
        return None
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    return raw if raw.prepare_threshold is not None else None


def _ends_transaction(db: Any) -> bool:
    """Inside exactly one atomic block, which will commit when it ends."""
    return bool(
        db.in_atomic_block
        and len(db.atomic_blocks) == 1
        and db.commit_on_exit
        and not db.needs_rollback
        and not db.closed_in_transaction
    )


def _begin_here(db: Any, raw: Any) -> bool:
    """Django opened a transaction (an atomic block) that PostgreSQL has not
    begun yet. psycopg would send BEGIN in a round trip of its own before the
    first statement; the caller sends it in the same pipeline as its
    statements instead. For that psycopg is switched to autocommit, which it
    allows while idle: it then adds no BEGIN of its own, the server is in the
    explicit transaction anyway, and Django's COMMIT or ROLLBACK at the end of
    the block go out as usual (psycopg sends them whenever the server is in a
    transaction). Django switches psycopg back when the next block opens."""
    if (
        db.in_atomic_block
        and not raw.autocommit
        and raw.isolation_level is None
        and raw.read_only is None
        and raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    ):
        raw.autocommit = True
        return True
    return False


def _watched(db: Any) -> bool:
    """Someone sees every statement: the query log (DEBUG, tests counting
    queries) or an execute wrapper. Then statements go through Django's cursor
    wrapper, unprepared; otherwise through the connection's `_Wire`, with
    Django's error translation and broken-transaction check around it."""
    return bool(db.queries_logged or db.execute_wrappers)


def _hot_cursor() -> Any:
    """A Django cursor that takes `%(name)s` placeholders on PostgreSQL too (a
    plain Django cursor elsewhere): the road of statements someone watches."""
    db = _db()
    raw = _raw_connection(db)
    if raw is None:
        return db.cursor()
    db.validate_thread_sharing()
    cursor = cast(Any, _NumberingCursor(raw))
    if db.queries_logged:
        return db.make_debug_cursor(cursor)
    return db.make_cursor(cursor)


def _through_wire(db: Any, raw: Any, units: Sequence[_Unit], *, commit: bool = False) -> Any:
    """Send the units through this connection's `_Wire` (see `_Wire.run`),
    BEGIN first when this block's transaction has not begun yet; None if the
    connection cannot take them that way now (the caller uses a cursor)."""
    db.validate_thread_sharing()
    db.validate_no_broken_transaction()
    wire = _wires.get(raw)
    if wire is None:
        wire = _wires[raw] = _Wire(raw)
    if raw.pgconn.pipeline_status != psycopg.pq.PipelineStatus.OFF:
        return None
    begin = _begin_here(db, raw)
    if not begin and not wire.usable():
        return None
    with db.wrap_database_errors:
        return wire.run(units, begin=begin, commit=commit)


def fetch_prepared(
    sql: str, params: Sequence[Any] | Mapping[str, Any], *, every_row: bool = False
) -> Any:
    """Run one prepared statement and return its first row (None if none), or
    with `every_row` the list of its rows."""
    db = _db()
    raw = _raw_connection(db)
    if raw is not None and not _watched(db):
        numbered_sql, positional, _ = _positional(sql, params)
        unit = (numbered_sql, positional, _ALL if every_row else _ONE)
        out = _through_wire(db, raw, [unit])
        if out is not None:
            return out[0] if out[0] is not None or not every_row else []
    with _hot_cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if every_row else cursor.fetchone()


class Batch:
    """Statements sent together: on PostgreSQL prepared and pipelined (one
    round trip, each statement still sees the ones before it), elsewhere one
    by one. An error in any aborts the transaction as usual.

    Consecutive statements added as `independent` go to PostgreSQL as one
    statement (each a data-modifying WITH query of it): every statement costs
    the client and the server a fixed price, whatever it does. Independent
    means: an INSERT, UPDATE or DELETE with positional parameters, touching
    rows no other statement of its run touches, and reading nothing they
    write (they share one snapshot and do not see each other's changes)."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, _Params, bool, bool, tuple[tuple[str, str], ...]]] = []
        self.results: dict[int, Any] = {}  # of the last run()

    def add(
        self,
        sql: str,
        params: _Params | None = None,
        *,
        fetch: bool = False,
        independent: bool = False,
        ctes: Sequence[tuple[str, str]] = (),
    ) -> int:
        """Queue a statement; with `fetch`, run() returns its first row under
        the index returned here. `ctes`: the statement's own WITH queries,
        (name, sql) in order, their parameters before the statement's own
        (PostgreSQL only: kept apart so that an independent statement that
        has them can still join a fused one, which may have one WITH only)."""
        if independent and (isinstance(params, Mapping) or sql.lstrip()[:4].upper() == "WITH"):
            raise ValueError("an independent statement has positional parameters and no WITH")
        self.statements.append((sql, params or [], fetch, independent, tuple(ctes)))
        return len(self.statements) - 1

    def run(self, *, commit: bool = False) -> dict[int, Any]:
        """Send the statements. With `commit`, when the caller's atomic block
        is the outermost one, its COMMIT goes in the same round trip (Django
        then finds nothing left to commit, and runs the on_commit hooks as
        usual): the last thing such a block may do. Elsewhere, or inside an
        outer block (a test's), Django commits when the blocks end."""
        rows: dict[int, Any] = {}
        if not self.statements:
            self.results = rows
            return rows
        db = _db()
        raw = _raw_connection(db)
        commit = commit and raw is not None and _ends_transaction(db)
        units = self._fused() if raw is not None else []
        out = None
        if units and not _watched(db):
            wire_units = [
                (*_positional(sql, params)[:2], 0 if fetch_at is None else _ONE)
                for sql, params, fetch_at in units
            ]
            out = _through_wire(db, raw, wire_units, commit=commit)
        if out is not None:
            for (_, _, fetch_at), row in zip(units, out, strict=True):
                if fetch_at is not None:
                    rows[fetch_at] = row
        elif units:
            self._pipeline_watched(db, raw, units, rows, commit)
        else:
            with _hot_cursor() as cursor:
                for index, (sql, params, fetch, _, ctes) in enumerate(self.statements):
                    cursor.execute(_with(ctes, sql), params)
                    if fetch:
                        rows[index] = cursor.fetchone()
        self.statements.clear()
        self.results = rows
        return rows

    def _fused(self) -> list[tuple[str, _Params, int | None]]:
        """The statements as sent to PostgreSQL: (sql, params, index of the
        statement whose row is wanted), each run of independent ones as one."""
        units: list[tuple[str, _Params, int | None]] = []
        run: list[tuple[int, str, _Params, bool, tuple[tuple[str, str], ...]]] = []

        def flush() -> None:
            if len(run) == 1:
                index, sql, params, fetch, ctes = run[0]
                units.append((_with(ctes, sql), params, index if fetch else None))
            elif run:
                parts = [
                    part
                    for n, (_, sql, _, _, ctes) in enumerate(run)
                    for part in [*(f"{name} AS ({q})" for name, q in ctes), f"_s{n} AS ({sql})"]
                ]
                wanted = [(n, index) for n, (index, _, _, fetch, _) in enumerate(run) if fetch]
                # Statements the caller wrote; only CTE names are added here.
                tail = f"SELECT * FROM _s{wanted[0][0]}" if wanted else "SELECT 1"  # noqa: S608
                units.append(
                    (
                        f"WITH {', '.join(parts)} {tail}",
                        [
                            value
                            for _, _, params, _, _ in run
                            for value in cast(Sequence[Any], params)
                        ],
                        wanted[0][1] if wanted else None,
                    )
                )
            run.clear()

        for index, (sql, params, fetch, independent, ctes) in enumerate(self.statements):
            if not independent:
                flush()
                units.append((_with(ctes, sql), params, index if fetch else None))
                continue
            named = {name for *_, run_ctes in run for name, _ in run_ctes}
            if (fetch and any(f for _, _, _, f, _ in run)) or named & {n for n, _ in ctes}:
                flush()  # one wanted row per statement; each WITH name once
            run.append((index, sql, params, fetch, ctes))
        flush()
        return units

    def _pipeline_watched(
        self,
        db: Any,
        raw: Any,
        units: list[tuple[str, _Params, int | None]],
        rows: dict[int, Any],
        commit: bool,
    ) -> None:
        """The pipeline through Django's cursor wrappers (query log, execute
        wrappers), and where the wire cannot take it (`_through_wire`)."""
        fetching: list[tuple[int, Any]] = []
        with ExitStack() as cursors:
            shared = cursors.enter_context(_hot_cursor())
            with db.wrap_database_errors, raw.pipeline():
                for sql, params, fetch_at in units:
                    cursor = (
                        cursors.enter_context(_hot_cursor()) if fetch_at is not None else shared
                    )
                    cursor.execute(sql, params)
                    if fetch_at is not None:
                        fetching.append((fetch_at, cursor))
                if commit:  # the query log shows Django's own COMMIT when the block ends
                    raw.execute("COMMIT")
            for index, cursor in fetching:
                rows[index] = cursor.fetchone()


def _with(ctes: Sequence[tuple[str, str]], sql: str) -> str:
    if not ctes:
        return sql
    return f"WITH {', '.join(f'{name} AS ({q})' for name, q in ctes)} {sql}"
