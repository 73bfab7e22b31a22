"""The outbox's sender: a background thread that delivers pending events in
batches, in the order they were written.

What happens to a batch, by the server's answer:

* 201: every event is delivered (``created``, or ``duplicate`` when an
  earlier attempt reached the server but its answer was lost); each moves to
  ``delivered`` with its seq and leaf hash.
* 400 with per-item errors: nothing was stored (batches are all or nothing);
  the listed items go to the dead letters with their code, the rest are sent
  again at once, still in order.
* 409 ``event_id_conflict`` (same id, other content): that item goes to the
  dead letters.
* any other 4xx about the content (no item named): the batch is resent one
  event at a time, so the refusal lands on the event that caused it.
* 401, 403: the key or the agent is refused, not the event: everything stays
  pending (a dead letter would lose the whole outbox to a bad API key); the
  sender backs off and `last_error` says why.
* 408, 429, 5xx, no connection: back off (exponential, capped, with jitter,
  honouring Retry-After) and resend the same batch.

One batch is in flight at a time, so the events reach the server in order.
While the server works on it, the sender does its own bookkeeping: it
settles the batch before (acknowledged, not yet recorded as delivered) and
reads the one after. A process that dies with a settle still owed sends
those events again, and the server answers them as duplicates.
"""

from __future__ import annotations

import contextlib
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .http import Http, retry_after
from .outbox import PendingRow, SenderStore

MAX_BATCH = 500
_NOT_THE_EVENT = {401, 403, 407}
_RETRY = {408, 425, 429}


