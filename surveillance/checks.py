"""The pre-trade checks as one pure function: no database, no clock, no I/O.

The gate gathers a `RiskSnapshot` under the firm risk lock and calls `evaluate`;
keeping the checks pure makes them testable one by one and fast (the bench
measures them alone). Every failing check is reported, in DESIGN.md order."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any

from compliance_site.decimals import decimal_text

from .config import Limits

ZERO = Decimal(0)

# Reasons whose limit is a firm-wide regulatory limit: each also gets a LIMIT_BREACH record.
REGULATORY_REASONS = frozenset(
    {
        "restricted_market",
        "price_collar",
        "max_order_quantity",
        "max_order_notional",
        "duplicate_order",
        "rate_limit",
        "max_position",
        "max_total_notional",
        "max_concentration",
        "max_daily_volume",
        "max_cancel_ratio",
    }
)


@dataclass(frozen=True)
class Intent:
    agent_id: str
    market: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    price: Decimal

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


_EXACT = Context(prec=100)
_add, _subtract = _EXACT.add, _EXACT.subtract


def worst_position(position: Decimal, open_buy: Decimal, open_sell: Decimal) -> Decimal:
    """The largest absolute position reachable if every resting order fills:
    every buy, or every sell. Exact, as the database's numeric (no rounding at
    the default 28 digits), so the gate, the firm's gross exposure and the
    dashboard value a market alike."""
    # copy_abs, not abs(): abs() rounds to the thread's context. The gate calls
    # this per order, so no max() and no localcontext.
    up = _add(position, open_buy).copy_abs()
    down = _subtract(position, open_sell).copy_abs()
    return up if up >= down else down


KillSwitchKey = tuple[str, str]


def kill_switch_keys(agent_id: str, market: str | None) -> tuple[KillSwitchKey, ...]:
    """The (scope, target) of every kill switch that covers an agent's orders in
    a market, widest first: global, the agent's, the market's (no market: the
    first two)."""
    if market is None:
        return (("global", ""), ("agent", agent_id))
    return (("global", ""), ("agent", agent_id), ("market", market))


def kill_switches_covering(
    switches: Collection[KillSwitchKey], agent_id: str, market: str | None
) -> list[KillSwitchKey]:
    """Which of the active `switches` cover an agent's orders in a market."""
    if not switches:  # the everyday case, once per order: nothing to look for
        return []
    return list(filter(switches.__contains__, kill_switch_keys(agent_id, market)))


@dataclass
class Exposure:
    position: Decimal = ZERO
    open_buy: Decimal = ZERO
    open_sell: Decimal = ZERO

    def worst(self, side: str | None = None, quantity: Decimal = ZERO) -> Decimal:
        """Largest absolute position reachable if every resting order (and this one) fills."""
        if side == "buy":
            return worst_position(self.position, _add(self.open_buy, quantity), self.open_sell)
        if side == "sell":
            return worst_position(self.position, self.open_buy, _add(self.open_sell, quantity))
        return worst_position(self.position, self.open_buy, self.open_sell)


@dataclass
class AgentLimits:
    max_position: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_daily_notional: Decimal | None = None
    max_orders_per_minute: int | None = None


@dataclass
class RiskSnapshot:
    """What the checks need to know, read under the firm lock."""

    kill_switches: set[tuple[str, str]] = field(default_factory=set)
    reference_price: Decimal | None = None  # last traded/marked price in the market
    market: Exposure = field(default_factory=Exposure)
    market_price: Decimal = ZERO  # price used to value the market's exposure
    gross_exposure: Decimal = ZERO  # all markets, valued, before this order
    firm_day_notional: Decimal = ZERO
    duplicate: bool = False
    agent_orders_last_minute: int = 0
    agent_orders_in_window: int = 0
    agent_cancels_in_window: int = 0
    agent_market: Exposure = field(default_factory=Exposure)
    agent_day_notional: Decimal = ZERO
    agent_limits: AgentLimits = field(default_factory=AgentLimits)
    # Bookkeeping, not a check input: the market's risk row and the firm's gross
    # row are stored (the writes after the decision need not create them).
    rows_exist: bool = False
    # Nor this: the agent's resting orders a person asked to cancel (gate answer).
    cancel_orders: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reason:
    code: str
    limit: Any
    value: Any
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "limit": self.limit, "value": self.value, "detail": self.detail}


