"""The re-check of a held order at the moment of its grant (CONTRACT 12), and
the context an officer sees before deciding.

A held order waited minutes for a human; the kill switch, the limits and the
firm's positions may have moved since the gate held it. Granting it re-runs
the gate's own checks (surveillance.checks.evaluate) against a fresh snapshot
read under the firm lock, taking the order itself out of what the snapshot
already counts (its reserved exposure, its day's notional, its place in the
order counts): the question is whether this order may rest now. Only the
kill switch and the hard limits count; the rate, duplicate and cancel-ratio
checks are about the moment it was sent, which has passed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from audit.services import now_us
from compliance_site.decimals import decimal_text

from ..checks import Intent, Reason, RiskSnapshot, evaluate
from ..config import Limits
from ..models import AgentMarketRisk, FirmRisk, MarketRisk, Order
from . import risk
from .config import agent_limits_dict, limits_current, limits_in_force
from .snapshot import snapshot_for

RECHECK_CODES = frozenset(
    {
        "kill_switch",
        "restricted_market",
        "price_collar",
        "max_order_quantity",
        "max_order_notional",
        "max_position",
        "max_total_notional",
        "max_concentration",
        "max_daily_volume",
        "agent_risk_limit",
    }
)


@dataclass
class Recheck:
    reasons: list[Reason]
    limits: Limits
    snapshot: RiskSnapshot

    @property
    def ok(self) -> bool:
        return not self.reasons


def _created_today(order: Order) -> bool:
    day = datetime.fromtimestamp(order.created_at_us / 1_000_000, tz=UTC).date()
    return day == datetime.now(UTC).date()


def order_recheck(order: Order, *, lock: bool = True) -> Recheck:
    """The kill switch and hard limits for `order` (held) against the state now.
    With `lock` (the grant), under the firm risk lock, taken first as the
    project's lock order requires; without (the admin's preview), a plain read."""
    if lock:
        firm = risk.lock_firm()
        lim = limits_in_force(firm)
    else:
        firm = FirmRisk.objects.filter(name="firm").first() or FirmRisk(name="firm")
        lim = limits_current()
    intent = Intent(order.agent.agent_id, order.market, order.side, order.remaining, order.price)
    snap, _ = snapshot_for(order.agent, intent, lim, firm=firm, now=now_us(), exclude=order)
    # What the snapshot counts of the order itself, taken out (see the module docstring).
    snap.agent_orders_last_minute = 0
    snap.agent_orders_in_window = snap.agent_cancels_in_window = 0
    if _created_today(order):
        notional = order.quantity * order.price
        snap.firm_day_notional = max(snap.firm_day_notional - notional, Decimal(0))
        snap.agent_day_notional = max(snap.agent_day_notional - notional, Decimal(0))
    reasons = [r for r in evaluate(intent, snap, lim, amendment=True) if r.code in RECHECK_CODES]
    if not lim.enabled:  # limit checks off (checks_disabled): the kill switch still applies
        reasons = [r for r in reasons if r.code == "kill_switch"]
    return Recheck(reasons, lim, snap)


def _text(value: Any) -> str:
    if value is None:
        return "no limit"
    if isinstance(value, Decimal):
        return decimal_text(value)
    return str(value)


def order_context(order: Order) -> dict[str, Any]:
    """What an officer needs on the approval page: the order, its bot and
    owner, its position and limits in the market, and the re-check now (a
    read, without the firm lock: the grant re-checks under it)."""
    agent = order.agent
    check = order_recheck(order, lock=False)
    lim = check.limits
    mine = AgentMarketRisk.objects.filter(agent=agent, market=order.market).first()
    firm = MarketRisk.objects.filter(market=order.market).first()
    agent_limits = agent_limits_dict(getattr(agent, "risk_limit", None))

    def exposure(row: Any) -> str:
        if row is None:
            return "0 (no open orders)"
        return (
            f"{_text(row.position)} (open buy {_text(row.open_buy)}, "
            f"open sell {_text(row.open_sell)})"
        )

    facts = [
        ("Order", f"{order.order_id}: {order.side} {_text(order.quantity)} {order.market} "
                  f"@ {_text(order.price)} ({order.order_type})"),
        ("Notional", _text(order.quantity * order.price)),
        ("Order status", order.status),
        ("Bot", f"{agent.agent_id} ({agent.name})"),
        ("Owner", agent.owner.username if agent.owner is not None else "none"),
        (f"Bot position in {order.market}", exposure(mine)),
        (f"Firm position in {order.market}", exposure(firm)),
        (f"Firm max position in {order.market}", _text(lim.position_cap(order.market))),
        ("Firm max order notional", _text(lim.max_order_notional)),
        ("Firm max total notional", _text(lim.max_total_notional)),
        ("Bot max position", _text(agent_limits["max_position"])),
        ("Bot max order notional", _text(agent_limits["max_order_notional"])),
        ("Bot max daily notional", _text(agent_limits["max_daily_notional"])),
        ("Config in force", f"v{lim.version} ({lim.hash[:12]})"),
    ]  # fmt: skip
    return {"facts": facts, "recheck": [r.as_dict() for r in check.reasons]}
