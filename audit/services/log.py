"""The one place where records are appended to the log.

Every app records its state changes through `record_event` (server events) or
`append` (already validated items), inside the caller's own transaction, so a
change and its record commit together or not at all.

CPU work (canonicalizing `actor`, `source` and `data`) happens before the head
lock. Under the lock only the seq and timestamp are assigned, the record's
canonical text is assembled from the pre-canonicalized parts, and two SHA-256
are computed per record; a batch takes the lock once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import transaction
from django.utils import timezone

from compliance_client import merkle
from compliance_client.jcs import canonicalize
from compliance_site.db import Batch, copy_rows, fetch_prepared

from ..models import Log, MerkleNode, Record
from ..validation import resolve, schema_errors

DEFAULT_LOG = "default"
TILE_LEVELS = 8  # a MerkleNode is stored for every level that is a multiple of 8


class AuditError(Exception):
    """A server event could not be recorded: the caller's change must fail too."""


@dataclass(frozen=True)
class Actor:
    type: str  # "agent" | "user" | "system"
    id: str

    @classmethod
    def for_user(cls, user: Any) -> Actor:
        return cls("user", user.get_username())

    @classmethod
    def system(cls, name: str = "system") -> Actor:
        return cls("system", name)

    @classmethod
    def agent(cls, agent_id: str) -> Actor:
        return cls("agent", agent_id)


class Appended(NamedTuple):
    """A record just appended: its place in the log and its hashes (the row
    itself is in the database; read it back as a Record when needed)."""

    seq: int
    recorded_at_us: int
    event_type: str
    leaf_hash: bytes
    chain_hash: bytes


@dataclass
class PendingRecord:
    """A record waiting for its seq: its parts already canonicalized."""

    event_type: str
    actor: Actor
    data_json: bytes
    source_json: bytes = b"null"
    agent_id: str | None = None
    event_id: str | None = None
    envelope_hash: bytes | None = None
    _actor_json: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._actor_json = _actor_json(self.actor.type, self.actor.id)

    def body(self, seq: int, recorded_at_us: int) -> bytes:
        # JCS of an object is its members in sorted key order, each in its own
        # canonical form: so the record's canonical text is this concatenation.
        return b"".join(
            (
                b'{"actor":',
                self._actor_json,
                b',"data":',
                self.data_json,
                b',"event_type":',
                canonicalize(self.event_type),
                b',"recorded_at_us":',
                str(recorded_at_us).encode(),
                b',"seq":',
                str(seq).encode(),
                b',"source":',
                self.source_json,
                b"}",
            )
        )


@functools.lru_cache(maxsize=4096)
def _actor_json(actor_type: str, actor_id: str) -> bytes:
    return canonicalize({"type": actor_type, "id": actor_id})


def now_us() -> int:
    return time.time_ns() // 1000


def pending_server_event(event_type: str, *, actor: Actor, data: dict[str, Any]) -> PendingRecord:
    """Validate a server event against its schema and canonicalize it (no lock taken)."""
    resolved = resolve(event_type)
    if resolved is None:
        raise AuditError(f"unknown event type {event_type!r}")
    problem = schema_errors(resolved.validate, data)
    if problem is not None:
        raise AuditError(f"{event_type} data does not match its schema: {problem}")
    return PendingRecord(event_type=event_type, actor=actor, data_json=canonicalize(data))


def record_event(
    event_type: str, *, actor: Actor, data: dict[str, Any], log_name: str = DEFAULT_LOG
) -> Appended:
    """Append one server event inside the caller's transaction and return its record.

    Must be called inside `transaction.atomic`; if the caller's transaction rolls
    back, the record goes with it (fail closed)."""
    return append([pending_server_event(event_type, actor=actor, data=data)], log_name=log_name)[0]


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


_HEAD_SQL = (
    f"SELECT id, size, chain_hash, frontier, last_recorded_at_us FROM {Log._meta.db_table}"  # noqa: S608
    " WHERE name = %s"
)
_HEAD_UPDATE_SQL = (
    f"UPDATE {Log._meta.db_table} SET size = %s, chain_hash = %s, frontier = %s,"  # noqa: S608
    " last_recorded_at_us = %s, updated_at = %s WHERE id = %s"
)


def head_lock_statement(log_name: str = DEFAULT_LOG) -> tuple[str, list[Any]]:
    """The statement that locks and reads the head (FOR UPDATE on PostgreSQL;
    SQLite already holds the database write lock from BEGIN IMMEDIATE), for a
    caller that sends it in a Batch with its own reads (the gate); its row goes
    to `head_from_row`. Prepared: every append runs it."""
    connection = transaction.get_connection()
    if connection.__dict__.get("_audit_unsent_append"):
        raise AuditError("the log head is read inside an append_with block, before it moved")
    sql = _HEAD_SQL + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    return sql, [log_name]


def head_from_row(row: Sequence[Any]) -> Head:
    pk, size, chain_hash, frontier, last_recorded_at_us = row
    if isinstance(frontier, str):  # jsonb and SQLite text both arrive as text
        frontier = json.loads(frontier)
    return Head(pk, size, bytes(chain_hash), frontier, last_recorded_at_us)


def lock_head(log_name: str = DEFAULT_LOG) -> Head:
    """Lock the head row and read it. The default log is made by a migration;
    any other log is created on its first append."""
    row = fetch_prepared(*head_lock_statement(log_name))
    if row is None:
        Log.objects.get_or_create(name=log_name)
        return lock_head(log_name)
    return head_from_row(row)


