"""The firm risk lock and exposure bookkeeping shared by the gate, the
projections and the kill switch.

Lock order, everywhere: FirmRisk -> approval row -> log head -> order / market
rows -> FirmExposure. The gate takes the firm lock first; the ingest path and
the approval resolvers only take rows after the log head, so no cycle can form.

Every change to a MarketRisk row is an `ExposureChange` written by
surveillance.store, which moves FirmExposure.gross by the change of the
market's valued exposure (worst reachable position times mark price), in the
same transaction: the gross is always the sum over the markets, exactly."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from accounts.models import Agent

from .. import store
from ..models import AgentMarketRisk, FirmRisk, MarketRisk
from ..store import gross_exposure_recompute, lock_firm, valued_exposure

__all__ = [
    "agent_market_row",
    "apply_delta",
    "gross_exposure_recompute",
    "lock_firm",
    "market_row",
    "release",
    "reservation",
    "reserve",
    "set_position",
    "valued_exposure",
]


def market_row(market: str) -> MarketRisk:
    row, _ = MarketRisk.objects.get_or_create(market=market)
    return row


def agent_market_row(agent: Agent, market: str) -> AgentMarketRisk:
    row, _ = AgentMarketRisk.objects.get_or_create(agent=agent, market=market)
    return row


def _open(side: str, quantity: Decimal) -> tuple[Decimal, Decimal]:
    """(open_buy, open_sell) for `quantity` on one side."""
    return (quantity, Decimal(0)) if side == "buy" else (Decimal(0), quantity)


def reservation(
    firm: FirmRisk,
    agent: Agent,
    market: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    *,
    today: date,
    notional: Decimal,
) -> store.ExposureChange:
    """What an order that now rests (or waits for approval) adds: its
    quantity to the open side, its notional to the day's volume of the agent
    and of the firm (`firm` is updated to match). Until the market trades,
    its exposure is valued at the latest order price."""
    if firm.day != today:
        firm.day, firm.day_notional = today, Decimal(0)
    firm.day_notional += notional
    open_buy, open_sell = _open(side, quantity)
    return store.ExposureChange(
        market,
        agent_pk=agent.pk,
        open_buy=open_buy,
        open_sell=open_sell,
        order_price=price,
        day=today,
        notional=notional,
        firm_day=store.FirmDay(firm.pk, today, firm.day_notional),
    )


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
    """An order now rests: count it (see `reservation`), now."""
    store.exposure_write(
        reservation(firm, agent, market, side, quantity, price, today=today, notional=notional)
    )


def release(agent: Agent, market: str, side: str, quantity: Decimal) -> None:
    """An order stopped resting (canceled, denied, expired): drop what was left of it."""
    if quantity <= 0:
        return
    buy, sell = _open(side, -quantity)
    store.exposure_write(
        store.ExposureChange(market, agent_pk=agent.pk, open_buy=buy, open_sell=sell)
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
    store.exposure_write(
        store.ExposureChange(
            market,
            agent_pk=agent.pk,
            position=position,
            open_buy=open_buy,
            open_sell=open_sell,
            last_price=price,
        )
    )


def set_position(agent: Agent, market: str, quantity: Decimal, price: Decimal) -> None:
    """A bot reported its absolute position in a market."""
    row = AgentMarketRisk.objects.select_for_update().filter(agent=agent, market=market).first()
    if row is None:
        agent_market_row(agent, market)
        row = AgentMarketRisk.objects.select_for_update().get(agent=agent, market=market)
    store.exposure_write(
        store.ExposureChange(market, position=quantity - row.position, last_price=price)
    )
    AgentMarketRisk.objects.filter(pk=row.pk).update(position=quantity)
