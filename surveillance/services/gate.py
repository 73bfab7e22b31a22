"""The pre-trade gate: POST /api/v1/orders/ (CONTRACT section 7).

A decision reads, in order:

1. verify: the signed intent is checked exactly as a reported event is
   (audit.services.ingest.check_items: signature, key, schema), before any lock;
2. lock and read: `store.gate_lock_and_read`, one round trip that takes the
   firm risk lock (every order in the firm waits for it), claims the log head
   and reads the snapshot (a cost that does not grow with history);
3. evaluate: the pure checks (surveillance.checks) against the config in force;
4. write plan: `store.gate_write(GateWritePlan)`, one round trip with the
   records (appended through audit's LogClaim), the order, its counters and
   the exposure it reserves, and the COMMIT.

Every decision carries the config hash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction

from accounts.models import Agent, User
from approvals.services import approval_open
from audit.event_types import Channel
from audit.services import (
    DEFAULT_LOG,
    Actor,
    BatchRejected,
    CheckedItem,
    ItemError,
    PendingRecord,
    append,
    check_items,
    lock_head,
    now_us,
    pending_server_event,
)
from audit.validation import UNPRICED_ORDER_TYPES
from compliance_site.decimals import decimal_text
from compliance_site.exceptions import Conflict, NotFound

from .. import store
from ..buckets import order_count_rows
from ..checks import (
    REGULATORY_REASONS,
    Intent,
    Reason,
    RiskSnapshot,
    decision_of,
    evaluate,
    kill_switches_covering,
)
from ..config import Limits, market_key
from ..models import AgentRiskLimit, Order
from ..selectors import active_kill_switches, cancel_orders_for
from . import risk
from .config import agent_limits_dict, limits_hash, limits_in_force
from .snapshot import snapshot_for


class OrderRejected(BatchRejected):
    """The gate's refusal of an invalid intent (400): the item's own code and
    detail, and the item in `errors` as the event batch lists them."""

    def __init__(self, errors: list[ItemError]):
        super().__init__(errors)
        self.code, self.detail = errors[0].code, errors[0].detail


class OrderConflict(Conflict):
    """The order_id is taken by another envelope, or the amendment targets an order
    that cannot be amended (409)."""


class OrderNotFound(NotFound):
    """No such order for this agent, or not one the person may act for (404)."""

    def __init__(self, order_id: str):
        super().__init__("order_not_found", f"no order {order_id!r} for this agent")


@dataclass
class GateResult:
    decision: str
    order: Order
    reasons: list[dict[str, Any]]
    seq: int
    config_hash: str
    approval: dict[str, Any] | None
    cancel_all: bool
    replayed: bool = False
    cancel_orders: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "order_id": self.order.order_id,
            "status": self.order.status,
            "reasons": self.reasons,
            "seq": self.seq,
            "config_hash": self.config_hash,
            "approval": self.approval,
            "cancel_all": self.cancel_all,
            "cancel_orders": self.cancel_orders,
        }


def _today() -> Any:
    return datetime.now(UTC).date()


def cancel_all_for(agent_id: str, market: str | None, switches: set[tuple[str, str]]) -> bool:
    return bool(kill_switches_covering(switches, agent_id, market))


def _check_intent(agent: Agent, item: Any) -> CheckedItem:
    try:
        checked = check_items(agent, [item], allowed_channels=frozenset({Channel.GATE}))[0]
    except BatchRejected as exc:
        raise OrderRejected(exc.errors) from exc
    if checked.envelope["event_type"] not in {"ORDER_SUBMITTED", "ORDER_AMENDED"}:
        raise OrderRejected(
            [ItemError(0, "unknown_event_type", "the gate takes ORDER_SUBMITTED or ORDER_AMENDED")]
        )
    return checked


def _replay(agent: Agent, checked: CheckedItem) -> GateResult | None:
    """The same envelope sent again gets the same answer; an event_id reused for
    another envelope is a conflict."""
    from audit.models import Record

    old = Record.objects.filter(
        log__name=DEFAULT_LOG, agent_id=agent.agent_id, event_id=checked.event_id
    ).first()
    if old is None:
        return None
    if bytes(old.envelope_hash or b"") != checked.envelope_hash:
        raise OrderConflict(
            "event_id_conflict", f"event_id {checked.event_id!r} was used for another envelope"
        )
    order = Order.objects.get(agent=agent, order_id=checked.envelope["payload"]["order_id"])
    data = old.as_dict()["data"]
    return GateResult(
        decision=data["decision"],
        order=order,
        reasons=data["reasons"],
        seq=old.seq,
        config_hash=data["config_hash"],
        approval=_replayed_approval(order),
        cancel_all=cancel_all_for(agent.agent_id, order.market, active_kill_switches()),
        replayed=True,
        cancel_orders=cancel_orders_for(agent),
    )


def _replayed_approval(order: Order) -> dict[str, Any] | None:
    if order.approval_id is None:
        return None
    from approvals.models import ApprovalRequest

    request = ApprovalRequest.objects.filter(pk=order.approval_id).first()
    return _approval_dict(request) if request else None


def order_submit(*, agent: Agent, item: Any) -> GateResult:
    """Decide on a signed order intent (or amendment). Raises OrderRejected (400),
    OrderConflict (409) or OrderNotFound (404); nothing is stored then."""
    checked = _check_intent(agent, item)
    amendment = checked.envelope["event_type"] == "ORDER_AMENDED"
    for attempt in range(2):
        try:
            # A new order is tried without looking for its event_id or order_id
            # first: almost every order is new, and the unique constraints on
            # records and orders refuse a taken one, rolling everything back.
            # The second attempt then answers with the replay or the 409.
            # (An amendment looks first: its original answer must win over a
            # refusal because the order has moved on since.)
            if amendment or attempt > 0:
                replay = _replay(agent, checked)
                if replay is not None:
                    return replay
            if amendment:
                return _amend(agent, checked)
            payload = checked.envelope["payload"]
            if attempt > 0:
                refuse_taken_order_id(agent, payload["order_id"])
            return decide_submission(agent, payload, _signed_record(agent, checked))
        except IntegrityError:
            # The event_id or the order_id is taken, by an earlier request or a
            # concurrent one.
            if attempt == 1:
                raise
    raise AssertionError("unreachable")


def refuse_taken_order_id(agent: Agent, order_id: str) -> None:
    if Order.objects.filter(agent=agent, order_id=order_id).exists():
        raise OrderConflict(
            "order_id_conflict", f"order_id {order_id!r} was already used by this agent"
        )


def _decision_data(
    decision: str,
    status: str,
    reasons: list[Reason],
    lim: Limits,
    limit_row: AgentRiskLimit | None,
    notional: Decimal,
) -> dict[str, Any]:
    limits = agent_limits_dict(limit_row)
    data = {
        "decision": decision,
        "status": status,
        "reasons": [r.as_dict() for r in reasons],
        "config_version": lim.version,
        "config_hash": lim.hash,
        "agent_limits_hash": limits_hash(limits),
        "notional": decimal_text(notional),
    }
    if not lim.enabled:
        # The config in force turned the limit checks off: the record says the
        # decision was taken without them (the kill switch still applied).
        data["checks_disabled"] = True
    return data


def _breach_records(reasons: list[Reason], agent: Agent, order_id: str, market: str) -> list[Any]:
    return [
        pending_server_event(
            "LIMIT_BREACH",
            actor=Actor.system("gate"),
            data={
                "code": r.code,
                "limit": r.limit,
                "value": r.value,
                "detail": r.detail,
                "agent_id": agent.agent_id,
                "order_id": order_id,
                "market": market,
            },
        )
        for r in reasons
        if r.code in REGULATORY_REASONS
    ]


# Builds the decision's record from its type (None: the order's own type) and data.
RecordFor = Callable[[str | None, dict[str, Any]], PendingRecord]


def _signed_record(agent: Agent, checked: CheckedItem) -> RecordFor:
    """A bot's order: the record holds its signed envelope; the agent is the actor."""

    def make(event_type: str | None, data: dict[str, Any]) -> PendingRecord:
        checked.extra_data = data
        return checked.pending(agent.agent_id, event_type=event_type)

    return make


