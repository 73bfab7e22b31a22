"""Ed25519 verification of a batch, helped by idle cores.

A 500-event batch spends about half its server time verifying signatures
(~100 us each with OpenSSL on this class of machine). cryptography releases
the GIL while OpenSSL verifies, so a helper thread can verify items of the
batch while the request's thread goes on with the next items' Python checks
(JCS, schema) and, at the end, verifies whatever the helpers have not.

    verifier = BatchVerifier()
    verifier.add(index, public_key, signature, message)   # per item, in order
    bad = verifier.invalid()                              # indexes that fail

Helpers only take CPU that would otherwise idle, and never hold a request up:

* Help is asked for a few items at a time, and only while a core is idle:
  fewer threads are runnable than there are CPUs (/proc/loadavg's count, read
  in about a microsecond). On a busy machine (every web worker verifying,
  PostgreSQL working) the request's thread verifies alone, as it would
  without helpers: helpers there only took CPU from the log head lock's
  holder (the 4-client batch benchmark lost a tenth with them).
* The request's thread never waits for a helper. At the end it takes every
  item no helper has started, and verifies again any item a helper started
  but has not finished (at most one per helper): a second verification of one
  signature instead of a wait.

Small batches (the gate's single order) are verified on the caller's thread.
The helper threads belong to the process (made on first use, again after a
fork) and only ever run `BatchVerifier._help`.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HAND_OVER_EVERY = 16  # items added between two asks for help; each ask is for that many
MAX_HELPERS = 3


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


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def helper_count() -> int:
    """Threads beside the caller's: one fewer than the CPUs this process may
    run on (none on one CPU), at most MAX_HELPERS."""
    return max(0, min(MAX_HELPERS, _cpus() - 1))


def _runnable_threads() -> int | None:
    """Threads runnable on the machine now, the caller included (the fourth
    field of /proc/loadavg), or None where that cannot be read."""
    global _loadavg
    try:
        if _loadavg is None:
            _loadavg = os.open("/proc/loadavg", os.O_RDONLY)
        return int(os.pread(_loadavg, 128, 0).split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


_loadavg: int | None = None


_busy_helpers: set[int] = set()  # idents of this process's helpers now verifying


def core_idle() -> bool:
    """Whether another helper would run on a core that is idle now: fewer
    threads runnable, this process's busy helpers not counted, than CPUs.
    Where the count cannot be read, helpers help."""
    runnable = _runnable_threads()
    return runnable is None or runnable - len(_busy_helpers) < _cpus()


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
                _pool = ThreadPoolExecutor(count, thread_name_prefix="ed25519")
    return _pool


def _forget_pool() -> None:
    # A forked child (a gunicorn worker forked from a preloaded master) has
    # the pool object but none of its threads: it makes its own.
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()
    _busy_helpers.clear()


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
        if self._pool is not None and len(self._items) % HAND_OVER_EVERY == 0 and core_idle():
            self._pool.submit(self._help, HAND_OVER_EVERY)

    def _help(self, count: int) -> None:
        """A helper's turn: verify up to `count` items nobody has started.
        deque.popleft is atomic: each item is started once."""
        todo, results = self._todo, self._results
        me = threading.get_ident()
        _busy_helpers.add(me)
        try:
            for _ in range(count):
                try:
                    item = todo.popleft()
                except IndexError:
                    return
                results[item.at] = _valid(item)
        finally:
            _busy_helpers.discard(me)

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
