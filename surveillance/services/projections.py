"""Projections from what bots report (ORDER_FILLED, ORDER_CANCELED,
POSITION_CHANGED), and the approval resolver for held orders. Both run inside
the transaction that writes the record, after the log head lock."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction

from accounts.models import Agent, User
from approvals.registry import BaseResolver
from audit.services import Actor, now_us, record_event
from compliance_site.db import fetch_prepared, insert_new

from ..config import market_key
from ..models import Fill, Order
from . import risk
from .counters import counts_add_cancels

_FILL_COLUMNS = (
    "agent_id", "order_id", "order_ref", "fill_id", "market", "side", "quantity", "price",
    "seq", "recorded_at_us",
)  # fmt: skip
_FILL_KEY = ("order_ref", "fill_id")


@dataclass
class _MarketDelta:
    position: Decimal = Decimal(0)
    open_buy: Decimal = Decimal(0)
    open_sell: Decimal = Decimal(0)
    price: Decimal | None = None


_ORDER_FIELDS = [f.attname for f in Order._meta.concrete_fields]
_ORDER_COLUMNS = ", ".join(str(f.column) for f in Order._meta.concrete_fields)
# PostgreSQL: one prepared statement whatever the number of ids.
_LOCK_ORDERS_SQL = (
    f"SELECT {_ORDER_COLUMNS} FROM {Order._meta.db_table} WHERE agent_id = %s"  # noqa: S608
    " AND order_id = ANY(%s) ORDER BY id FOR UPDATE"
)


def _lock_orders(agent: Agent, order_ids: set[str]) -> dict[str, Order]:
    """The agent's orders with these ids, locked, by order_id. Plain SQL: every
    ingest batch runs it under the log head lock."""
    if not order_ids:
        return {}
    ids = sorted(order_ids)
    if transaction.get_connection().vendor == "postgresql":
        rows = fetch_prepared(_LOCK_ORDERS_SQL, [agent.pk, ids], every_row=True)
    else:  # SQLite: the database is locked for writing already
        sql = (
            f"SELECT {_ORDER_COLUMNS} FROM {Order._meta.db_table} WHERE agent_id = %s"  # noqa: S608
            f" AND order_id IN ({', '.join(['%s'] * len(ids))}) ORDER BY id"
        )
        rows = fetch_prepared(sql, [agent.pk, *ids], every_row=True)
    orders = [Order.from_db(DEFAULT_DB_ALIAS, _ORDER_FIELDS, row) for row in rows]
    return {o.order_id: o for o in orders}


def apply_reported(agent: Agent, created: list[tuple[Any, Any]]) -> None:
    """audit.services.ingest projection hook: update orders, fills and positions.

    Works on the whole batch at once (a handful of queries, not a handful per
    event), applying the events in seq order."""
    relevant = [
        (item.envelope["event_type"], item.envelope["payload"], record)
        for item, record in created
        if item.envelope["event_type"] in {"ORDER_FILLED", "ORDER_CANCELED", "POSITION_CHANGED"}
    ]
    if not relevant:
        return
    order_ids = {p["order_id"] for t, p, _ in relevant if t != "POSITION_CHANGED"}
    orders = _lock_orders(agent, order_ids)
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
            order.market if order else "", order.side if order else "",
            Decimal(payload["quantity"]), Decimal(payload["price"]),
            record.seq, record.recorded_at_us,
        )  # fmt: skip
    new_keys = insert_new(Fill, _FILL_COLUMNS, list(fill_rows.values()), returning=_FILL_KEY)
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
        if event_type == "ORDER_CANCELED":
            if order is not None and order.status in (
                Order.Status.OPEN,
                Order.Status.PARTIALLY_FILLED,
            ):
                delta = deltas[order.market]
                if order.side == "buy":
                    delta.open_buy -= order.remaining
                else:
                    delta.open_sell -= order.remaining
                order.status = Order.Status.CANCELED
                order.updated_at_us = record.recorded_at_us
                changed[order.order_id] = order
                canceled.append(order)
            continue
        key = (payload["order_id"], payload["fill_id"])
        if key not in new_keys:
            continue  # same fill, new event_id: the record stays, the position moves once
        new_keys.discard(key)
        quantity, price = Decimal(payload["quantity"]), Decimal(payload["price"])
        if order is None:
            continue  # a fill for an order the gate never saw: kept as evidence for surveillance
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


class OrderApprovalResolver(BaseResolver):
    """Held orders: a grant opens the order; a denial or expiry rejects it and
    releases its reserved exposure. Runs inside the deciding transaction."""

    def _order(self, request: Any) -> Order:
        return (
            Order.objects.select_for_update()
            .select_related("agent")
            .get(pk=int(request.subject_id))
        )

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
