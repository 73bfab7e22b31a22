"""The bot's client (CONTRACT section 11). No Django.

Orders go to the gate now (`submit_order`): the answer is needed before the
bot may send the order to a venue, so they are never queued. Everything else
a bot reports (fills, cancels, custom events, venue events) is signed once
and then either sent now, or, with `outbox_path`, committed to a local SQLite
outbox before the call returns and delivered by a background sender (see
`compliance_client.outbox` and `compliance_client.sender`).

Every request is safe to retry: an envelope keeps its event_id across
retries, so the server answers a resend with the original result
(`duplicate`) instead of recording it twice. Without an outbox, transport
errors and 5xx answers are retried with exponential backoff and 4xx answers
are raised as `ComplianceError` at once.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .http import ComplianceError, Http, retry_after
from .outbox import Outbox
from .sender import MAX_BATCH, Sender
from .signing import Prepared, Signer, WireItem

if TYPE_CHECKING:
    from .gate import Gate
    from .proofs import InclusionCheck
    from .venues import VenueEvent

__all__ = ["MAX_BATCH", "ComplianceClient", "ComplianceError", "Decision"]

# Namespace for event_ids derived from a venue event's dedup_key (UUIDv5).
VENUE_NAMESPACE = uuid.UUID("8f1d9a4e-3c1b-5e7a-9a55-6b0c1f2d3e4a")


@dataclass
class Decision:
    """The gate's answer (CONTRACT section 7), with any field the server adds
    (`cancel_orders`, ...) kept in `extra`."""

    decision: str
    order_id: str
    status: str
    reasons: list[dict[str, Any]]
    seq: int | None
    config_hash: str | None
    approval: dict[str, Any] | None
    cancel_all: bool
    # Orders of this agent a person asked to cancel (CONTRACT 12), until it reports the cancel.
    cancel_orders: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return self.decision == "accepted"

    @property
    def held(self) -> bool:
        return self.decision == "held"

    @classmethod
    def from_response(cls, data: dict[str, Any]) -> Decision:
        known = {
            "decision", "order_id", "status", "reasons", "seq", "config_hash",
            "approval", "cancel_all", "cancel_orders",
        }  # fmt: skip
        return cls(
            decision=str(data["decision"]),
            order_id=str(data["order_id"]),
            status=str(data.get("status", "")),
            reasons=list(data.get("reasons") or []),
            seq=data.get("seq"),
            config_hash=data.get("config_hash"),
            approval=data.get("approval"),
            cancel_all=bool(data.get("cancel_all", False)),
            cancel_orders=[str(o) for o in data.get("cancel_orders") or []],
            extra={k: v for k, v in data.items() if k not in known},
        )


class ComplianceClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        signer: Signer,
        *,
        outbox_path: str | Path | None = None,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.2,
        durable: bool = True,
        batch_size: int = MAX_BATCH,
    ):
        self.base_url = base_url
        self.signer = signer
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._api_key = api_key
        self._http = Http(base_url, api_key, timeout=timeout)
        self._http_lock = threading.Lock()
        self._batch: list[Prepared] | None = None
        self._batch_owner: int | None = None
        self.outbox: Outbox | None = None
        self.sender: Sender | None = None
        if outbox_path is not None:
            self.outbox = Outbox(outbox_path, signer.agent_id, durable=durable)
            self.sender = Sender(
                outbox_path,
                self._new_http,
                batch_size=batch_size,
                backoff=backoff,
            )

    def _new_http(self) -> Http:
        return Http(self.base_url, self._api_key, timeout=self.timeout)

    # -- transport ----------------------------------------------------------------

    def request(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None) -> Any:
        """One API call with retries on transport errors, 429 and 5xx. `raw`:
        a body already encoded."""
        payload = raw
        if body is not None:
            payload = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            wait = self.backoff * (2**attempt) * (0.5 + random.random())
            try:
                with self._http_lock:
                    status, headers, data = self._http.send(method, path, payload)
            except OSError:
                if attempt == self.retries:
                    raise
            else:
                if status < 400:
                    return data
                if status < 500 and status != 429:
                    raise ComplianceError(status, data)
                if attempt == self.retries:
                    raise ComplianceError(status, data)
                wait = max(wait, min(retry_after(headers, 0.0), 30.0))
            time.sleep(wait)
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Stop the sender (what is pending stays in the outbox for the next
        client) and close connections. Call `flush()` first to deliver."""
        if self.sender is not None:
            self.sender.stop()
        if self.outbox is not None:
            self.outbox.close()
        with self._http_lock:
            self._http.close()

    def __enter__(self) -> ComplianceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the gate -------------------------------------------------------------------

    def submit_order(
        self,
        *,
        order_id: str,
        market: str,
        side: str,
        quantity: str,
        price: str,
        order_type: str = "limit",
        venue: str | None = None,
    ) -> Decision:
        """Ask the gate now. Quantities and prices are decimal strings."""
        payload: dict[str, Any] = {
            "order_id": order_id,
            "market": market,
            "side": side,
            "quantity": quantity,
            "price": price,
            "order_type": order_type,
        }
        if venue:
            payload["venue"] = venue
        item = self.signer.item("ORDER_SUBMITTED", payload)
        return Decision.from_response(self.request("POST", "/api/v1/orders/", item))

    def amend_order(
        self, *, order_id: str, quantity: str | None = None, price: str | None = None
    ) -> Decision:
        payload: dict[str, Any] = {"order_id": order_id}
        if quantity is not None:
            payload["quantity"] = quantity
        if price is not None:
            payload["price"] = price
        item = self.signer.item("ORDER_AMENDED", payload)
        return Decision.from_response(self.request("POST", "/api/v1/orders/", item))

    def order(self, order_id: str) -> dict[str, Any]:
        """Read back one of this bot's orders (its status, fills, approval)."""
        return dict(self.request("GET", f"/api/v1/orders/{urllib.parse.quote(order_id, safe='')}/"))

    def approval(self, approval_id: int) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v1/approvals/{int(approval_id)}/"))

    def wait_for_approval(
        self, order_id: str, *, timeout: float = 300.0, poll: float = 1.0
    ) -> Decision:
        """Block until a held order is decided (or `timeout` passes: then
        TimeoutError). For strategy loops that must not block, use `gate()`."""
        from .gate import decision_for_order

        deadline = time.monotonic() + timeout
        while True:
            decided = decision_for_order(lambda path: self.request("GET", path), order_id)
            if decided is not None:
                return decided
            if time.monotonic() >= deadline:
                raise TimeoutError(f"order {order_id!r} still pending approval after {timeout}s")
            time.sleep(poll)

    def gate(self, *, poll_interval: float = 0.5) -> Gate:
        """A gate for strategy loops: `check()` answers now and parks held
        orders; `ready()` returns them once decided (see compliance_client.gate)."""
        from .gate import Gate

        return Gate(self, poll_interval=poll_interval)

    # -- reporting events -----------------------------------------------------------

    def fill(
        self,
        *,
        order_id: str,
        fill_id: str,
        quantity: str,
        price: str,
        venue: str | None = None,
    ) -> dict[str, Any]:
        payload = {"order_id": order_id, "fill_id": fill_id, "quantity": quantity, "price": price}
        if venue:
            payload["venue"] = venue
        return self.record("ORDER_FILLED", payload)

    def cancel(self, *, order_id: str, reason: str) -> dict[str, Any]:
        return self.record("ORDER_CANCELED", {"order_id": order_id, "reason": reason})

    def venue_rejected(
        self,
        *,
        order_id: str,
        reason: str,
        venue: str | None = None,
        venue_code: str | None = None,
    ) -> dict[str, Any]:
        """The venue refused an order the gate accepted (CONTRACT 12): the server
        marks it rejected and releases its reserved exposure."""
        payload = {"order_id": order_id, "reason": reason}
        if venue is not None:
            payload["venue"] = venue
        if venue_code is not None:
            payload["venue_code"] = venue_code
        return self.record("VENUE_REJECTED", payload)

    def record(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        event_id: str | None = None,
        occurred_at_us: int | None = None,
    ) -> dict[str, Any]:
        """Sign and report one event. With an outbox: returns once it is
        durable on disk ({"event_id", "status": "queued"|"duplicate"}); inside
        `batch()`, once the batch is committed. Without: sends it now and
        returns the server's result ({"event_id", "seq", "leaf_hash", "status"})."""
        prepared = self.signer.prepare(
            event_type, payload, event_id=event_id, occurred_at_us=occurred_at_us
        )
        if self._batch is not None and self._batch_owner == threading.get_ident():
            # Signed when the batch ends, all together (see Signer.seal).
            self._batch.append(prepared)
            return {"event_id": prepared.event_id, "status": "batched"}
        return self._report(self.signer.seal([prepared]))[0]

    def record_venue(self, events: Iterable[VenueEvent]) -> list[dict[str, Any]]:
        """Report events from `compliance_client.venues.normalize`. Each one's
        event_id derives from its dedup_key, so the same venue event reported
        twice (websocket and REST backfill, a replayed snapshot) is one event:
        the outbox answers `duplicate`, and so does the server."""
        prepared = [
            self.signer.prepare(
                e.event_type,
                e.payload,
                event_id=self.venue_event_id(e.dedup_key),
                occurred_at_us=e.occurred_at_us,
            )
            for e in events
        ]
        if self._batch is not None and self._batch_owner == threading.get_ident():
            self._batch.extend(prepared)
            return [{"event_id": p.event_id, "status": "batched"} for p in prepared]
        return self._report(self.signer.seal(prepared)) if prepared else []

    def venue_event_id(self, dedup_key: str) -> str:
        return str(uuid.uuid5(VENUE_NAMESPACE, f"{self.signer.agent_id}\n{dedup_key}"))

    def report(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send signed items now, in batches of up to 500 (no outbox); every
        result, in order."""
        results: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        for item in items:
            batch.append(item)
            if len(batch) == MAX_BATCH:
                results += self.request("POST", "/api/v1/events/", {"events": batch})["results"]
                batch = []
        if batch:
            results += self.request("POST", "/api/v1/events/", {"events": batch})["results"]
        return results

    def _report(self, items: list[WireItem]) -> list[dict[str, Any]]:
        if self.outbox is None:
            results: list[dict[str, Any]] = []
            for start in range(0, len(items), MAX_BATCH):
                body = ",".join(i.text for i in items[start : start + MAX_BATCH])
                raw = f'{{"events":[{body}]}}'.encode()
                results += self.request("POST", "/api/v1/events/", raw=raw)["results"]
            return results
        statuses = self.outbox.put(items)
        assert self.sender is not None
        self.sender.notify()
        return [{"event_id": i.event_id, "status": s} for i, s in zip(items, statuses, strict=True)]

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Group events reported from this thread into one outbox commit (one
        fsync): a high-throughput bot's way to record thousands of events per
        second. Inside the block each call returns `{"event_id", "status":
        "batched"}` at once; the events are signed and committed when the block
        exits without error (nothing of it is kept if it raises)."""
        if self.outbox is None:
            raise RuntimeError("batch() needs an outbox (outbox_path=...)")
        if self._batch is not None:
            raise RuntimeError("batch() blocks do not nest")
        prepared: list[Prepared] = []
        self._batch, self._batch_owner = prepared, threading.get_ident()
        try:
            yield
        finally:
            self._batch, self._batch_owner = None, None
        if prepared:
            self.outbox.put(self.signer.seal(prepared))
            assert self.sender is not None
            self.sender.notify()

    # -- the outbox -------------------------------------------------------------------

    def flush(self, timeout: float = 30.0) -> int:
        """Wait (at most `timeout` seconds) for the sender to deliver what is
        pending; return how many events are still pending."""
        if self.outbox is None or self.sender is None:
            return 0
        deadline = time.monotonic() + timeout
        self.sender.notify()
        while True:
            left = self.outbox.pending()
            if left == 0 or time.monotonic() >= deadline or not self.sender.alive:
                return left
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def pending(self) -> int:
        return self.outbox.pending() if self.outbox is not None else 0

    def dead_letters(self) -> list[dict[str, Any]]:
        """Events the server refused with a 4xx: event_id, event_type, code,
        detail (and the HTTP status, when, and the signed item)."""
        return self.outbox.dead_letters() if self.outbox is not None else []

    @property
    def last_error(self) -> str | None:
        """Why the sender last failed to deliver (None after a success)."""
        return self.sender.last_error if self.sender is not None else None

    def receipt(self, event_id: str) -> dict[str, Any] | None:
        """The server's acknowledgement of an outboxed event: seq, leaf_hash."""
        return self.outbox.receipt(event_id) if self.outbox is not None else None

    # -- proofs -------------------------------------------------------------------------

    def latest_checkpoint(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/log/checkpoints/latest/"))

    def log_public_key(self) -> dict[str, Any]:
        return dict(self.request("GET", "/api/v1/log/public-key/"))

    def inclusion_proof(self, seq: int, tree_size: int) -> dict[str, Any]:
        query = urllib.parse.urlencode({"seq": seq, "tree_size": tree_size})
        return dict(self.request("GET", f"/api/v1/log/proofs/inclusion/?{query}"))

    def verify_inclusion(
        self,
        *,
        event_id: str | None = None,
        seq: int | None = None,
        leaf_hash: str | None = None,
        log_public_key: str | None = None,
    ) -> InclusionCheck:
        """Prove that an event this bot sent is in the log: fetch the latest
        checkpoint, check its signature with the log's public key (pass the
        key you pinned; by default it is fetched), fetch the inclusion proof
        for the event's seq at that tree size and verify it against the
        checkpoint's root, for the leaf hash the server acknowledged. Raises
        `ProofError` when anything does not verify."""
        from .proofs import verify_event_inclusion

        if event_id is not None:
            receipt = self.receipt(event_id)
            if receipt is None:
                raise LookupError(f"no delivered event {event_id!r} in this client's outbox")
            seq, leaf_hash = int(receipt["seq"]), str(receipt["leaf_hash"])
        if seq is None or leaf_hash is None:
            raise ValueError("pass event_id, or seq and leaf_hash")
        return verify_event_inclusion(self, seq=seq, leaf_hash=leaf_hash, public_key=log_public_key)
