"""What a person does about an agent's orders (CONTRACT section 12): a manual
order through the same gate as the bot's, and a request to cancel an open
order. Traders for the agents they own, risk managers and above for any.

A manual order is decided exactly as a bot's (decide_submission): the same
locks, checks, records and writes. Its record has no signed envelope (a
person sent it, not the bot's key): its actor is the person, and its data
holds the order as sent (`order`) with `manual: true`.

Only the bot can cancel on the venue, so a cancel request is a record
(CANCEL_REQUESTED, the person as actor) and a mark on the order; the bot
hears of it in each gate answer (`cancel_orders`) and from the order's
`cancel_requested`, until the order rests no more (its ORDER_CANCELED, or a
fill that completes it)."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Agent, User
from accounts.selectors import agent_can_act
from audit.event_types import CORE_TYPES
from audit.services import (
    Actor,
    FloatToken,
    ItemError,
    PendingRecord,
    lock_head,
    record_event,
)
from audit.validation import amount_problem, resolve, schema_errors
from compliance_client.jcs import canonicalize, number_problem
from compliance_site.exceptions import Forbidden, Invalid

from ..models import Order
from .gate import (
    GateResult,
    OrderConflict,
    OrderNotFound,
    OrderRejected,
    RecordFor,
    decide_submission,
    refuse_taken_order_id,
)

_SUBMITTED = CORE_TYPES["ORDER_SUBMITTED"]
ORDER_FIELDS = frozenset(_SUBMITTED.versions[_SUBMITTED.latest]["properties"])


def _refuse(code: str, detail: str) -> OrderRejected:
    return OrderRejected([ItemError(0, code, detail)])


def _acting_for(agent: Agent, acting_user: User, order_id: str) -> None:
    """Who may act for the agent; anyone else is told the order does not exist
    (a trader who does not own the agent cannot see it)."""
    if not agent_can_act(user=acting_user, agent=agent):
        raise OrderNotFound(order_id)


def _manual_record(agent: Agent, payload: dict[str, Any], acting_user: User) -> RecordFor:
    actor = Actor.for_user(acting_user)
    version = CORE_TYPES["ORDER_SUBMITTED"].latest

    def make(event_type: str | None, data: dict[str, Any]) -> PendingRecord:
        body = {
            **data,
            "manual": True,
            "agent_id": agent.agent_id,
            "order": payload,
            "schema_version": version,
        }
        return PendingRecord(
            event_type=event_type or "ORDER_SUBMITTED",
            actor=actor,
            data_json=canonicalize(body),
            agent_id=agent.agent_id,
        )

    return make


def order_submit_manual(*, agent: Agent, order: dict[str, Any], acting_user: User) -> GateResult:
    """Decide on a person's order for `agent` (body as CONTRACT 12, without
    `agent_id`). Raises OrderRejected (400: float_not_allowed,
    schema_violation), OrderNotFound (404: not theirs to act for),
    Forbidden (403) or OrderConflict (409: order_id taken); nothing is
    stored then."""
    _acting_for(agent, acting_user, str(order.get("order_id", "")))
    if agent.status != Agent.Status.ACTIVE:
        raise Forbidden("agent_suspended", f"agent {agent.agent_id} is suspended")
    problem = number_problem(order, FloatToken)
    if problem == "float":
        raise _refuse("float_not_allowed", "quantities and prices are decimal strings")
    if problem is not None:
        raise _refuse("schema_violation", "integer beyond the safe range")
    unknown = set(order) - ORDER_FIELDS
    if unknown:
        raise _refuse("schema_violation", f"unexpected keys: {', '.join(sorted(unknown))}")
    resolved = resolve("ORDER_SUBMITTED")
    assert resolved is not None  # a core type
    problem = schema_errors(resolved.validate, order)
    if problem is not None:
        raise _refuse("schema_violation", problem)
    # the same bounds as a bot's order: no zero quantity, no zero limit price
    amount = amount_problem("ORDER_SUBMITTED", order)
    if amount is not None:
        raise _refuse(*amount)
    payload = dict(order)
    for attempt in range(2):
        try:
            if attempt > 0:
                refuse_taken_order_id(agent, payload["order_id"])
            return decide_submission(
                agent,
                payload,
                _manual_record(agent, payload, acting_user),
                submitted_by=acting_user,
            )
        except IntegrityError:
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


@transaction.atomic
def order_cancel_request(*, agent: Agent, order_id: str, reason: str, acting_user: User) -> Order:
    """Ask the bot to cancel one of its open orders; recorded as CANCEL_REQUESTED
    with the person as actor. 404 if the person may not act for the agent or
    the order does not exist; 409 if it is not open or a cancel is already asked."""
    _acting_for(agent, acting_user, order_id)
    reason = (reason or "").strip()
    if not reason:
        raise Invalid("reason_required", "Give a reason: it goes into the record.")
    # Lock order: the log head, then the order's row (as fills and cancels take them).
    lock_head()
    order = Order.objects.select_for_update().filter(agent=agent, order_id=order_id).first()
    if order is None:
        raise OrderNotFound(order_id)
    if order.status not in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED):
        raise OrderConflict("order_not_open", f"order {order_id} is {order.status}")
    if order.cancel_requested_at_us is not None:
        raise OrderConflict(
            "cancel_already_requested",
            f"a cancel of order {order_id} was requested at seq {order.cancel_requested_seq}",
        )
    record = record_event(
        "CANCEL_REQUESTED",
        actor=Actor.for_user(acting_user),
        data={"order_id": order_id, "agent_id": agent.agent_id, "reason": reason},
    )
    order.cancel_requested_at_us = record.recorded_at_us
    order.cancel_requested_seq = record.seq
    order.save(update_fields=["cancel_requested_at_us", "cancel_requested_seq"])
    return order