@transaction.atomic
def decide_submission(
    agent: Agent,
    payload: dict[str, Any],
    record_for: RecordFor,
    submitted_by: User | None = None,
) -> GateResult:
    """Decide on a new order whose payload is valid: the bot's signed one, or a
    person's manual one (surveillance.services.orders); `record_for` makes
    the decision's record. The same locks, checks, records and writes for both."""
    intent = Intent(
        agent.agent_id,
        market_key(payload["market"]),
        payload["side"],
        Decimal(payload["quantity"]),
        Decimal(payload["price"]),
    )
    # Everything above ran without a lock; from here to commit, the firm lock
    # and the log head. `now` is taken before waiting for them (the snapshot's
    # statement travels with the locks): the count windows reach up to the
    # present whatever `now` is, so a wait only starts them a little earlier.
    now = now_us()
    read = store.gate_lock_and_read(agent, intent, now, limits_in_force)
    lim, snap = read.limits, read.snapshot
    if payload["order_type"] in UNPRICED_ORDER_TYPES:
        intent = replace(intent, price=_market_order_price(payload, snap))
    reasons = evaluate(intent, snap, lim)
    decision = decision_of(reasons)
    status = {"accepted": Order.Status.OPEN, "held": Order.Status.PENDING_APPROVAL}.get(
        decision, Order.Status.REJECTED
    )
    data = _decision_data(decision, status, reasons, lim, read.limit_row, intent.notional)
    pending = [record_for("ORDER_REJECTED" if decision == "rejected" else None, data)]
    if decision == "rejected":
        pending += _breach_records(reasons, agent, payload["order_id"], intent.market)
    plan = store.GateWritePlan(
        log=read.log,
        records=pending,
        order=Order(
            agent=agent,
            order_id=payload["order_id"],
            market=intent.market,
            side=intent.side,
            order_type=payload["order_type"],
            venue=payload.get("venue", ""),
            quantity=intent.quantity,
            price=intent.price,
            status=status,
            decision=decision,
            reasons=data["reasons"],
            config_hash=lim.hash,
            seq=-1,  # the first record's, set by the store
            created_at_us=now,
            updated_at_us=now,
            submitted_by=submitted_by,
        ),
        counts=order_count_rows(agent.pk, now, live=decision != "rejected"),
        exposure=None
        if decision == "rejected"
        else risk.reservation(
            read.firm,
            agent,
            intent.market,
            intent.side,
            intent.quantity,
            intent.price,
            today=_today(),
            notional=intent.notional,
        ),
        rows_exist=snap.rows_exist,
        # The COMMIT goes with the writes unless an approval is still to be
        # opened (the firm lock is held until then).
        commit=decision != "held",
    )
    # One round trip. A taken order_id fails here: IntegrityError, see order_submit.
    order = store.gate_write(plan)
    approval = None
    if decision == "held":
        request = approval_open(
            kind="order",
            subject_id=str(order.pk),
            summary={
                "agent_id": agent.agent_id,
                "order_id": order.order_id,
                "market": intent.market,
                "side": intent.side,
                "quantity": payload["quantity"],
                "price": decimal_text(intent.price),
                "notional": data["notional"],
                "order_seq": order.seq,
                "config_hash": lim.hash,
            },
            # A manual order's requester is the person too: they may not grant it.
            requested_by_user=submitted_by,
            requested_by_agent=agent,
            timeout_secs=lim.approval_timeout_secs,
        )
        approval = _approval_dict(request)
        order.approval_id = request.pk
        order.save(update_fields=["approval_id"])
    return GateResult(
        decision=decision,
        order=order,
        reasons=data["reasons"],
        seq=order.seq,
        config_hash=lim.hash,
        approval=approval,
        cancel_all=cancel_all_for(agent.agent_id, intent.market, snap.kill_switches),
        cancel_orders=snap.cancel_orders,
    )


