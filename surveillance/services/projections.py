"""Projections from what bots report (ORDER_FILLED, ORDER_CANCELED,
VENUE_REJECTED, POSITION_CHANGED), and the approval resolver for held orders.
Both run inside the transaction that writes the record, after the log head lock.

What a venue did is stored even when it contradicts the gate (a fill or cancel
for an order the gate never accepted, an overfill, a fill under a kill switch
or in a restricted market): refusing it would lose evidence. Positions follow
the real fills, and each contradiction is noted as a GateBypass row for the
surveillance cycle's gate_bypass detector (CONTRACT 12)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from accounts.models import Agent, User
from approvals.registry import BaseResolver
from audit.services import Actor, now_us, record_event
from compliance_site.decimals import decimal_text

from .. import store
from ..checks import kill_switches_covering
from ..config import market_key
from ..models import Order
from . import risk
from .config import limits_named
from .counters import counts_add_cancels


@dataclass
class _MarketDelta:
    position: Decimal = Decimal(0)
    open_buy: Decimal = Decimal(0)
    open_sell: Decimal = Decimal(0)
    price: Decimal | None = None


def _lock_orders(agent: Agent, order_ids: set[str]) -> dict[str, Order]:
    """The agent's orders with these ids, locked, by order_id (every ingest
    batch runs it under the log head lock)."""
    return {o.order_id: o for o in store.orders_locked(agent.pk, order_ids)}


# An order the gate never let out: a fill, cancel or venue refusal for it means
# the bot sent it to a venue anyway.
NOT_OPEN = frozenset({Order.Status.PENDING_APPROVAL, Order.Status.REJECTED, Order.Status.EXPIRED})
_REPORTED = frozenset({"ORDER_FILLED", "ORDER_CANCELED", "VENUE_REJECTED", "POSITION_CHANGED"})


@dataclass
class _Bypasses:
    """The batch's contradictions of the gate, written as GateBypass rows
    (tuples in store.BYPASS_COLUMNS order)."""

    agent: Agent
    rows: list[tuple[Any, ...]]
    switches: set[tuple[str, str]] | None = None
    restricted: frozenset[str] = frozenset()

    @classmethod
    def for_batch(cls, agent: Agent, relevant: list[tuple[str, Any, Any]]) -> _Bypasses:
        """Fills are checked against the kill switches and restricted markets
        in force at their seq: read once per batch that has fills, under the
        log head that every switch change also takes."""
        out = cls(agent, [])
        if any(t == "ORDER_FILLED" for t, _, _ in relevant):
            out.switches, version = store.in_force()
            # No version yet: the defaults, which restrict nothing (creating
            # version 1 here would take the firm lock after the log head).
            if version is not None:
                out.restricted = limits_named(version).restricted_markets
        return out

    def fill_reasons(self, market: str, overfill: bool) -> list[str]:
        reasons = ["overfill"] if overfill else []
        switches = self.switches or set()
        if market and kill_switches_covering(switches, self.agent.agent_id, market):
            reasons.append("kill_switch")
        if market in self.restricted:
            reasons.append("restricted_market")
        return reasons

    def note(
        self,
        event_type: str,
        payload: dict[str, Any],
        record: Any,
        order: Order | None,
        reasons: list[str],
        *,
        market: str = "",
        side: str = "",
    ) -> None:
        if not reasons:
            return
        what = {"ORDER_FILLED": "fill", "ORDER_CANCELED": "cancel"}.get(event_type, "venue refusal")
        if order is None:
            state = "an order the gate never accepted"
        else:
            state = f"order {order.order_id} ({order.status}, {decimal_text(order.filled_quantity)}"
            state += f" of {decimal_text(order.quantity)} filled)"
        quantity = payload.get("quantity")
        self.rows.append(
            (
                self.agent.pk,
                payload["order_id"],
                order.pk if order is not None else None,
                event_type,
                reasons,
                f"{what} (seq {record.seq}) for {state}: {', '.join(reasons)}",
                order.market if order is not None else market,
                order.side if order is not None else side,
                Decimal(quantity) if quantity is not None else None,
                Decimal(payload["price"]) if "price" in payload else None,
                record.seq,
                order.seq if order is not None else None,
                record.recorded_at_us,
            )
        )

    def save(self) -> None:
        if self.rows:
            store.gate_bypasses_insert(self.rows)


def apply_reported(agent: Agent, created: list[tuple[Any, Any]]) -> None:
    """audit.services.ingest projection hook: update orders, fills and positions,
    and note what contradicts the gate (GateBypass).

    Works on the whole batch at once (a handful of queries, not a handful per
    event), applying the events in seq order."""
    relevant = [
        (item.envelope["event_type"], item.envelope["payload"], record)
        for item, record in created
        if item.envelope["event_type"] in _REPORTED
    ]
    if not relevant:
        return
    order_ids = {p["order_id"] for t, p, _ in relevant if t != "POSITION_CHANGED"}
    orders = _lock_orders(agent, order_ids)
    bypasses = _Bypasses.for_batch(agent, relevant)
    # Store each fill once (a resent fill under a new event_id keeps its record
    # but moves nothing): one statement inserts the new ones and names them.
    fill_rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for event_type, payload, record in relevant:
        key = (payload.get("order_id"), payload.get("fill_id"))
        if event_type != "ORDER_FILLED" or key in fill_rows:
            continue
        order = orders.get(key[0])
        fill_rows[key] = (
            agent.pk, order.pk if order else None, key[0], key[1],
            order.market if order else payload.get("market", ""),
            order.side if order else payload.get("side", ""),
            Decimal(payload["quantity"]), Decimal(payload["price"]),
            record.seq, record.recorded_at_us,
        )  # fmt: skip
    new_keys = store.fills_insert_new(list(fill_rows.values()))
    deltas: dict[str, _MarketDelta] = defaultdict(_MarketDelta)
    changed: dict[str, Order] = {}
    canceled: list[Order] = []

    def flush(market: str) -> None:
        delta = deltas.pop(market, None)
        if delta is not None:
            risk.apply_delta(
                agent,
                market,
                position=delta.position,
                open_buy=delta.open_buy,
                open_sell=delta.open_sell,
                price=delta.price,
            )

    for event_type, payload, record in relevant:
        if event_type == "POSITION_CHANGED":
            market = market_key(payload["market"])
            flush(market)  # an absolute position overrides what came before it
            risk.set_position(
                agent, market, Decimal(payload["quantity"]), Decimal(payload["price"])
            )
            continue
        order = orders.get(payload["order_id"])
        if event_type != "ORDER_FILLED":
            if order is None:
                bypasses.note(event_type, payload, record, None, ["unknown_order"])
            elif order.status in NOT_OPEN:
                bypasses.note(event_type, payload, record, order, ["order_not_open"])
            elif order.status in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED):
                # A cancel, or the venue refused it: what was left stops resting.
                delta = deltas[order.market]
                if order.side == "buy":
                    delta.open_buy -= order.remaining
                else:
                    delta.open_sell -= order.remaining
                if event_type == "ORDER_CANCELED":
                    order.status = Order.Status.CANCELED
                    canceled.append(order)
                else:
                    order.status = Order.Status.REJECTED
                order.updated_at_us = record.recorded_at_us
                changed[order.order_id] = order
            continue
        key = (payload["order_id"], payload["fill_id"])
        if key not in new_keys:
            continue  # same fill, new event_id: the record stays, the position moves once
        new_keys.discard(key)
        quantity, price = Decimal(payload["quantity"]), Decimal(payload["price"])
        if order is None:
            # A fill for an order the gate never saw: evidence. Its position
            # moves when the fill names its market and side (ORDER_FILLED v2).
            market, side = payload.get("market", ""), payload.get("side", "")
            bypasses.note(
                event_type,
                payload,
                record,
                None,
                ["unknown_order", *bypasses.fill_reasons(market, False)],
                market=market,
                side=side,
            )
            if market and side:
                delta = deltas[market]
                delta.position += quantity if side == "buy" else -quantity
                delta.price = price
            continue
        reasons = ["order_not_open"] if order.status in NOT_OPEN else []
        reasons += bypasses.fill_reasons(
            order.market, order.filled_quantity + quantity > order.quantity
        )
        bypasses.note(event_type, payload, record, order, reasons)
        resting = min(quantity, order.remaining) if order.status in Order.RESTING else Decimal(0)
        delta = deltas[order.market]
        delta.position += quantity if order.side == "buy" else -quantity
        if order.side == "buy":
            delta.open_buy -= resting
        else:
            delta.open_sell -= resting
        delta.price = price
        order.filled_quantity += quantity
        if order.status in Order.RESTING:
            order.status = (
                Order.Status.FILLED
                if order.filled_quantity >= order.quantity
                else Order.Status.PARTIALLY_FILLED
            )
        order.updated_at_us = record.recorded_at_us
        changed[order.order_id] = order
    for market in sorted(deltas):
        flush(market)
    if changed:
        Order.objects.bulk_update(
            list(changed.values()), ["filled_quantity", "status", "updated_at_us"]
        )
    # The gate's cancel-ratio check reads these counters, not the orders.
    counts_add_cancels(canceled)
    bypasses.save()


class OrderApprovalResolver(BaseResolver):
    """Held orders: a grant opens the order; a denial or expiry rejects it and
    releases its reserved exposure. Runs inside the deciding transaction."""

    def _order(self, request: Any) -> Order:
        return (
            Order.objects.select_for_update()
            .select_related("agent")
            .get(pk=int(request.subject_id))
        )

    def recheck(self, request: Any) -> list[dict[str, Any]]:
        """At the grant, under the firm lock: the kill switch and hard limits now."""
        from .recheck import order_recheck

        order = Order.objects.select_related("agent").filter(pk=int(request.subject_id)).first()
        if order is None or order.status != Order.Status.PENDING_APPROVAL:
            return []
        return [r.as_dict() for r in order_recheck(order, lock=True).reasons]

    def context(self, request: Any) -> dict[str, Any] | None:
        """The order's context for the officer's page (a read, no lock)."""
        from .recheck import order_context

        order = (
            Order.objects.select_related("agent__owner", "agent__risk_limit")
            .filter(pk=int(request.subject_id))
            .first()
        )
        return order_context(order) if order is not None else None

    def on_grant(self, request: Any, acting_user: User) -> None:
        order = self._order(request)
        if order.status != Order.Status.PENDING_APPROVAL:
            return
        order.status = Order.Status.OPEN
        order.updated_at_us = now_us()
        order.save(update_fields=["status", "updated_at_us"])

    def _close(self, request: Any, status: str, reason: str, actor: Actor) -> None:
        order = self._order(request)
        if order.status != Order.Status.PENDING_APPROVAL:
            return
        risk.release(order.agent, order.market, order.side, order.remaining)
        order.status = status
        order.updated_at_us = now_us()
        order.save(update_fields=["status", "updated_at_us"])
        record_event(
            "ORDER_REJECTED",
            actor=actor,
            data={
                "decision": "rejected",
                "status": status,
                "agent_id": order.agent.agent_id,
                "order_id": order.order_id,
                "approval_id": request.pk,
                "reasons": [
                    {
                        "code": reason,
                        "limit": None,
                        "value": None,
                        "detail": reason.replace("_", " "),
                    }
                ],
                "config_hash": order.config_hash,
            },
        )

    def on_deny(self, request: Any, acting_user: User) -> None:
        self._close(request, Order.Status.REJECTED, "approval_denied", Actor.for_user(acting_user))

    def on_expire(self, request: Any) -> None:
        self._close(request, Order.Status.EXPIRED, "approval_expired", Actor.system("approvals"))