_RECORD_COLUMNS = (
    "log_id", "seq", "recorded_at_us", "event_type", "actor_type", "actor_id", "agent_id",
    "event_id", "envelope_hash", "body", "leaf_hash", "chain_hash", "purged",
)  # fmt: skip
_NODE_COLUMNS = ("log_id", "level", '"index"', "hash")
# Up to this many records an append is one pipelined round trip (INSERT, Merkle
# nodes, head update: what a gate decision or a single event needs); beyond it
# the records go by COPY, cheaper per row.
_PIPELINED_ROWS = 16


@functools.lru_cache(maxsize=2 * _PIPELINED_ROWS)
def _values_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([row] * rows)}"  # noqa: S608


def _write(
    head: Head,
    rows: list[tuple[Any, ...]],
    nodes: list[tuple[Any, ...]],
    size: int,
    chain_hash: bytes,
    frontier: list[bytes],
    at: int,
    writes: Batch | None = None,
) -> None:
    """Store the records and Merkle nodes and move the head: now, or in the
    caller's `writes` when it sends them. The rows get no pk back; nothing
    refers to a record by pk (log_id + seq is its identity)."""
    connection = transaction.get_connection()
    send, writes = writes is None, writes or Batch()
    if len(rows) <= _PIPELINED_ROWS:
        writes.add(
            _values_sql(Record._meta.db_table, _RECORD_COLUMNS, len(rows)),
            [value for row in rows for value in row],
            independent=True,
        )
    else:
        copy_rows(Record, _RECORD_COLUMNS, rows)
    if nodes:
        writes.add(
            _values_sql(
                MerkleNode._meta.db_table, ("log_id", "level", '"index"', "hash"), len(nodes)
            ),
            [value for node in nodes for value in node],
            independent=True,
        )
    frontier_json = json.dumps([h.hex() for h in frontier])
    writes.add(
        _HEAD_UPDATE_SQL.replace("frontier = %s", "frontier = %s::jsonb")
        if connection.vendor == "postgresql"
        else _HEAD_UPDATE_SQL,
        [
            size,
            chain_hash,
            frontier_json,
            at,
            connection.ops.adapt_datetimefield_value(timezone.now()),
            head.pk,
        ],
        # The records, their nodes and the head: three tables, one statement.
        independent=True,
    )
    if send:
        writes.run()


def append(pending: Sequence[PendingRecord], *, log_name: str = DEFAULT_LOG) -> list[Appended]:
    """Append records under the log head lock. Caller owns the transaction."""
    return _append(pending, log_name, None, None)


@contextlib.contextmanager
def append_with(
    pending: Sequence[PendingRecord],
    *,
    log_name: str = DEFAULT_LOG,
    head: Head | None = None,
    commit: bool = False,
) -> Iterator[tuple[list[Appended], Batch]]:
    """Append records and send the caller's own writes with them, in one round
    trip: inside the block the records have their seqs, and what the caller
    adds to the batch goes out with the records on leaving it. On an error
    nothing is sent (and the caller's transaction rolls back). The log cannot
    be appended to again inside the block: its head moves only on leaving.
    `head`: the head this transaction already locked (`head_lock_statement`),
    not yet appended to; without it the head is locked here. `commit`: the
    block is the last thing the caller's transaction does, and its COMMIT may
    travel in the same round trip (`Batch.run`)."""
    connection = transaction.get_connection()
    writes = Batch()
    records = _append(pending, log_name, writes, head)
    connection.__dict__["_audit_unsent_append"] = True
    try:
        yield records, writes
    finally:
        connection.__dict__.pop("_audit_unsent_append", None)
    writes.run(commit=commit)


def _append(
    pending: Sequence[PendingRecord], log_name: str, writes: Batch | None, head: Head | None
) -> list[Appended]:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise AuditError("audit records must be appended inside the caller's transaction")
    if not pending:
        return []
    if head is None:
        head = lock_head(log_name)
    elif head.spent:
        raise AuditError("this head was appended to already: lock and read it again")
    head.spent = True
    recorded_at_us = max(now_us(), head.last_recorded_at_us)
    seq = head.size
    prev = bytes(head.chain_hash)
    frontier = [bytes.fromhex(h) for h in head.frontier]
    rows: list[tuple[Any, ...]] = []
    appended: list[Appended] = []
    nodes: list[tuple[Any, ...]] = []
    hash_leaf, chain_next = merkle.hash_leaf, merkle.chain_next
    log_id = head.pk
    for item in pending:
        body = item.body(seq, recorded_at_us)
        leaf = hash_leaf(body)
        prev = chain_next(prev, leaf)
        rows.append(
            (log_id, seq, recorded_at_us, item.event_type, item.actor.type, item.actor.id,
             item.agent_id, item.event_id, item.envelope_hash, body.decode("utf-8"), leaf, prev,
             False)
        )  # fmt: skip
        appended.append(Appended(seq, recorded_at_us, item.event_type, leaf, prev))
        frontier, completed = merkle.frontier_append(frontier, seq, leaf)
        nodes.extend(
            (log_id, level, index, h) for level, index, h in completed if level % TILE_LEVELS == 0
        )
        seq += 1
    _write(head, rows, nodes, seq, prev, frontier, recorded_at_us, writes)
    return appended
