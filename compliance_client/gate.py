"""The gate for strategy loops (CONTRACT section 11).

    gate = client.gate()
    gate.on_cancel(cancel_on_venue)       # None: cancel everything; [ids]: those
    while running:
        for decision in gate.ready():      # held orders decided since last time
            if decision.accepted:
                venue.send(orders[decision.order_id])
        for order in strategy.proposals():
            decision = gate.check(**order)  # accepted / rejected / held, never waits
            if decision.accepted:
                venue.send(order)

`check()` asks the gate now (one request); a `held` answer parks the order
and returns at once. A poller thread watches parked orders and queues each one
once a person decided it: granted comes back from `ready()` with `accepted`
true; denied or expired with `accepted` false and the reason. `cancel_all` or
`cancel_orders` in any gate answer reaches the `on_cancel` callback.

Two plain forms for pipelines: `gate.step(orders)` returns only the orders
allowed now (the seed's `compliance_gate`, as the first function of a
pipeline), and `record_errors(client)` decorates a strategy function so an
exception it raises is recorded as `SYSTEM_ERROR` before it propagates.
"""

from __future__ import annotations

import functools
import threading
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .client import Decision
from .http import ComplianceError, Http

if TYPE_CHECKING:
    from .client import ComplianceClient

CancelCallback = Callable[[list[str] | None], None]
P = ParamSpec("P")
R = TypeVar("R")

_APPROVED = {"open", "partially_filled", "filled"}
_CLOSED = {"rejected": "approval_denied", "expired": "approval_expired", "canceled": "canceled"}


def _decided(order: Mapping[str, Any], approval: Mapping[str, Any] | None) -> Decision | None:
    """The Decision for a formerly held order, or None while it is pending."""
    status = str(order.get("status", ""))
    if status == "pending_approval":
        return None
    base = {
        "order_id": order.get("order_id"),
        "status": status,
        "seq": order.get("seq"),
        "config_hash": order.get("config_hash"),
        "approval": dict(approval) if approval else None,
        "cancel_all": False,
    }
    if status in _APPROVED:
        return Decision.from_response({**base, "decision": "accepted", "reasons": []})
    code = _CLOSED.get(status, status)
    if approval and approval.get("status") == "denied":
        code = "approval_denied"
    elif approval and approval.get("status") == "expired":
        code = "approval_expired"
    detail = str(approval.get("reason") or "") if approval else ""
    detail = detail or code.replace("_", " ")
    reason = {"code": code, "limit": None, "value": None, "detail": detail}
    return Decision.from_response({**base, "decision": "rejected", "reasons": [reason]})


def decision_for_order(get: Callable[[str], Any], order_id: str) -> Decision | None:
    """Read a held order back through `get(path) -> JSON`; its Decision once
    decided, else None."""
    order = get(f"/api/v1/orders/{urllib.parse.quote(order_id, safe='')}/")
    if order.get("status") == "pending_approval":
        return None
    approval = None
    if order.get("approval_id") is not None:
        try:
            approval = get(f"/api/v1/approvals/{int(order['approval_id'])}/")
        except ComplianceError:
            approval = None  # the order's status alone still tells granted from not
    return _decided(order, approval)