def evaluate(
    intent: Intent, s: RiskSnapshot, lim: Limits, *, amendment: bool = False
) -> list[Reason]:
    """Every failing check, in order; `approval_required` last, only when nothing else failed."""
    reasons: list[Reason] = []
    add = reasons.append
    qty, price, market = intent.quantity, intent.price, intent.market
    notional = qty * price

    active = kill_switches_covering(s.kill_switches, intent.agent_id, market)
    if active:
        names = ", ".join(f"{scope}:{target}" if target else scope for scope, target in active)
        add(Reason("kill_switch", names, "active", f"kill switch active ({names})"))
    if not lim.enabled:
        # `enabled: false` turns the limit checks off; an emergency halt is
        # never configured away, and a hold is governed by approval_enabled.
        _approval(notional, lim, reasons)
        return reasons
    if market in lim.restricted_markets:
        add(Reason("restricted_market", market, market, f"{market} is a restricted market"))
    if lim.price_collar is not None and s.reference_price:
        deviation = abs(price - s.reference_price) / s.reference_price
        if deviation > lim.price_collar:
            off = decimal_text((deviation * 100).quantize(Decimal("0.01")))
            add(
                Reason(
                    "price_collar",
                    decimal_text(lim.price_collar * 100),
                    off,
                    f"price {decimal_text(price)} is {off}% from the "
                    f"reference {decimal_text(s.reference_price)}",
                )
            )
    if lim.max_order_quantity is not None and qty > lim.max_order_quantity:
        add(
            Reason(
                "max_order_quantity",
                decimal_text(lim.max_order_quantity),
                decimal_text(qty),
                "order quantity above the limit",
            )
        )
    if lim.max_order_notional is not None and notional > lim.max_order_notional:
        add(
            Reason(
                "max_order_notional",
                decimal_text(lim.max_order_notional),
                decimal_text(notional),
                "order notional above the limit",
            )
        )
    if s.duplicate and not amendment:
        add(
            Reason(
                "duplicate_order",
                lim.duplicate_window_us // 1_000_000,
                "duplicate",
                "an identical order from this agent was sent within the duplicate window",
            )
        )
    if (
        lim.max_orders_per_minute is not None
        and s.agent_orders_last_minute + 1 > lim.max_orders_per_minute
    ):
        add(
            Reason(
                "rate_limit",
                lim.max_orders_per_minute,
                s.agent_orders_last_minute + 1,
                "orders per minute above the limit",
            )
        )
    worst_after = s.market.worst(intent.side, qty)
    cap = lim.position_cap(market)
    if cap is not None and worst_after > cap:
        add(
            Reason(
                "max_position",
                decimal_text(cap),
                decimal_text(worst_after),
                f"firm position in {market} could reach {decimal_text(worst_after)} "
                "with resting orders",
            )
        )
    value_price = s.market_price or price
    market_before = s.market.worst() * value_price
    market_after = worst_after * value_price
    gross_after = s.gross_exposure - market_before + market_after
    if lim.max_total_notional is not None and gross_after > lim.max_total_notional:
        add(
            Reason(
                "max_total_notional",
                decimal_text(lim.max_total_notional),
                decimal_text(gross_after),
                "gross exposure above the limit",
            )
        )
    if lim.max_concentration is not None and market_after > 0:
        share = market_after / max(gross_after, lim.portfolio_capital)
        if share > lim.max_concentration:
            pct = (share * 100).quantize(Decimal("0.01"))
            add(
                Reason(
                    "max_concentration",
                    decimal_text(lim.max_concentration * 100),
                    decimal_text(pct),
                    f"{market} would be {decimal_text(pct)}% of the portfolio",
                )
            )
    if lim.max_daily_volume is not None and s.firm_day_notional + notional > lim.max_daily_volume:
        add(
            Reason(
                "max_daily_volume",
                decimal_text(lim.max_daily_volume),
                decimal_text(s.firm_day_notional + notional),
                "firm daily volume above the limit",
            )
        )
    if (
        lim.max_cancel_ratio is not None
        and s.agent_orders_in_window >= lim.cancel_ratio_min_orders
        and s.agent_cancels_in_window > lim.max_cancel_ratio * s.agent_orders_in_window
    ):
        ratio = (Decimal(s.agent_cancels_in_window) / s.agent_orders_in_window).quantize(
            Decimal("0.001")
        )
        add(
            Reason(
                "max_cancel_ratio",
                decimal_text(lim.max_cancel_ratio),
                decimal_text(ratio),
                "agent cancel ratio above the limit",
            )
        )
    _agent_limits(intent, s, add)
    _approval(notional, lim, reasons)
    return reasons


def _approval(notional: Decimal, lim: Limits, reasons: list[Reason]) -> None:
    """`approval_required`, only when nothing else failed."""
    if (
        not reasons
        and lim.approval_enabled
        and lim.approval_threshold is not None
        and notional > lim.approval_threshold
    ):
        reasons.append(
            Reason(
                "approval_required",
                decimal_text(lim.approval_threshold),
                decimal_text(notional),
                "order notional above the approval threshold: a compliance officer must approve it",
            )
        )


def _agent_limits(intent: Intent, s: RiskSnapshot, add: Any) -> None:
    al = s.agent_limits
    notional = intent.notional
    if al.max_position is not None:
        worst = s.agent_market.worst(intent.side, intent.quantity)
        if worst > al.max_position:
            add(
                Reason(
                    "agent_risk_limit",
                    decimal_text(al.max_position),
                    decimal_text(worst),
                    "agent position limit (max_position)",
                )
            )
    if al.max_order_notional is not None and notional > al.max_order_notional:
        add(
            Reason(
                "agent_risk_limit",
                decimal_text(al.max_order_notional),
                decimal_text(notional),
                "agent order notional limit (max_order_notional)",
            )
        )
    if (
        al.max_daily_notional is not None
        and s.agent_day_notional + notional > al.max_daily_notional
    ):
        add(
            Reason(
                "agent_risk_limit",
                decimal_text(al.max_daily_notional),
                decimal_text(s.agent_day_notional + notional),
                "agent daily notional limit (max_daily_notional)",
            )
        )
    if (
        al.max_orders_per_minute is not None
        and s.agent_orders_last_minute + 1 > al.max_orders_per_minute
    ):
        add(
            Reason(
                "agent_risk_limit",
                al.max_orders_per_minute,
                s.agent_orders_last_minute + 1,
                "agent orders per minute limit (max_orders_per_minute)",
            )
        )


def decision_of(reasons: list[Reason]) -> str:
    if not reasons:
        return "accepted"
    if len(reasons) == 1 and reasons[0].code == "approval_required":
        return "held"
    return "rejected"
