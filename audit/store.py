"""Hand-written SQL of the audit app (HOUSE_STYLE: only in <app>/store.py).

What is here, and why not the ORM:

* the log head: locked and read by one prepared statement (`lock_head`,
  `queue_head_lock` for a caller that sends it with its own reads), and moved
  by one (`write_append`, with the records and Merkle nodes in the same
  statement): every append runs them under the head lock;
* `existing_records`: the resend lookup of an ingest batch, one array
  parameter instead of an IN list of up to 500 ids;
* `tree_hashes`: the stored hashes a Merkle proof needs, one UNION ALL of
  index range scans (the ORM's OR of ranges let the planner scan a level);
* `planner_row_estimate`: PostgreSQL's estimate for the admin's big tables;
* the append-only triggers (DDL a migration installs).

Services call these with plain values and dataclasses; the transport
(prepared statements, pipelining, COPY) is compliance_site.db's."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections, transaction
from django.db.models import QuerySet
from django.utils import timezone

from compliance_site.db import Batch as Batch  # the write batch other apps' stores fill
from compliance_site.db import copy_rows, fetch_prepared

from .models import Log, MerkleNode, Record

# --- the log head and the append ----------------------------------------------------


@dataclass
class Head:
    """The log head as read under its lock. `spent` once appended to: the head
    has moved on, and only a new read under the lock tells where to."""

    pk: int
    size: int
    chain_hash: bytes
    frontier: list[str]
    last_recorded_at_us: int
    spent: bool = False


@dataclass(frozen=True)
class AppendPlan:
    """Rows of an append, hashed and numbered (audit.services.log), and where
    the head moves to."""

    head_pk: int
    records: list[tuple[Any, ...]]  # RECORD_COLUMNS order
    nodes: list[tuple[Any, ...]]  # NODE_COLUMNS order
    size: int
    chain_hash: bytes
    frontier: list[bytes]
    last_recorded_at_us: int


HEAD_SQL = (
    f"SELECT id, size, chain_hash, frontier, last_recorded_at_us FROM {Log._meta.db_table}"  # noqa: S608
    " WHERE name = %s"
)
HEAD_UPDATE_SQL = (
    f"UPDATE {Log._meta.db_table} SET size = %s, chain_hash = %s, frontier = %s,"  # noqa: S608
    " last_recorded_at_us = %s, updated_at = %s WHERE id = %s"
)
RECORD_COLUMNS = (
    "log_id", "seq", "recorded_at_us", "event_type", "actor_type", "actor_id", "agent_id",
    "event_id", "envelope_hash", "body", "leaf_hash", "chain_hash", "purged",
)  # fmt: skip
NODE_COLUMNS = ("log_id", "level", '"index"', "hash")
# Up to this many records an append is one pipelined round trip (INSERT, Merkle
# nodes, head update: what a gate decision or a single event needs); beyond it
# the records go by COPY, cheaper per row.
PIPELINED_ROWS = 16


def _head_lock_statement(log_name: str) -> tuple[str, list[Any]]:
    """Lock and read the head (FOR UPDATE on PostgreSQL; SQLite already holds
    the database write lock from BEGIN IMMEDIATE). Prepared: every append runs it."""
    connection = transaction.get_connection()
    sql = HEAD_SQL + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    return sql, [log_name]


def queue_head_lock(reads: Batch, log_name: str) -> int:
    """Add the head's lock and read to a caller's batch of reads; its row,
    under the index returned, goes to `head_of`."""
    return reads.add(*_head_lock_statement(log_name), fetch=True)


def head_of(row: Sequence[Any] | None) -> Head | None:
    if row is None:
        return None
    pk, size, chain_hash, frontier, last_recorded_at_us = row
    if isinstance(frontier, str):  # jsonb and SQLite text both arrive as text
        frontier = json.loads(frontier)
    return Head(pk, size, bytes(chain_hash), frontier, last_recorded_at_us)


def lock_head(log_name: str) -> Head:
    """Lock the head row and read it. The default log is made by a migration;
    any other log is created on its first append."""
    head = head_of(fetch_prepared(*_head_lock_statement(log_name)))
    if head is None:
        Log.objects.get_or_create(name=log_name)
        return lock_head(log_name)
    return head


@functools.lru_cache(maxsize=2 * PIPELINED_ROWS)
def _values_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"  # noqa: S608


def write_append(plan: AppendPlan, writes: Batch | None = None) -> None:
    """Store the records and Merkle nodes and move the head: now, or in the
    caller's `writes` when it sends them. The rows get no pk back; nothing
    refers to a record by pk (log_id + seq is its identity)."""
    connection = transaction.get_connection()
    send, writes = writes is None, writes or Batch()
    rows, nodes = plan.records, plan.nodes
    if len(rows) <= PIPELINED_ROWS:
        writes.add(
            _values_sql(Record._meta.db_table, RECORD_COLUMNS, len(rows)),
            [value for row in rows for value in row],
            independent=True,
        )
    else:
        copy_rows(Record, RECORD_COLUMNS, rows)
    if nodes:
        writes.add(
            _values_sql(MerkleNode._meta.db_table, NODE_COLUMNS, len(nodes)),
            [value for node in nodes for value in node],
            independent=True,
        )
    frontier_json = json.dumps([h.hex() for h in plan.frontier])
    writes.add(
        HEAD_UPDATE_SQL.replace("frontier = %s", "frontier = %s::jsonb")
        if connection.vendor == "postgresql"
        else HEAD_UPDATE_SQL,
        [
            plan.size,
            plan.chain_hash,
            frontier_json,
            plan.last_recorded_at_us,
            connection.ops.adapt_datetimefield_value(timezone.now()),
            plan.head_pk,
        ],
        # The records, their nodes and the head: three tables, one statement.
        independent=True,
    )
    if send:
        writes.run()


# --- reads -------------------------------------------------------------------------

EXISTING_SQL = (
    f"SELECT r.event_id, r.seq, r.envelope_hash, r.leaf_hash FROM {Record._meta.db_table} r"  # noqa: S608
    f" JOIN {Log._meta.db_table} l ON l.id = r.log_id"
    " WHERE l.name = %s AND r.agent_id = %s AND r.event_id = ANY(%s)"
)


def existing_records(
    agent_id: str, event_ids: list[str], log_name: str
) -> dict[str, tuple[int, Any, Any]]:
    """(seq, envelope_hash, leaf_hash) of the records these event_ids already have.
    On PostgreSQL one array parameter (= ANY) instead of an IN list of up to 500:
    the ORM's IN list costs about 1 ms of CPU per 100 ids to build and bind."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql":
        rows = Record.objects.filter(
            log__name=log_name, agent_id=agent_id, event_id__in=event_ids
        ).values_list("event_id", "seq", "envelope_hash", "leaf_hash")
        return {str(event_id): (seq, eh, lh) for event_id, seq, eh, lh in rows}
    with connection.cursor() as cursor:
        cursor.execute(EXISTING_SQL, [log_name, agent_id, event_ids])
        return {event_id: (seq, eh, lh) for event_id, seq, eh, lh in cursor.fetchall()}


