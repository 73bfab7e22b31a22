"""The firm risk lock and exposure bookkeeping shared by the gate, the
projections and the kill switch.

Lock order, everywhere: FirmRisk -> approval row -> log head -> order / market
rows -> FirmExposure. The gate takes the firm lock first; the ingest path and
the approval resolvers only take rows after the log head, so no cycle can form.

Every change to a MarketRisk row goes through `_market_change`, which locks
the row and moves FirmExposure.gross by the change of the market's valued
exposure (worst reachable position times mark price), in the same
transaction: the gross is always the sum over the markets, exactly (numeric
arithmetic in PostgreSQL). The statements of one change travel together
(compliance_site.db.Batch): this runs under the log head, and for the gate under the firm lock."""

from __future__ import annotations

import decimal
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection

from accounts.models import Agent
from compliance_site.db import Batch, date_param, fetch_prepared

from ..checks import worst_position
from ..models import AgentMarketRisk, FirmExposure, FirmRisk, MarketRisk

# Exact products and sums of 30-digit decimals (the default context keeps 28 digits).
_EXACT = decimal.Context(prec=100)

# Table names are constants of the models, never input; every value is a parameter.
_M = MarketRisk._meta.db_table
_X = FirmExposure._meta.db_table
_AM = AgentMarketRisk._meta.db_table
_F = FirmRisk._meta.db_table
# A market's part of the gross exposure, as SQL over its row.
_VALUED = (
    "(CASE WHEN ABS(position + open_buy) >= ABS(position - open_sell)"
    " THEN ABS(position + open_buy) ELSE ABS(position - open_sell) END)"
    " * COALESCE(mark_price, 0)"
)


_FIRM_FIELDS = ["id", "name", "day", "day_notional", "config_version", "config_hash"]
_LOCK_FIRM_SQL = f"SELECT {', '.join(_FIRM_FIELDS)} FROM {_F} WHERE name = %s FOR UPDATE"  # noqa: S608


LOCK_FIRM = (_LOCK_FIRM_SQL, ["firm"])  # PostgreSQL; for a Batch of reads (the gate)


def firm_from_row(row: Any) -> FirmRisk:
    return FirmRisk.from_db(connection.alias, _FIRM_FIELDS, row)


def lock_firm() -> FirmRisk:
    """Lock the firm row (until commit) and return it. Every gate decision starts
    here, so on PostgreSQL it is a prepared statement, not an ORM query."""
    if connection.vendor == "postgresql":
        row = fetch_prepared(*LOCK_FIRM)
        if row is not None:
            return firm_from_row(row)
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
    worst = worst_position(row.position, row.open_buy, row.open_sell)
    return _EXACT.multiply(worst, row.mark_price or Decimal(0))


def gross_exposure_recompute() -> Decimal:
    """The gross exposure summed over every market (what FirmExposure keeps)."""
    total = Decimal(0)
    for row in MarketRisk.objects.all():
        total = _EXACT.add(total, valued_exposure(row))
    return total


def _market_change(
    batch: Batch,
    market: str,
    *,
    position: Decimal = Decimal(0),
    open_buy: Decimal = Decimal(0),
    open_sell: Decimal = Decimal(0),
    last_price: Decimal | None = None,
    order_price: Decimal | None = None,
    rows_exist: bool = False,
    head_held: bool = False,
) -> None:
    """Add to `batch` the change of one market's row and of the firm's gross
    exposure with it. A traded or reported `last_price` becomes the mark; an
    `order_price` only marks a market that has not traded yet. `rows_exist`:
    the caller saw the market's row and the gross row (rows are never deleted),
    so the statements that create missing ones are left out. `head_held`: the
    caller locked the log head before it sent any of this (every writer of
    market rows takes the head first, see the lock order above), so no other
    transaction can be changing the row and it needs no lock of its own."""
    if not rows_exist:
        batch.add(
            f"INSERT INTO {_M} (market, position, open_buy, open_sell) VALUES (%s, 0, 0, 0)"  # noqa: S608
            " ON CONFLICT (market) DO NOTHING",
            [market],
        )
    postgresql = connection.features.has_select_for_update
    if postgresql and not head_held:
        # The market's value read before the change must be the one changed:
        # locked by a statement of its own, so the next one starts after the lock.
        batch.add(f"SELECT id FROM {_M} WHERE market = %s FOR UPDATE", [market])  # noqa: S608
    if not rows_exist:
        # The gross row is missing only in a fresh (or flushed) database: start
        # it from the markets as they are before this change.
        batch.add(
            f"INSERT INTO {_X} (name, gross) SELECT 'firm', (SELECT COALESCE(SUM({_VALUED}), 0)"  # noqa: S608
            f" FROM {_M}) WHERE NOT EXISTS (SELECT 1 FROM {_X} WHERE name = 'firm')"
            " ON CONFLICT (name) DO NOTHING"
        )
    sets = ["position = position + %s", "open_buy = open_buy + %s", "open_sell = open_sell + %s"]
    params: list[Any] = [position, open_buy, open_sell]
    if last_price is not None:
        sets += ["last_price = %s", "mark_price = %s"]
        params += [last_price, last_price]
    elif order_price is not None:
        sets.append("mark_price = COALESCE(last_price, %s)")
        params.append(order_price)
    update = f"UPDATE {_M} SET {', '.join(sets)} WHERE market = %s"  # noqa: S608
    if postgresql:
        # One statement: the market's value before (the statement's snapshot,
        # taken after the row's lock above, or after the log head that every
        # writer of the row takes first) and after the change moves the gross.
        # Its WITH queries kept apart: the statement can join the batch's other
        # independent writes (none touches these two tables) in one.
        batch.add(
            f"UPDATE {_X} SET gross = gross - COALESCE((SELECT v FROM _market_before), 0)"  # noqa: S608
            " + (SELECT v FROM _market_after) WHERE name = 'firm'",
            [market, *params, market],
            independent=True,
            ctes=[
                ("_market_before", f"SELECT {_VALUED} AS v FROM {_M} WHERE market = %s"),  # noqa: S608
                ("_market_after", f"{update} RETURNING {_VALUED} AS v"),
            ],
        )
        return
    value = f"(SELECT {_VALUED} FROM {_M} WHERE market = %s)"  # noqa: S608
    batch.add(f"UPDATE {_X} SET gross = gross - {value} WHERE name = 'firm'", [market])  # noqa: S608
    batch.add(update, [*params, market])
    batch.add(f"UPDATE {_X} SET gross = gross + {value} WHERE name = 'firm'", [market])  # noqa: S608