class Gate:
    def __init__(self, client: ComplianceClient, *, poll_interval: float = 0.5):
        self.client = client
        self.poll_interval = poll_interval
        self._lock = threading.Lock()
        self._parked: dict[str, Decision] = {}
        self._ready: list[Decision] = []
        self._callbacks: list[CancelCallback] = []
        self._held_orders: dict[str, Mapping[str, Any]] = {}  # step()'s parked orders
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._poll, name="compliance-gate", daemon=True)
        self._thread.start()

    # -- the strategy loop's side ---------------------------------------------------

    def check(
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
        """Ask the gate; never waits for a human. A held order is parked and
        comes back from `ready()` once decided."""
        decision = self.client.submit_order(
            order_id=order_id,
            market=market,
            side=side,
            quantity=quantity,
            price=price,
            order_type=order_type,
            venue=venue,
        )
        if decision.held:
            # No poll now: nobody decided within milliseconds, and an
            # immediate poll would compete with the loop's next check().
            with self._lock:
                self._parked[order_id] = decision
        self._dispatch_cancels(decision)
        return decision

    def ready(self) -> list[Decision]:
        """Held orders decided since the last call (approved: `accepted`;
        denied or expired: not accepted, with the reason)."""
        with self._lock:
            out, self._ready = self._ready, []
        return out

    def parked(self) -> list[str]:
        """Order ids still waiting for a decision."""
        with self._lock:
            return list(self._parked)

    def on_cancel(self, callback: CancelCallback) -> None:
        """`callback(None)` when a gate answer says cancel_all;
        `callback([order_id, ...])` when it names orders to cancel."""
        self._callbacks.append(callback)

    def step(self, orders: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The pipeline form: check each proposed order (a mapping with
        check()'s keyword arguments) and return the ones allowed now, plus
        held ones approved since the last step. Held orders are parked."""
        proposed = list(orders)
        allowed: list[Mapping[str, Any]] = []
        by_id = {str(o["order_id"]): o for o in proposed}
        held_orders = self._held_orders
        for decision in self.ready():
            original = held_orders.pop(decision.order_id, None)
            if decision.accepted and original is not None:
                allowed.append(original)
        for order in proposed:
            decision = self.check(**{k: order[k] for k in _CHECK_KEYS if k in order})
            if decision.accepted:
                allowed.append(order)
            elif decision.held:
                held_orders[decision.order_id] = by_id[decision.order_id]
        return allowed

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    # -- internals ------------------------------------------------------------------

    def _dispatch_cancels(self, decision: Decision) -> None:
        if decision.cancel_all:
            self._call(None)
        if decision.cancel_orders:
            self._call(list(decision.cancel_orders))

    def _call(self, what: list[str] | None) -> None:
        for callback in list(self._callbacks):
            callback(what)

    def _poll(self) -> None:
        """Runs on its own connection, so check() never waits behind a poll."""
        http = self.client._new_http()
        get = _getter(http)
        try:
            while not self._stop.is_set():
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                with self._lock:
                    parked = list(self._parked)
                for order_id in parked:
                    if self._stop.is_set():
                        break
                    try:
                        decided = decision_for_order(get, order_id)
                        self.last_error = None
                    except (OSError, ComplianceError) as exc:
                        self.last_error = f"{type(exc).__name__}: {exc}"
                        break
                    except Exception:  # keep polling; say why
                        self.last_error = traceback.format_exc(limit=2)
                        break
                    if decided is not None:
                        with self._lock:
                            self._parked.pop(order_id, None)
                            self._ready.append(decided)
        finally:
            http.close()


def _getter(http: Http) -> Callable[[str], Any]:
    def get(path: str) -> Any:
        status, _, data = http.send("GET", path)
        if status >= 400:
            raise ComplianceError(status, data)
        return data

    return get


_CHECK_KEYS = ("order_id", "market", "side", "quantity", "price", "order_type", "venue")


def record_errors(
    client: ComplianceClient, *, error_type: str | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator: an exception raised by the strategy function is recorded
    as SYSTEM_ERROR {error_type, message} (durably, with an outbox), then
    re-raised unchanged."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(fn)
        def inner(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                message = f"{fn.__qualname__}: {exc}"[:4000]
                kind = (error_type or type(exc).__name__)[:128]
                try:
                    client.record("SYSTEM_ERROR", {"error_type": kind, "message": message})
                except Exception as report_error:  # never mask the strategy's own error
                    exc.add_note(f"recording SYSTEM_ERROR failed: {report_error!r}")
                raise

        return inner

    return wrap


def compliance_gate(gate: Gate) -> Callable[[Iterable[Mapping[str, Any]]], list[Mapping[str, Any]]]:
    """The seed's pipeline step: `pipeline = [compliance_gate(gate), size, route]`."""
    return gate.step