class Sender:
    def __init__(
        self,
        path: str | Path,
        make_http: Callable[[], Http],
        *,
        batch_size: int = MAX_BATCH,
        backoff: float = 0.2,
        max_backoff: float = 30.0,
        on_delivered: Callable[[int], None] | None = None,
    ):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
        self._path = path
        self._make_http = make_http
        self.batch_size = batch_size
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._on_delivered = on_delivered
        self._wake = threading.Condition()
        self._stop = False
        self._kicked = False
        self._single = 0  # rows left to send one at a time (finding a refused event)
        # The last batch the server acknowledged, not yet recorded as delivered.
        self._owed: list[tuple[PendingRow, dict[str, Any]]] | None = None
        self.last_error: str | None = None
        self.delivered = 0
        # Where the sender's time goes (seconds): reading the outbox, waiting
        # for the server, settling the answer (reading and settling mostly
        # while a request is in flight). bench/sdk.py reports them.
        self.timings = {"read": 0.0, "request": 0.0, "settle": 0.0}
        self._thread = threading.Thread(target=self._run, name="compliance-outbox", daemon=True)
        self._thread.start()

    # -- control (other threads) ---------------------------------------------

    def notify(self) -> None:
        with self._wake:
            self._kicked = True
            self._wake.notify()

    def stop(self, timeout: float = 10.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the thread ------------------------------------------------------------

    def _run(self) -> None:
        # Settling needs no fsync of its own: a settle lost to a power cut only
        # means those events are sent again, and the server answers `duplicate`.
        store = SenderStore(self._path, durable=False)
        http = self._make_http()
        failures = 0
        rows: list[PendingRow] | None = None  # the next batch, when already read
        try:
            while not self._stop:
                with self._wake:
                    self._kicked = False
                try:
                    if rows is None:
                        self._settle_owed(store)  # before reading: those rows are delivered
                        started = time.perf_counter()
                        rows = store.head(1 if self._single else self.batch_size)
                        self.timings["read"] += time.perf_counter() - started
                    if not rows:
                        rows = None
                        with self._wake:
                            if not self._stop and not self._kicked:
                                self._wake.wait(1.0)
                        continue
                    delay, rows = self._deliver(store, http, rows)
                except sqlite3.Error as exc:  # the file is locked or full: try again later
                    self.last_error = f"outbox: {exc}"
                    delay, rows = 0.0, None
                if delay is None:
                    failures = 0
                    continue
                failures += 1
                pause = min(self.max_backoff, delay or self.backoff * 2 ** min(failures, 16))
                pause *= 0.5 + random.random()
                with self._wake:
                    if not self._stop:
                        self._wake.wait(pause)
        finally:
            # On an error those events are sent again and answered as duplicates.
            with contextlib.suppress(sqlite3.Error):
                self._settle_owed(store)
            http.close()
            store.close()

    def _settle_owed(self, store: SenderStore) -> None:
        """Record the last acknowledged batch as delivered, if not done yet."""
        owed = self._owed
        if owed is None:
            return
        started = time.perf_counter()
        store.settle(delivered=owed)
        self._owed = None
        self.timings["settle"] += time.perf_counter() - started
        self._done(len(owed))

    def _deliver(
        self, store: SenderStore, http: Http, rows: list[PendingRow]
    ) -> tuple[float | None, list[PendingRow] | None]:
        """Send one batch and settle it. (None, the next batch if it was read
        meanwhile) when it went through or was settled; otherwise (seconds to
        wait, 0 for the default backoff; None)."""
        body = ('{"events":[' + ",".join(r.item for r in rows) + "]}").encode()
        started = time.perf_counter()
        try:
            http.start("POST", "/api/v1/events/", body)
            ahead = self._meanwhile(store, rows)
            status, headers, data = http.finish()
        except OSError as exc:
            self._fail(store, rows, f"connection: {exc}")
            return 0.0, None
        except Exception as exc:  # http.client.HTTPException and friends
            self._fail(store, rows, f"transport: {exc!r}")
            return 0.0, None
        finally:
            self.timings["request"] += time.perf_counter() - started
        if status == 201 and isinstance(data, dict) and isinstance(data.get("results"), list):
            self._owed = list(zip(rows, data["results"], strict=True))
            return None, ahead
        self._settle_owed(store)
        detail = _detail(data)
        if status >= 500 or status in _RETRY:
            self._fail(store, rows, f"HTTP {status}: {detail}")
            return retry_after(headers, 0.0), None
        if status in _NOT_THE_EVENT:
            self._fail(store, rows, f"HTTP {status}: {detail} (the key or agent is refused)")
            return max(5.0, retry_after(headers, 0.0)), None
        # 4xx about the content.
        self.last_error = f"HTTP {status}: {detail}"
        named = _named_items(status, data, len(rows))
        if named:
            store.settle(dead=[(rows[i], status, code, text) for i, (code, text) in named.items()])
            self._single = max(0, self._single - len(named)) if self._single else 0
            return None, None
        if len(rows) > 1:
            self._single = len(rows)
            return None, None
        code = str(data.get("code")) if isinstance(data, dict) and data.get("code") else "refused"
        store.settle(dead=[(rows[0], status, code, detail)])
        self._single = max(0, self._single - 1)
        return None, None

    def _meanwhile(self, store: SenderStore, rows: list[PendingRow]) -> list[PendingRow] | None:
        """While the server works on `rows`: settle the batch before them and
        read the batch after them. None when one at a time, when nothing is
        after them yet (an event written meanwhile must not wait for the next
        wake-up), or on an outbox error: the next batch is then read once this
        one is settled."""
        try:
            self._settle_owed(store)
            if self._single:
                return None
            started = time.perf_counter()
            ahead = store.head(self.batch_size, after=rows[-1].id)
            self.timings["read"] += time.perf_counter() - started
            return ahead or None
        except sqlite3.Error as exc:  # the answer is read all the same
            self.last_error = f"outbox: {exc}"
            return None

    def _fail(self, store: SenderStore, rows: list[PendingRow], error: str) -> None:
        self.last_error = error
        store.settle(failed=rows, error=error)

    def _done(self, count: int) -> None:
        self.last_error = None
        self.delivered += count
        if self._single:
            self._single = max(0, self._single - count)
        if self._on_delivered is not None:
            self._on_delivered(count)


def _detail(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("detail") or data.get("code") or data)[:2000]
    return str(data)[:2000]


def _named_items(status: int, data: Any, size: int) -> dict[int, tuple[str, str]]:
    """{index: (code, detail)} for the items a refusal names."""
    if not isinstance(data, dict):
        return {}
    named: dict[int, tuple[str, str]] = {}
    errors = data.get("errors")
    if status == 400 and isinstance(errors, list):
        for e in errors:
            if isinstance(e, dict) and isinstance(e.get("index"), int) and 0 <= e["index"] < size:
                named.setdefault(e["index"], (str(e.get("code")), str(e.get("detail", ""))))
    elif status == 409 and isinstance(data.get("index"), int) and 0 <= data["index"] < size:
        named[data["index"]] = (str(data.get("code", "event_id_conflict")), _detail(data))
    return named