# Constant SQL; every value is a parameter. The log is named in every branch,
# so its size and its hashes come back in one round trip.
_LOG_ID_SQL = f"(SELECT id FROM {Log._meta.db_table} WHERE name = %s)"  # noqa: S608
_SIZE_SQL = f"SELECT -1, size, NULL FROM {Log._meta.db_table} WHERE name = %s"  # noqa: S608
_LEAF_RANGE_SQL = (
    f"SELECT 0, seq, leaf_hash FROM {Record._meta.db_table}"  # noqa: S608
    f" WHERE log_id = {_LOG_ID_SQL} AND seq >= %s AND seq < %s"
)
_NODE_RANGE_SQL = (
    f'SELECT level, "index", hash FROM {MerkleNode._meta.db_table}'  # noqa: S608
    f' WHERE log_id = {_LOG_ID_SQL} AND level = %s AND "index" >= %s AND "index" < %s'
)


def tree_hashes(
    log_name: str, ranges: Sequence[tuple[int, int, int]]
) -> tuple[int | None, list[tuple[int, int, bytes]]]:
    """The log's size (None: no such log) and its stored hashes as (level,
    index, hash) for each (level, start, end) range, in one round trip. One
    branch per range: each is a plain index range scan, whatever the table
    statistics say (an OR of ranges let the planner read every node of a level
    and filter, a cost that grew with the log). A statement of each shape is
    prepared once per connection (the shapes are few)."""
    if transaction.get_connection().vendor != "postgresql":
        return _tree_hashes_orm(log_name, ranges)
    parts: list[str] = [_SIZE_SQL]
    params: list[Any] = [log_name]
    for level, start, end in ranges:
        if level == 0:
            parts.append(_LEAF_RANGE_SQL)
            params += [log_name, start, end]
        else:
            parts.append(_NODE_RANGE_SQL)
            params += [log_name, level, start, end]
    rows = fetch_prepared(" UNION ALL ".join(parts), params, every_row=True)
    size: int | None = None
    hashes: list[tuple[int, int, bytes]] = []
    for level, index, digest in rows:
        if level < 0:
            size = index
        else:
            hashes.append((level, index, bytes(digest)))
    return size, hashes