def _agent_market_add(
    batch: Batch,
    agent_pk: int,
    market: str,
    *,
    position: Decimal = Decimal(0),
    open_buy: Decimal = Decimal(0),
    open_sell: Decimal = Decimal(0),
    day: date | None = None,
    notional: Decimal = Decimal(0),
) -> None:
    """Add to the agent's row in one market (created if missing), and with
    `day` to that day's notional (which restarts on a new day)."""
    day_sql = (
        f" day_notional = CASE WHEN {_AM}.day = excluded.day"
        f" THEN {_AM}.day_notional + excluded.day_notional ELSE excluded.day_notional END,"
        " day = excluded.day,"
        if day is not None
        else ""
    )
    batch.add(
        f"INSERT INTO {_AM} (agent_id, market, position, open_buy, open_sell, day, day_notional)"  # noqa: S608
        f" VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (agent_id, market) DO UPDATE SET"
        f"{day_sql} position = {_AM}.position + excluded.position,"
        f" open_buy = {_AM}.open_buy + excluded.open_buy,"
        f" open_sell = {_AM}.open_sell + excluded.open_sell",
        [agent_pk, market, position, open_buy, open_sell,
         date_param(day) if day is not None else None, notional],
        independent=True,
    )  # fmt: skip


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
    batch: Batch | None = None,
    rows_exist: bool = False,
    head_held: bool = False,
) -> None:
    """An order now rests (or waits for approval): count it in the exposure and
    the day's volume. Until the market trades, its exposure is valued at the
    latest order price. With `batch`, the statements join it (the caller runs
    it); without, they run now. `rows_exist`, `head_held`: see _market_change."""
    run, batch = batch is None, batch or Batch()
    field = _side_field(side)
    _market_change(
        batch,
        market,
        **{field: quantity},
        order_price=price,
        rows_exist=rows_exist,
        head_held=head_held,
    )
    _agent_market_add(batch, agent.pk, market, **{field: quantity}, day=today, notional=notional)
    if firm.day != today:
        firm.day, firm.day_notional = today, Decimal(0)
    firm.day_notional += notional
    batch.add(
        f"UPDATE {_F} SET day = %s, day_notional = %s WHERE id = %s",  # noqa: S608
        [date_param(today), firm.day_notional, firm.pk],
        independent=True,
    )
    if run:
        batch.run()


def release(agent: Agent, market: str, side: str, quantity: Decimal) -> None:
    """An order stopped resting (canceled, denied, expired): drop what was left of it."""
    if quantity <= 0:
        return
    buy, sell = (-quantity, Decimal(0)) if side == "buy" else (Decimal(0), -quantity)
    batch = Batch()
    _market_change(batch, market, open_buy=buy, open_sell=sell)
    _agent_market_add(batch, agent.pk, market, open_buy=buy, open_sell=sell)
    batch.run()


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
    batch = Batch()
    _market_change(
        batch, market, position=position, open_buy=open_buy, open_sell=open_sell, last_price=price
    )
    _agent_market_add(
        batch, agent.pk, market, position=position, open_buy=open_buy, open_sell=open_sell
    )
    batch.run()


def set_position(agent: Agent, market: str, quantity: Decimal, price: Decimal) -> None:
    """A bot reported its absolute position in a market."""
    row = AgentMarketRisk.objects.select_for_update().filter(agent=agent, market=market).first()
    if row is None:
        agent_market_row(agent, market)
        row = AgentMarketRisk.objects.select_for_update().get(agent=agent, market=market)
    batch = Batch()
    _market_change(batch, market, position=quantity - row.position, last_price=price)
    batch.run()
    AgentMarketRisk.objects.filter(pk=row.pk).update(position=quantity)
