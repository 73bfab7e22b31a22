"""Projections from what bots report (ORDER_FILLED, ORDER_CANCELED,
POSITION_CHANGED), and the approval resolver for held orders. Both run inside
the transaction that writes the record, after the log head lock."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from accounts.models import Agent, User
from approvals.registry import BaseResolver
from audit.services import Actor, now_us, record_event

from ..models import Fill, Order
from . import risk


def apply_reported(agent: Agent, created: list[tuple[Any, Any]]) -> None:
    """audit.services.ingest projection hook: update orders, fills and positions."""
    for item, record in created:
        event_type = item.envelope["event_type"]
        payload = item.envelope["payload"]
        if event_type == "ORDER_FILLED":
            _fill(agent, payload, record)
        elif event_type == "ORDER_CANCELED":
            _cancel(agent, payload, record)
        elif event_type == "POSITION_CHANGED":
            risk.set_position(
                agent, payload["market"], Decimal(payload["quantity"]), Decimal(payload["price"])
            )


def _fill(agent: Agent, payload: dict[str, Any], record: Any) -> None:
    if Fill.objects.filter(
        agent=agent, order_ref=payload["order_id"], fill_id=payload["fill_id"]
    ).exists():
        # The same fill under a new event_id: the record stays, the position moves once.
        return
    order = (
        Order.objects.select_for_update().filter(agent=agent, order_id=payload["order_id"]).first()
    )
    quantity, price = Decimal(payload["quantity"]), Decimal(payload["price"])
    Fill.objects.create(
        agent=agent,
        order=order,
        order_ref=payload["order_id"],
        fill_id=payload["fill_id"],
        market=order.market if order else "",
        side=order.side if order else "",
        quantity=quantity,
        price=price,
        seq=record.seq,
        recorded_at_us=record.recorded_at_us,
    )
    if order is None:
        return  # a fill for an order the gate never saw: kept as evidence, surveillance flags it
    resting = min(quantity, order.remaining) if order.status in Order.RESTING else Decimal(0)
    risk.fill(agent, order.market, order.side, quantity, resting, price)
    order.filled_quantity += quantity
    if order.status in Order.RESTING:
        order.status = (
            Order.Status.FILLED
            if order.filled_quantity >= order.quantity
            else Order.Status.PARTIALLY_FILLED
        )
    order.updated_at_us = record.recorded_at_us
    order.save(update_fields=["filled_quantity", "status", "updated_at_us"])


def _cancel(agent: Agent, payload: dict[str, Any], record: Any) -> None:
    order = (
        Order.objects.select_for_update().filter(agent=agent, order_id=payload["order_id"]).first()
    )
    if order is None or order.status not in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED):
        return
    risk.release(agent, order.market, order.side, order.remaining)
    order.status = Order.Status.CANCELED
    order.updated_at_us = record.recorded_at_us
    order.save(update_fields=["status", "updated_at_us"])


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