def _tree_hashes_orm(
    log_name: str, ranges: Sequence[tuple[int, int, int]]
) -> tuple[int | None, list[tuple[int, int, bytes]]]:
    """`tree_hashes` through the ORM (SQLite), a query per range."""
    log = Log.objects.filter(name=log_name).values_list("pk", "size").first()
    if log is None:
        return None, []
    log_id, size = log
    hashes: list[tuple[int, int, bytes]] = []
    for level, start, end in ranges:
        if level == 0:
            leaves = Record.objects.filter(log_id=log_id, seq__gte=start, seq__lt=end)
            hashes += [(0, seq, bytes(h)) for seq, h in leaves.values_list("seq", "leaf_hash")]
        else:
            nodes = MerkleNode.objects.filter(
                log_id=log_id, level=level, index__gte=start, index__lt=end
            )
            hashes += [(level, i, bytes(h)) for i, h in nodes.values_list("index", "hash")]
    return size, hashes


def planner_row_estimate(qs: QuerySet[Any]) -> int | None:
    """PostgreSQL's planner estimate of the rows of `qs` (None elsewhere): an
    admin changelist past its counting cap shows it instead of a count."""
    connection = connections[qs.db]
    if connection.vendor != "postgresql":
        return None
    sql, params = qs.order_by().query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])


# --- the append-only triggers ---------------------------------------------------------
# Records refuse DELETE and TRUNCATE, and every UPDATE except the retention
# purge: body cleared and purged set, every other column (hashes included)
# unchanged. Merkle nodes and checkpoints refuse UPDATE, DELETE and TRUNCATE.
# These stop application bugs and casual edits; an operator who disables them
# is caught by verification against signed checkpoints.

RECORD_UNCHANGED = [
    "id",
    "log_id",
    "seq",
    "recorded_at_us",
    "event_type",
    "actor_type",
    "actor_id",
    "leaf_hash",
    "chain_hash",
]
RECORD_NULLABLE_UNCHANGED = ["agent_id", "event_id", "envelope_hash"]
FROZEN_TABLES = ["audit_merklenode", "audit_checkpoint"]


def _pg_purge_condition() -> str:
    same = [f"NEW.{c} = OLD.{c}" for c in RECORD_UNCHANGED]
    same += [f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in RECORD_NULLABLE_UNCHANGED]
    return " AND ".join(["OLD.purged = false", "NEW.purged = true", "NEW.body IS NULL", *same])


def _sqlite_purge_condition() -> str:
    same = [f"NEW.{c} = OLD.{c}" for c in RECORD_UNCHANGED]
    same += [f"NEW.{c} IS OLD.{c}" for c in RECORD_NULLABLE_UNCHANGED]
    return " AND ".join(["OLD.purged = 0", "NEW.purged = 1", "NEW.body IS NULL", *same])


