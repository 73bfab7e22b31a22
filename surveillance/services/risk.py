"""The firm risk lock and exposure bookkeeping shared by the gate, the
projections and the kill switch.

Lock order, everywhere: FirmRisk -> approval row -> log head -> order / market
rows -> FirmExposure. The gate takes the firm lock first; the ingest path and
the approval resolvers only take rows after the log head, so no cycle can form.

Every change to a MarketRisk row goes through `_market_change`, which locks
the row, so the change of its valued exposure (worst reachable position times
mark price) is exact and is added to FirmExposure.gross in the same
transaction: the gross is always the sum over the markets."""

from __future__ import annotations

import decimal
from datetime import date
from decimal import Decimal
from typing import Any

from django.db.models import Case, F, Value, When

from accounts.models import Agent

from ..checks import Exposure
from ..models import AgentMarketRisk, FirmExposure, FirmRisk, MarketRisk

# Exact products and sums of 30-digit decimals (the default context keeps 28 digits).
_EXACT = decimal.Context(prec=100)


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


def valued_exposure(row: MarketRisk) -> Decimal:
    """A market's part of the gross exposure: its worst reachable position at its mark."""
    worst = Exposure(row.position, row.open_buy, row.open_sell).worst()
    return _EXACT.multiply(worst, row.mark_price or Decimal(0))


def gross_exposure_recompute() -> Decimal:
    """The gross exposure summed over every market (what FirmExposure keeps)."""
    total = Decimal(0)
    for row in MarketRisk.objects.all():
        total = _EXACT.add(total, valued_exposure(row))
    return total


def _gross_add(delta: Decimal) -> None:
    if not FirmExposure.objects.filter(name="firm").update(gross=F("gross") + delta):
        # First change in a fresh database: start from the markets as they now are
        # (this change included).
        FirmExposure.objects.get_or_create(
            name="firm", defaults={"gross": gross_exposure_recompute()}
        )


def _market_change(
    market: str,
    *,
    position: Decimal = Decimal(0),
    open_buy: Decimal = Decimal(0),
    open_sell: Decimal = Decimal(0),
    last_price: Decimal | None = None,
    order_price: Decimal | None = None,
) -> None:
    """Change one market's row and the firm's gross exposure with it. A traded
    or reported `last_price` becomes the mark; an `order_price` only marks a
    market that has not traded yet."""
    row = MarketRisk.objects.select_for_update().filter(market=market).first()
    if row is None:
        market_row(market)
        row = MarketRisk.objects.select_for_update().get(market=market)
    before = valued_exposure(row)
    row.position = _EXACT.add(row.position, position)
    row.open_buy = _EXACT.add(row.open_buy, open_buy)
    row.open_sell = _EXACT.add(row.open_sell, open_sell)
    if last_price is not None:
        row.last_price = row.mark_price = last_price
    elif order_price is not None:
        row.mark_price = row.last_price if row.last_price is not None else order_price
    row.save(update_fields=["position", "open_buy", "open_sell", "last_price", "mark_price"])
    delta = _EXACT.subtract(valued_exposure(row), before)
    if delta:
        _gross_add(delta)


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
    the day's volume. Until the market trades, its exposure
    is valued at the latest order price."""
    field = _side_field(side)
    _market_change(market, **{field: quantity}, order_price=price)
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
    _market_change(market, **{field: -quantity})
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
    a few statements however many fills the batch held."""
    _market_change(
        market, position=position, open_buy=open_buy, open_sell=open_sell, last_price=price
    )
    agent_changes: dict[str, Any] = {
        "position": F("position") + position,
        "open_buy": F("open_buy") + open_buy,
        "open_sell": F("open_sell") + open_sell,
    }
    if not AgentMarketRisk.objects.filter(agent=agent, market=market).update(**agent_changes):
        agent_market_row(agent, market)
        AgentMarketRisk.objects.filter(agent=agent, market=market).update(**agent_changes)


def set_position(agent: Agent, market: str, quantity: Decimal, price: Decimal) -> None:
    """A bot reported its absolute position in a market."""
    row = AgentMarketRisk.objects.select_for_update().filter(agent=agent, market=market).first()
    if row is None:
        agent_market_row(agent, market)
        row = AgentMarketRisk.objects.select_for_update().get(agent=agent, market=market)
    _market_change(market, position=quantity - row.position, last_price=price)
    AgentMarketRisk.objects.filter(pk=row.pk).update(position=quantity)
