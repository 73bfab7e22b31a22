"""The durable outbox (CONTRACT section 11): signed events in a local SQLite
file until the server has them.

Why a file and not memory: a bot must never lose an event it reported, even
when the server is down for hours or the bot's process is killed. So an event
is signed and committed here (SQLite WAL, fsync on commit) before the call
that reported it returns, and a sender delivers from here.

Tables:

* ``pending``: what is still to send, in the order it was written (``id``).
  The signed item is stored as the exact JSON text that goes on the wire, so a
  resend is byte for byte the same envelope and the server answers it as a
  ``duplicate`` with the original seq, never as a second record.
* ``delivered``: each event the server acknowledged, with its seq and leaf
  hash (what an inclusion proof needs later).
* ``dead_letters``: each event the server refused with a 4xx, with the code
  and detail it gave. Never retried, never dropped silently.
* ``meta``: the agent the file belongs to (one file, one agent).

An ``event_id`` is unique across the three tables: writing an event whose id
is already here (a venue fill seen twice, whose id derives from the venue's
trade id) is a no-op that reports ``duplicate``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .signing import WireItem

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    item TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS delivered (
    event_id TEXT PRIMARY KEY,
    event_type TEXT NOT NULL,
    seq INTEGER NOT NULL,
    leaf_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    delivered_us INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_type TEXT NOT NULL,
    item TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    code TEXT NOT NULL,
    detail TEXT NOT NULL,
    dead_us INTEGER NOT NULL
);
"""


class OutboxError(Exception):
    """The outbox file cannot be used (another agent's file, unreadable)."""


@dataclass(frozen=True)
class PendingRow:
    id: int
    event_id: str
    event_type: str
    item: str  # the wire JSON


def _now_us() -> int:
    return time.time_ns() // 1000


