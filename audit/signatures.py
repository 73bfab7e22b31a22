"""Ed25519 verification of a batch on every core the process may use.

A 500-event batch spends about half its server time verifying signatures
(~100 us each with OpenSSL on this class of machine). cryptography releases
the GIL while OpenSSL verifies, so helper threads verify chunks of the batch
while the request's thread goes on with the next items' Python checks (JCS,
schema) and, at the end, verifies whatever no helper has started yet.

    verifier = BatchVerifier()
    verifier.add(index, public_key, signature, message)   # per item, in any order
    bad = verifier.invalid()                              # waits; indexes that fail

Small batches (the gate's single order) are verified on the caller's thread:
handing them over would cost more than it saves. The helper threads are
per process (made on first use, again after a fork), daemon threads that
only ever run `_verify_chunk`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

CHUNK = 32  # signatures per hand-over: ~3 ms of work against ~20 us of overhead
MAX_HELPERS = 3


class _Item(NamedTuple):
    at: int  # the item's index in the batch
    public: Ed25519PublicKey
    signature: bytes
    message: bytes


def _verify_chunk(chunk: list[_Item]) -> list[int]:
    """The indexes in `chunk` whose signature does not verify."""
    bad = []
    for item in chunk:
        try:
            item.public.verify(item.signature, item.message)
        except InvalidSignature:
            bad.append(item.at)
    return bad


def helper_count() -> int:
    """Threads beside the caller's: one fewer than the CPUs this process may
    run on (none on one CPU), at most MAX_HELPERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(MAX_HELPERS, cpus - 1))


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


os.register_at_fork(after_in_child=_forget_pool)


class BatchVerifier:
    """Collects (index, key, signature, message) and verifies them, on helper
    threads once a batch is big enough to be worth it."""

    def __init__(self) -> None:
        self._chunk: list[_Item] = []
        self._handed: list[tuple[Future[list[int]], list[_Item]]] = []
        self._pool = _helpers()

    def add(self, index: int, public: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
        self._chunk.append(_Item(index, public, signature, message))
        if len(self._chunk) == CHUNK and self._pool is not None:
            self._handed.append((self._pool.submit(_verify_chunk, self._chunk), self._chunk))
            self._chunk = []

    def invalid(self) -> set[int]:
        """Every added index whose signature fails. Verifies on this thread
        what is not handed over, and what no helper has started yet."""
        bad = set(_verify_chunk(self._chunk))
        self._chunk = []
        waiting = []
        for future, chunk in reversed(self._handed):  # the helpers start from the front
            if future.cancel():
                bad.update(_verify_chunk(chunk))
            else:
                waiting.append(future)
        self._handed = []
        for future in waiting:
            bad.update(future.result())
        return bad
