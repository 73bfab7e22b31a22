"""Kill switches: global, per agent, per market."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.roles import has_role
from audit.services import Actor, record_event
from audit.webhooks.services import webhook_notify
from compliance_site.decimals import decimal_text
from compliance_site.exceptions import Conflict, Forbidden, Invalid

from ..config import market_key
from ..models import AgentMarketRisk, KillSwitch, MarketRisk, Order
from .config import limits_current
from .risk import lock_firm


def _snapshot(scope: str, target: str) -> dict[str, Any]:
    """Open positions and resting orders in scope at the moment of activation."""
    agents = AgentMarketRisk.objects.select_related("agent").order_by("agent__agent_id", "market")
    markets = MarketRisk.objects.order_by("market")
    orders = Order.objects.filter(status__in=Order.RESTING).select_related("agent").order_by("pk")
    if scope == "agent":
        agents = agents.filter(agent__agent_id=target)
        orders = orders.filter(agent__agent_id=target)
        markets = markets.none()
    elif scope == "market":
        agents = agents.filter(market=target)
        markets = markets.filter(market=target)
        orders = orders.filter(market=target)
    return {
        "positions": [
            {"agent_id": a.agent.agent_id, "market": a.market, "position": decimal_text(a.position)}
            for a in agents
            if a.position or a.open_buy or a.open_sell
        ],
        "markets": [
            {
                "market": m.market,
                "position": decimal_text(m.position),
                "open_buy": decimal_text(m.open_buy),
                "open_sell": decimal_text(m.open_sell),
            }
            for m in markets
            if m.position or m.open_buy or m.open_sell
        ],
        "resting_orders": [
            {
                "agent_id": o.agent.agent_id,
                "order_id": o.order_id,
                "market": o.market,
                "side": o.side,
                "remaining": decimal_text(o.remaining),
                "status": o.status,
            }
            for o in orders
        ],
    }


def kill_switch_check_role(user: User) -> None:
    role = limits_current().kill_switch_role
    if not has_role(user, role):
        raise Forbidden("forbidden", f"the kill switch requires the {role} role or higher")


def _target(scope: str, target: str | None) -> str:
    """The switch's target as stored: none for global, a market id normalized."""
    if scope == "global":
        return ""
    return market_key(target or "") if scope == "market" else (target or "")


def kill_switch_preview(*, scope: str, target: str | None) -> dict[str, Any]:
    """What activating the switch would snapshot now (the admin's confirmation
    page): the same scope and target the activation uses."""
    return _snapshot(scope, _target(scope, target))


@transaction.atomic
def kill_switch_activate(
    *, scope: str, target: str | None, reason: str, acting_user: User
) -> KillSwitch:
    """Activate: takes the firm risk lock, so every gate decision after this commits
    sees it. Snapshots open positions into the record."""
    kill_switch_check_role(acting_user)
    target = _target(scope, target)
    if scope != "global" and not target:
        raise Invalid("invalid", f"a {scope} kill switch needs a target")
    lock_firm()
    if KillSwitch.objects.filter(scope=scope, target=target, active=True).exists():
        raise Conflict("already_active", "this kill switch is already active")
    snapshot = _snapshot(scope, target)
    record = record_event(
        "KILL_SWITCH_ACTIVATED",
        actor=Actor.for_user(acting_user),
        data={"scope": scope, "target": target or None, "reason": reason, "snapshot": snapshot},
    )
    # Bots in scope must cancel their resting orders: the notice lists them.
    webhook_notify(
        "KILL_SWITCH_ACTIVATED",
        {
            "seq": record.seq,
            "scope": scope,
            "target": target or None,
            "reason": reason,
            "activated_by": acting_user.get_username(),
            "cancel_all": True,
            "resting_orders": snapshot["resting_orders"],
        },
        seq=record.seq,
    )
    return KillSwitch.objects.create(
        scope=scope,
        target=target,
        reason=reason,
        snapshot=snapshot,
        activated_by=acting_user,
        activated_seq=record.seq,
    )


@transaction.atomic
def kill_switch_deactivate(
    *, scope: str, target: str | None, reason: str, acting_user: User
) -> KillSwitch:
    kill_switch_check_role(acting_user)
    target = _target(scope, target)
    lock_firm()
    switch = (
        KillSwitch.objects.select_for_update()
        .filter(scope=scope, target=target, active=True)
        .first()
    )
    if switch is None:
        raise Conflict("not_active", "no such active kill switch")
    record = record_event(
        "KILL_SWITCH_DEACTIVATED",
        actor=Actor.for_user(acting_user),
        data={
            "scope": scope,
            "target": target or None,
            "reason": reason,
            "activated_seq": switch.activated_seq,
        },
    )
    webhook_notify(
        "KILL_SWITCH_DEACTIVATED",
        {
            "seq": record.seq,
            "scope": scope,
            "target": target or None,
            "reason": reason,
            "deactivated_by": acting_user.get_username(),
            "activated_seq": switch.activated_seq,
        },
        seq=record.seq,
    )
    switch.active = False
    switch.deactivated_by = acting_user
    switch.deactivated_at = timezone.now()
    switch.deactivation_reason = reason
    switch.save(update_fields=["active", "deactivated_by", "deactivated_at", "deactivation_reason"])
    return switch