def connect(
    path: str | Path, *, durable: bool = True, readonly: bool = False
) -> sqlite3.Connection:
    """A connection in WAL mode. `durable`: fsync on every commit
    (synchronous=FULL), so a committed event survives a power cut, not only a
    killed process."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    else:
        conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Outbox:
    """One agent's outbox file. Thread-safe: callers write under one lock on
    one connection; the sender reads and settles on its own connection."""

    def __init__(self, path: str | Path, agent_id: str, *, durable: bool = True):
        self.path = Path(path)
        self.agent_id = agent_id
        self.durable = durable
        self._lock = threading.Lock()
        self._conn = connect(self.path, durable=durable)
        self._conn.executescript(SCHEMA)
        row = self._conn.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
        if row is None:
            self._conn.execute("INSERT INTO meta (key, value) VALUES ('agent_id', ?)", (agent_id,))
        elif row[0] != agent_id:
            self._conn.close()
            raise OutboxError(
                f"{self.path} belongs to agent {row[0]!r}, not {agent_id!r}: one outbox per agent"
            )

    # -- writing (any thread) -------------------------------------------------

    def put(self, items: Sequence[WireItem]) -> list[str]:
        """Commit signed items in one transaction (one fsync for all), in
        order; return "queued" or "duplicate" for each. Returns only once the
        transaction is durable."""
        now = _now_us()
        rows = [(item.event_id, item.event_type, item.text, now) for item in items]
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                # An id made here (a UUIDv7, `fresh`) is in no earlier event;
                # the others (given by the caller, or derived from a venue's
                # trade id) are looked up, here and earlier in this batch. The
                # UNIQUE index backs both.
                given = [item.event_id for item in items if not item.fresh]
                if given:
                    statuses, rows = self._new_rows(conn, items, rows, given)
                else:
                    statuses = ["queued"] * len(rows)
                conn.executemany(
                    "INSERT INTO pending (event_id, event_type, item, created_us) VALUES (?,?,?,?)",
                    rows,
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return statuses

    @classmethod
    def _new_rows(
        cls,
        conn: sqlite3.Connection,
        items: Sequence[WireItem],
        rows: list[tuple[Any, ...]],
        given: list[str],
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """("queued" or "duplicate" per item, the rows to insert)."""
        known = cls._known(conn, given)
        statuses, new_rows = [], []
        for item, row in zip(items, rows, strict=True):
            if item.event_id in known:
                statuses.append("duplicate")
            else:
                if not item.fresh:
                    known.add(item.event_id)
                new_rows.append(row)
                statuses.append("queued")
        return statuses, new_rows

    @staticmethod
    def _known(conn: sqlite3.Connection, event_ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for table in ("pending", "delivered", "dead_letters"):
                found.update(
                    r[0]
                    for r in conn.execute(
                        f"SELECT event_id FROM {table} WHERE event_id IN ({marks})",  # noqa: S608
                        chunk,
                    )
                )
        return found

    # -- reading --------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM pending").fetchone()[0])

    def dead_letters(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT event_id, event_type, http_status, code, detail, dead_us, item"
                " FROM dead_letters ORDER BY id"
            ).fetchall()
        return [
            {
                "event_id": r[0],
                "event_type": r[1],
                "http_status": r[2],
                "code": r[3],
                "detail": r[4],
                "dead_at_us": r[5],
                "item": json.loads(r[6]),
            }
            for r in rows
        ]

    def receipt(self, event_id: str) -> dict[str, Any] | None:
        """The server's acknowledgement of a delivered event (seq, leaf_hash)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT event_id, event_type, seq, leaf_hash, status, delivered_us"
                " FROM delivered WHERE event_id = ?",
                (event_id,),
            ).fetchone()
        if row is None:
            return None
        keys = ("event_id", "event_type", "seq", "leaf_hash", "status", "delivered_at_us")
        return dict(zip(keys, row, strict=True))

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class SenderStore:
    """The sender thread's side of the outbox: its own connection."""

    def __init__(self, path: str | Path, *, durable: bool = True):
        self._conn = connect(path, durable=durable)

    def head(self, limit: int, *, after: int | None = None) -> list[PendingRow]:
        """The first `limit` pending rows in the order they were written;
        `after`: those written after the row with that id (the next batch
        while the one before it is still in flight)."""
        rows = self._conn.execute(
            "SELECT id, event_id, event_type, item FROM pending WHERE id > ? ORDER BY id LIMIT ?",
            (-1 if after is None else after, limit),
        ).fetchall()
        return [PendingRow(*r) for r in rows]

    def settle(
        self,
        delivered: Iterable[tuple[PendingRow, dict[str, Any]]] = (),
        dead: Iterable[tuple[PendingRow, int, str, str]] = (),
        failed: Iterable[PendingRow] = (),
        error: str | None = None,
    ) -> None:
        """In one transaction: move acknowledged rows to `delivered`, refused
        rows to `dead_letters` (with status, code, detail), and count an
        attempt on rows that stay pending."""
        now = _now_us()
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = [(row, result) for row, result in delivered]
            conn.executemany(
                "INSERT OR REPLACE INTO delivered"
                " (event_id, event_type, seq, leaf_hash, status, delivered_us)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (row.event_id, row.event_type, r["seq"], r["leaf_hash"], r["status"], now)
                    for row, r in done
                ],
            )
            refused = list(dead)
            conn.executemany(
                "INSERT OR REPLACE INTO dead_letters"
                " (event_id, event_type, item, http_status, code, detail, dead_us)"
                " VALUES (?,?,?,?,?,?,?)",
                [
                    (row.event_id, row.event_type, row.item, status, code, detail, now)
                    for row, status, code, detail in refused
                ],
            )
            conn.executemany(
                "DELETE FROM pending WHERE id = ?",
                [(row.id,) for row, _ in done] + [(row.id,) for row, *_ in refused],
            )
            conn.executemany(
                "UPDATE pending SET attempts = attempts + 1, last_error = ? WHERE id = ?",
                [(error, row.id) for row in failed],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._conn.close()


def inspect(path: str | Path) -> dict[str, Any]:
    """Counts for the CLI (`python -m compliance_client outbox PATH`), read-only."""
    conn = connect(path, readonly=True)
    try:
        agent = conn.execute("SELECT value FROM meta WHERE key = 'agent_id'").fetchone()
        pending, oldest = conn.execute("SELECT count(*), min(created_us) FROM pending").fetchone()
        delivered = conn.execute("SELECT count(*) FROM delivered").fetchone()[0]
        dead = conn.execute(
            "SELECT event_id, event_type, http_status, code, detail FROM dead_letters ORDER BY id"
        ).fetchall()
        last_error = conn.execute(
            "SELECT last_error FROM pending WHERE last_error IS NOT NULL ORDER BY id LIMIT 1"
        ).fetchone()
    except sqlite3.DatabaseError as exc:
        raise OutboxError(f"{path}: not an outbox ({exc})") from exc
    finally:
        conn.close()
    return {
        "agent_id": agent[0] if agent else None,
        "pending": int(pending),
        "oldest_pending_us": oldest,
        "delivered": int(delivered),
        "dead_letters": len(dead),
        "dead": [
            dict(zip(("event_id", "event_type", "http_status", "code", "detail"), d, strict=True))
            for d in dead
        ],
        "last_error": last_error[0] if last_error else None,
    }