def _market_order_price(payload: dict[str, Any], snap: RiskSnapshot) -> Decimal:
    """What a market order is valued at: its own price is not trusted (it is
    whatever the venue fills at), so the higher of the market's last traded
    price and the `reference_price` the bot sent; neither known: refused with
    `price_required` (raised under the locks, so the whole decision rolls back
    and nothing is stored). The higher one, so that no notional check ever sees
    less than the market says the order is worth."""
    candidates = [snap.reference_price] if snap.reference_price else []
    if payload.get("reference_price") is not None:
        candidates.append(Decimal(payload["reference_price"]))
    if not candidates:
        raise OrderRejected(
            [
                ItemError(
                    0,
                    "price_required",
                    f"no trade in {market_key(payload['market'])} yet to value a market order at: "
                    "send reference_price",
                )
            ]
        )
    return max(candidates)


def _approval_dict(request: Any) -> dict[str, Any]:
    return {"id": request.pk, "expires_at": request.expires_at.isoformat()}


@transaction.atomic
def _amend(agent: Agent, checked: CheckedItem) -> GateResult:
    payload = checked.envelope["payload"]
    firm = risk.lock_firm()
    lim = limits_in_force(firm)
    lock_head()  # fills and cancels of this order wait until the amendment is decided
    order = (
        Order.objects.select_for_update().filter(agent=agent, order_id=payload["order_id"]).first()
    )
    if order is None:
        raise OrderNotFound(payload["order_id"])
    if order.status not in (Order.Status.OPEN, Order.Status.PARTIALLY_FILLED):
        raise OrderConflict("order_not_amendable", f"order {order.order_id} is {order.status}")
    quantity = Decimal(payload.get("quantity", order.quantity))
    price = Decimal(payload.get("price", order.price))
    if quantity <= order.filled_quantity:
        raise OrderRejected(
            [ItemError(0, "schema_violation", "amended quantity must exceed the filled quantity")]
        )
    now = now_us()
    remaining = quantity - order.filled_quantity
    intent = Intent(agent.agent_id, order.market, order.side, remaining, price)
    snap, limit_row = snapshot_for(
        agent,
        intent,
        lim,
        firm=firm,
        now=now,
        exclude=order,
    )
    reasons = evaluate(intent, snap, lim, amendment=True)
    if reasons and reasons[-1].code == "approval_required":
        reasons[-1] = Reason(
            "approval_required",
            reasons[-1].limit,
            reasons[-1].value,
            "amendments above the approval threshold are refused: submit a new order for approval",
        )
    decision = "accepted" if not reasons else "rejected"
    data = _decision_data(decision, order.status, reasons, lim, limit_row, intent.notional)
    data["amendment"] = {
        "quantity": decimal_text(quantity),
        "price": decimal_text(price),
    }
    checked.extra_data = data
    pending = [checked.pending(agent.agent_id, event_type="ORDER_REJECTED" if reasons else None)]
    if reasons:
        pending += _breach_records(reasons, agent, order.order_id, order.market)
    records = append(pending)
    if decision == "accepted":
        old_remaining = order.remaining
        extra = intent.notional - old_remaining * order.price
        risk.release(agent, order.market, order.side, old_remaining)
        risk.reserve(
            firm,
            agent,
            order.market,
            order.side,
            remaining,
            price,
            today=_today(),
            notional=max(extra, Decimal(0)),
        )
        order.quantity, order.price, order.updated_at_us = quantity, price, now
        order.save(update_fields=["quantity", "price", "updated_at_us"])
    return GateResult(
        decision=decision,
        order=order,
        reasons=data["reasons"],
        seq=records[0].seq,
        config_hash=lim.hash,
        approval=None,
        cancel_all=cancel_all_for(agent.agent_id, order.market, snap.kill_switches),
        cancel_orders=snap.cancel_orders,
    )
