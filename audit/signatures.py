"""Ed25519 verification of a batch, helped by idle cores.

A 500-event batch spends about half its server time verifying signatures
(~100 us each with OpenSSL on this class of machine). cryptography releases
the GIL while OpenSSL verifies, so helper threads can verify items of the
batch while the request's thread goes on with the next items' Python checks
(JCS, schema) and, at the end, verifies whatever the helpers have not.

    verifier = BatchVerifier()
    verifier.add(index, public_key, signature, message)   # per item, in order
    bad = verifier.invalid()                              # indexes that fail

The helpers only ever help, and never hold the request up:

* The request's thread never waits for a helper. At the end it takes every
  item no helper has started and verifies it, and verifies again any item a
  helper started but has not finished (at most one per helper): a second
  verification of one signature, instead of a wait.
* Helpers run at a lower CPU priority (nice +10). On a busy machine (every
  worker verifying, or the log head lock's holder needing the CPU) they get
  what is left over, and the request's thread does the work as it did alone.
  On a machine with an idle core, a 500-event batch is verified in about
  half the time.

Small batches (the gate's single order) are verified on the caller's thread:
handing them over would cost more than it saves. The helper threads belong to
the process (made on first use, again after a fork) and only ever run
`_help`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HAND_OVER_EVERY = 16  # items added between two calls for help (~1.6 ms of verifying)
MAX_HELPERS = 3
HELPER_NICE = 10


class _Item(NamedTuple):
    at: int  # the item's position in the verifier (results[at])
    caller_index: int
    public: Ed25519PublicKey
    signature: bytes
    message: bytes


def _valid(item: _Item) -> bool:
    try:
        item.public.verify(item.signature, item.message)
    except InvalidSignature:
        return False
    return True


def helper_count() -> int:
    """Threads beside the caller's: one fewer than the CPUs this process may
    run on (none on one CPU), at most MAX_HELPERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_HELPERS, cpus - 1))


def _lower_priority() -> None:
    """HELPER_NICE below the thread that made it (Linux gives each thread a
    nice value of its own: setpriority on its thread id). Where that is not
    possible the helpers help at equal priority."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + HELPER_NICE)
        )


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _helpers() -> ThreadPoolExecutor | None:
    global _pool
    if _pool is None:
        count = helper_count()
        if count == 0:
            return None
        with _pool_lock:
            if _pool is None:
                _pool = ThreadPoolExecutor(
                    count, thread_name_prefix="ed25519", initializer=_lower_priority
                )
    return _pool


def _forget_pool() -> None:
    # A forked child (a gunicorn worker forked from a preloaded master) has
    # the pool object but none of its threads: it makes its own.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool)


class BatchVerifier:
    """Collects (index, key, signature, message) and verifies them, with the
    help of the process's helper threads once a batch is big enough."""

    def __init__(self) -> None:
        self._items: list[_Item] = []
        self._results: list[bool | None] = []  # per item; written by whoever verified it
        self._todo: deque[_Item] = deque()  # not started by anyone
        self._pool = _helpers()

    def add(self, index: int, public: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
        item = _Item(len(self._items), index, public, signature, message)
        self._items.append(item)
        self._results.append(None)
        self._todo.append(item)
        if self._pool is not None and len(self._items) % HAND_OVER_EVERY == 0:
            self._pool.submit(self._help)

    def _help(self) -> None:
        """A helper's turn: verify items nobody has started, until none is
        left. deque.popleft is atomic: each item is started once."""
        todo, results = self._todo, self._results
        while True:
            try:
                item = todo.popleft()
            except IndexError:
                return
            results[item.at] = _valid(item)

    def invalid(self) -> set[int]:
        """Every added index whose signature fails. Never waits for a helper."""
        todo, results = self._todo, self._results
        while True:  # what no helper has started
            try:
                item = todo.popleft()
            except IndexError:
                break
            results[item.at] = _valid(item)
        bad = set()
        for item in self._items:
            valid = results[item.at]
            if valid is None:  # a helper is on it right now: verify it here too
                valid = _valid(item)
            if not valid:
                bad.add(item.caller_index)
        self._items, self._results = [], []
        return bad
