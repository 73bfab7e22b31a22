"""The firm risk lock and exposure bookkeeping shared by the gate, the
projections and the kill switch.

Lock order, everywhere: FirmRisk -> approval row -> log head -> order / market
rows. The gate takes the firm lock first; the ingest path and the approval
resolvers only take rows after the log head, so no cycle can form."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Case, F, Value, When
from django.db.models.functions import Coalesce

from accounts.models import Agent

from ..models import AgentMarketRisk, FirmRisk, MarketRisk


def lock_firm() -> FirmRisk:
    firm = FirmRisk.objects.select_for_update().filter(name="firm").first()
    if firm is None:
        FirmRisk.objects.get_or_create(name="firm")
        firm = FirmRisk.objects.select_for_update().get(name="firm")
    return firm


def market_row(market: str) -> MarketRisk:
    row, _ = MarketRisk.objects.get_or_create(market=market)
    return row


def agent_market_row(agent: Agent, market: str) -> AgentMarketRisk:
    row, _ = AgentMarketRisk.objects.get_or_create(agent=agent, market=market)
    return row


def _side_field(side: str) -> str:
    return "open_buy" if side == "buy" else "open_sell"


def reserve(
    firm: FirmRisk,
    agent: Agent,
    market: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    *,
    today: date,
    notional: Decimal,
) -> None:
    """An order now rests (or waits for approval): count it in the exposure and
    the day's volume, in three UPDATEs. Until the market trades, its exposure
    is valued at the latest order price."""
    field = _side_field(side)
    firm_changes = {
        field: F(field) + quantity,
        "mark_price": Coalesce(F("last_price"), Value(price)),
    }
    if not MarketRisk.objects.filter(market=market).update(**firm_changes):
        market_row(market)
        MarketRisk.objects.filter(market=market).update(**firm_changes)
    agent_changes = {
        field: F(field) + quantity,
        "day_notional": Case(
            When(day=today, then=F("day_notional") + notional), default=Value(notional)
        ),
        "day": Value(today),
    }
    if not AgentMarketRisk.objects.filter(agent=agent, market=market).update(**agent_changes):
        agent_market_row(agent, market)
        AgentMarketRisk.objects.filter(agent=agent, market=market).update(**agent_changes)
    if firm.day != today:
        firm.day, firm.day_notional = today, Decimal(0)
    firm.day_notional += notional
    firm.save(update_fields=["day", "day_notional"])


def release(agent: Agent, market: str, side: str, quantity: Decimal) -> None:
    """An order stopped resting (canceled, denied, expired): drop what was left of it."""
    if quantity <= 0:
        return
    field = _side_field(side)
    MarketRisk.objects.filter(market=market).update(**{field: F(field) - quantity})
    AgentMarketRisk.objects.filter(agent=agent, market=market).update(
        **{field: F(field) - quantity}
    )


def apply_delta(
    agent: Agent,
    market: str,
    *,
    position: Decimal,
    open_buy: Decimal,
    open_sell: Decimal,
    price: Decimal | None,
) -> None:
    """Add a batch's net effect on one market, firm-wide and for the agent:
    two UPDATEs however many fills the batch held."""
    firm_changes: dict[str, Any] = {
        "position": F("position") + position,
        "open_buy": F("open_buy") + open_buy,
        "open_sell": F("open_sell") + open_sell,
    }
    if price is not None:
        firm_changes.update(last_price=price, mark_price=price)
    if not MarketRisk.objects.filter(market=market).update(**firm_changes):
        market_row(market)
        MarketRisk.objects.filter(market=market).update(**firm_changes)
    agent_changes = {k: v for k, v in firm_changes.items() if k not in {"last_price", "mark_price"}}
    if not AgentMarketRisk.objects.filter(agent=agent, market=market).update(**agent_changes):
        agent_market_row(agent, market)
        AgentMarketRisk.objects.filter(agent=agent, market=market).update(**agent_changes)


def set_position(agent: Agent, market: str, quantity: Decimal, price: Decimal) -> None:
    """A bot reported its absolute position in a market."""
    row = AgentMarketRisk.objects.select_for_update().filter(agent=agent, market=market).first()
    if row is None:
        agent_market_row(agent, market)
        row = AgentMarketRisk.objects.select_for_update().get(agent=agent, market=market)
    delta = quantity - row.position
    market_row(market)
    MarketRisk.objects.filter(market=market).update(
        position=F("position") + delta, last_price=price, mark_price=price
    )
    AgentMarketRisk.objects.filter(pk=row.pk).update(position=quantity)
