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

import functools
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.db import transaction

from compliance_client import merkle
from compliance_client.jcs import canonicalize

from .. import store
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


class LogClaim:
    """Audit's one call for another app's unit of work: append records in the
    caller's own round trips, under its locks. `LogClaim.queue(reads)` adds the
    head's lock and read to the caller's reads (the gate: with its firm lock and
    snapshot); once they ran, `append(pending, writes)` numbers and hashes the
    records and adds their writes (records, Merkle nodes, the head's move) to
    the caller's batch of writes, to go out with the caller's own. Nothing of
    the log can be appended to on this connection until that batch is sent:
    the head moves only then."""

    def __init__(self, reads: store.Batch, log_name: str) -> None:
        _unsent.pop(transaction.get_connection(), None)  # left by a unit that failed
        self._reads = reads
        self._at = store.queue_head_lock(reads, log_name)
        self.log_name = log_name
        self._head: store.Head | None = None

    @classmethod
    def queue(cls, reads: store.Batch, *, log_name: str = DEFAULT_LOG) -> LogClaim:
        return cls(reads, log_name)

    def append(self, pending: Sequence[PendingRecord], writes: store.Batch) -> list[Appended]:
        """The records appended (seqs, hashes); their rows go out with `writes`.
        Once per claim: a second append on the same head would fork the chain."""
        if self._head is None:
            # The reads ran (or the caller's transaction has no such log yet).
            read = store.head_of(self._reads.results.get(self._at))
            self._head = read if read is not None else _lock_head(self.log_name)
        appended = _append(pending, self.log_name, writes, self._head)
        connection = transaction.get_connection()
        _unsent[connection] = (writes, connection.atomic_blocks[-1])
        return appended


# Per connection, the caller's batch that holds an append not sent yet, and
# the atomic block it was made in: until that batch is sent, the head in the
# database has not moved, so no other append inside that block may read it.
# (A block that rolled back before sending it leaves the entry behind; the
# block is no longer open then.)
_unsent: weakref.WeakKeyDictionary[Any, tuple[store.Batch, Any]] = weakref.WeakKeyDictionary()


def _lock_head(log_name: str) -> store.Head:
    connection = transaction.get_connection()
    writes, block = _unsent.get(connection, (None, None))
    if (
        writes is not None
        and writes.statements
        and any(b is block for b in connection.atomic_blocks)
    ):
        raise AuditError(
            "the log head is read while a LogClaim's append is not sent yet: send its batch first"
        )
    return store.lock_head(log_name)


def lock_head(log_name: str = DEFAULT_LOG) -> store.Head:
    """Lock the log head until the caller's transaction ends (lock order: after
    the firm row, before order and market rows) and read it."""
    return _lock_head(log_name)


def append(pending: Sequence[PendingRecord], *, log_name: str = DEFAULT_LOG) -> list[Appended]:
    """Append records under the log head lock. Caller owns the transaction."""
    return _append(pending, log_name, None, None)


def _append(
    pending: Sequence[PendingRecord],
    log_name: str,
    writes: store.Batch | None,
    head: store.Head | None,
) -> list[Appended]:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        raise AuditError("audit records must be appended inside the caller's transaction")
    if not pending:
        return []
    if head is None:
        head = _lock_head(log_name)
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
    store.write_append(
        store.AppendPlan(log_id, rows, nodes, seq, prev, frontier, recorded_at_us), writes
    )
    return appended