def postgresql_install() -> list[str]:
    sql = [
        f"""
        CREATE OR REPLACE FUNCTION audit_record_guard() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND ({_pg_purge_condition()}) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'append-only log: % on audit_record refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """,
        """
        CREATE OR REPLACE FUNCTION audit_frozen_guard() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'append-only log: % on % refused', TG_OP, TG_TABLE_NAME
                USING ERRCODE = 'insufficient_privilege';
        END;
        $$ LANGUAGE plpgsql;
        """,
        """CREATE OR REPLACE TRIGGER audit_record_guard_row BEFORE UPDATE OR DELETE ON audit_record
           FOR EACH ROW EXECUTE FUNCTION audit_record_guard()""",
        """CREATE OR REPLACE TRIGGER audit_record_guard_truncate BEFORE TRUNCATE ON audit_record
           FOR EACH STATEMENT EXECUTE FUNCTION audit_record_guard()""",
    ]
    for table in FROZEN_TABLES:
        sql += [
            f"""CREATE OR REPLACE TRIGGER {table}_guard_row BEFORE UPDATE OR DELETE ON {table}
               FOR EACH ROW EXECUTE FUNCTION audit_frozen_guard()""",
            f"""CREATE OR REPLACE TRIGGER {table}_guard_truncate BEFORE TRUNCATE ON {table}
               FOR EACH STATEMENT EXECUTE FUNCTION audit_frozen_guard()""",
        ]
    return sql


def postgresql_drop() -> list[str]:
    sql = [
        "DROP TRIGGER IF EXISTS audit_record_guard_row ON audit_record",
        "DROP TRIGGER IF EXISTS audit_record_guard_truncate ON audit_record",
    ]
    for table in FROZEN_TABLES:
        sql += [
            f"DROP TRIGGER IF EXISTS {table}_guard_row ON {table}",
            f"DROP TRIGGER IF EXISTS {table}_guard_truncate ON {table}",
        ]
    return sql


def sqlite_install() -> list[str]:
    sql = [
        """CREATE TRIGGER IF NOT EXISTS audit_record_no_delete BEFORE DELETE ON audit_record
           BEGIN SELECT RAISE(ABORT, 'append-only log: DELETE on audit_record refused'); END""",
        f"""CREATE TRIGGER IF NOT EXISTS audit_record_no_update BEFORE UPDATE ON audit_record
           WHEN NOT ({_sqlite_purge_condition()})
           BEGIN SELECT RAISE(ABORT, 'append-only log: UPDATE on audit_record refused'); END""",
    ]
    for table in FROZEN_TABLES:
        sql += [
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table}
               BEGIN SELECT RAISE(ABORT, 'append-only log: DELETE on {table} refused'); END""",
            f"""CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table}
               BEGIN SELECT RAISE(ABORT, 'append-only log: UPDATE on {table} refused'); END""",
        ]
    return sql


def sqlite_drop() -> list[str]:
    names = ["audit_record_no_delete", "audit_record_no_update"]
    for table in FROZEN_TABLES:
        names += [f"{table}_no_delete", f"{table}_no_update"]
    return [f"DROP TRIGGER IF EXISTS {n}" for n in names]


def _statements(vendor: str, install: bool) -> list[str]:
    if vendor == "postgresql":
        return postgresql_install() if install else postgresql_drop()
    if vendor == "sqlite":
        return sqlite_install() if install else sqlite_drop()
    raise RuntimeError(f"no append-only triggers for database vendor {vendor!r}")


def triggers_install(connection: Any) -> None:
    """Make the log append-only in this database (a migration runs it)."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, True):
            cursor.execute(statement)


def triggers_drop(connection: Any) -> None:
    """Drop the append-only triggers (the migration's reverse; tests that tamper)."""
    with connection.cursor() as cursor:
        for statement in _statements(connection.vendor, False):
            cursor.execute(statement)
