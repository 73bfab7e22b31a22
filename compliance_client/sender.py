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
"""

from __future__ import annotations

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
        self.last_error: str | None = None
        self.delivered = 0
        # Where the sender's time goes (seconds): reading the outbox, waiting
        # for the server, settling the answer. bench/sdk.py reports them.
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
        try:
            while not self._stop:
                with self._wake:
                    self._kicked = False
                started = time.perf_counter()
                rows = store.head(1 if self._single else self.batch_size)
                self.timings["read"] += time.perf_counter() - started
                if not rows:
                    with self._wake:
                        if not self._stop and not self._kicked:
                            self._wake.wait(1.0)
                    continue
                try:
                    delay = self._deliver(store, http, rows)
                except sqlite3.Error as exc:  # the file is locked or full: try again later
                    self.last_error = f"outbox: {exc}"
                    delay = 0.0
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
            http.close()
            store.close()

    def _deliver(self, store: SenderStore, http: Http, rows: list[PendingRow]) -> float | None:
        """Send one batch and settle it. None when it went through (or was
        settled); otherwise seconds to wait (0: the default backoff)."""
        body = ('{"events":[' + ",".join(r.item for r in rows) + "]}").encode()
        started = time.perf_counter()
        try:
            status, headers, data = http.send("POST", "/api/v1/events/", body)
        except OSError as exc:
            self._fail(store, rows, f"connection: {exc}")
            return 0.0
        except Exception as exc:  # http.client.HTTPException and friends
            self._fail(store, rows, f"transport: {exc!r}")
            return 0.0
        finally:
            settling = time.perf_counter()
            self.timings["request"] += settling - started
        if status == 201 and isinstance(data, dict) and isinstance(data.get("results"), list):
            results = data["results"]
            store.settle(delivered=list(zip(rows, results, strict=True)))
            self.timings["settle"] += time.perf_counter() - settling
            self._done(len(rows))
            return None
        detail = _detail(data)
        if status >= 500 or status in _RETRY:
            self._fail(store, rows, f"HTTP {status}: {detail}")
            return retry_after(headers, 0.0)
        if status in _NOT_THE_EVENT:
            self._fail(store, rows, f"HTTP {status}: {detail} (the key or agent is refused)")
            return max(5.0, retry_after(headers, 0.0))
        # 4xx about the content.
        self.last_error = f"HTTP {status}: {detail}"
        named = _named_items(status, data, len(rows))
        if named:
            store.settle(dead=[(rows[i], status, code, text) for i, (code, text) in named.items()])
            self._single = max(0, self._single - len(named)) if self._single else 0
            return None
        if len(rows) > 1:
            self._single = len(rows)
            return None
        code = str(data.get("code")) if isinstance(data, dict) and data.get("code") else "refused"
        store.settle(dead=[(rows[0], status, code, detail)])
        self._single = max(0, self._single - 1)
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
