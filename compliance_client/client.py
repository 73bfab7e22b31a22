"""HTTP client for bots (no Django, standard library only).

Every call is safe to retry: an envelope keeps its event_id across retries, so
the server answers a resend with the original result (`duplicate`) instead of
recording it twice. Transport errors and 5xx answers are retried with
exponential backoff; 4xx answers are raised as `ComplianceError` at once.
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .signing import Signer

MAX_BATCH = 500


class ComplianceError(Exception):
    """The server refused the request (4xx); `body` carries its code and detail."""

    def __init__(self, status: int, body: Any):
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


@dataclass
class Decision:
    decision: str
    order_id: str
    status: str
    reasons: list[dict[str, Any]]
    seq: int
    config_hash: str
    approval: dict[str, Any] | None
    cancel_all: bool
    # Orders of this agent a person asked to cancel (CONTRACT 12), until it reports the cancel.
    cancel_orders: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.decision == "accepted"


class ComplianceClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        signer: Signer,
        *,
        timeout: float = 10.0,
        retries: int = 5,
        backoff: float = 0.2,
    ):
        parsed = urllib.parse.urlsplit(base_url)
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname or "127.0.0.1"
        self._port = parsed.port or (443 if self._https else 80)
        self._prefix = parsed.path.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.signer = signer
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method: str, path: str, body: Any = None) -> Any:
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            try:
                conn = self._connection()
                conn.request(method, self._prefix + path, body=payload, headers=self._headers)
                response = conn.getresponse()
                raw = response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == self.retries:
                    raise
            else:
                data = json.loads(raw) if raw else None
                if status < 400:
                    return data
                if status < 500 and status != 429:
                    raise ComplianceError(status, data)
                if attempt == self.retries:
                    raise ComplianceError(status, data)
            time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise AssertionError("unreachable")

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
        """Ask the gate. Quantities and prices are decimal strings."""
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
        return Decision(
            **self.request("POST", "/api/v1/orders/", self.signer.item("ORDER_SUBMITTED", payload))
        )

    def amend_order(
        self, *, order_id: str, quantity: str | None = None, price: str | None = None
    ) -> Decision:
        payload: dict[str, Any] = {"order_id": order_id}
        if quantity is not None:
            payload["quantity"] = quantity
        if price is not None:
            payload["price"] = price
        return Decision(
            **self.request("POST", "/api/v1/orders/", self.signer.item("ORDER_AMENDED", payload))
        )

    def order(self, order_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/api/v1/orders/{urllib.parse.quote(order_id, safe='')}/"))

    def report(self, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send signed items in batches of up to 500; returns every result in order."""
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

    def fill(self, *, order_id: str, fill_id: str, quantity: str, price: str) -> dict[str, Any]:
        item = self.signer.item(
            "ORDER_FILLED",
            {"order_id": order_id, "fill_id": fill_id, "quantity": quantity, "price": price},
        )
        return self.report([item])[0]

    def cancel(self, *, order_id: str, reason: str) -> dict[str, Any]:
        return self.report(
            [self.signer.item("ORDER_CANCELED", {"order_id": order_id, "reason": reason})]
        )[0]

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
        return self.report([self.signer.item("VENUE_REJECTED", payload)])[0]
