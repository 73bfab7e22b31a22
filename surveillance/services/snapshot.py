"""What the gate's checks read while it holds the firm lock: one statement.

Every order in the firm waits for the lock, so what runs under it is kept to
one round trip whose cost does not grow with history: the market's row, the
agent's row in that market and its day's notional, the firm's gross exposure
(FirmExposure), the kill switches that concern this order, the agent's order
counts (AgentOrderCount buckets plus under a second of orders, see
surveillance.services.counters) and the duplicate-order probe (index
order_shape). Plain SQL that PostgreSQL and SQLite both run: the ORM would
spend longer building these subqueries than the database runs them; on
PostgreSQL a prepared statement, as planning it cost about four times
executing it (the gate sends it after its two locks, in one round trip).

It must run as its own statement after the lock is taken: a statement sees
the data committed when it started, so one that waited for the lock would
miss what the previous holder committed."""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from accounts.models import Agent
from compliance_site.db import fetch_prepared

from ..checks import AgentLimits, Exposure, Intent, RiskSnapshot, kill_switch_keys
from ..config import Limits
from ..models import (
    AgentMarketRisk,
    AgentOrderCount,
    AgentRiskLimit,
    FirmExposure,
    FirmRisk,
    KillSwitch,
    MarketRisk,
    Order,
)
from .counters import bucket_ranges
from .risk import gross_exposure_recompute

MINUTE_US = 60_000_000

_O = Order._meta.db_table
_C = AgentOrderCount._meta.db_table


def _bucket_sums(columns: str, prefix: str) -> str:
    """UNION ALL branches adding up the buckets that tile [edge, infinity)."""
    return (
        f" UNION ALL SELECT {columns} FROM {_C} WHERE agent_id = %(agent)s AND width_s = 1"  # noqa: S608
        f" AND start_us >= %({prefix}1)s AND start_us < %({prefix}60)s"
        f" UNION ALL SELECT {columns} FROM {_C} WHERE agent_id = %(agent)s AND width_s = 60"
        f" AND start_us >= %({prefix}60)s AND start_us < %({prefix}3600)s"
        f" UNION ALL SELECT {columns} FROM {_C} WHERE agent_id = %(agent)s AND width_s = 3600"
        f" AND start_us >= %({prefix}3600)s"
    )


_LIVE = "CASE WHEN decision <> 'rejected' THEN 1 ELSE 0 END"
_CANCELED = "CASE WHEN decision <> 'rejected' AND status = 'canceled' THEN 1 ELSE 0 END"

# Table names are constants of the models, never input; every value is a parameter.
SNAPSHOT_SQL = (
    "SELECT m.position, m.open_buy, m.open_sell, m.mark_price, m.last_price,"  # noqa: S608
    " am.position, am.open_buy, am.open_sell,"
    " lim.id, lim.max_position, lim.max_order_notional, lim.max_daily_notional,"
    " lim.max_orders_per_minute,"
    f" (SELECT SUM(day_notional) FROM {AgentMarketRisk._meta.db_table}"
    "   WHERE agent_id = %(agent)s AND day = %(today)s),"
    f" (SELECT gross FROM {FirmExposure._meta.db_table} WHERE name = 'firm'),"
    # At most one active switch per scope and target: the sum is a bit mask.
    " (SELECT SUM(CASE WHEN scope = 'global' THEN 1 WHEN scope = 'agent' THEN 2 ELSE 4 END)"
    f"   FROM {KillSwitch._meta.db_table} WHERE active = %(active)s"
    "   AND ((scope = 'global' AND target = '') OR (scope = 'agent' AND target = %(agent_id)s)"
    "   OR (scope = 'market' AND target = %(market)s))),"
    # Orders in the last minute, every decision (the rate limit).
    " (SELECT SUM(n) FROM ("
    f"   SELECT COUNT(*) AS n FROM {_O} WHERE agent_id = %(agent)s"
    "   AND created_at_us >= %(r_since)s AND created_at_us < %(r1)s"
    + _bucket_sums("SUM(orders)", "r")
    + " ) r),"  # noqa: S608
    " w.live, w.cancels,"
    " CASE WHEN %(dup)s = 1 AND EXISTS ("
    f"   SELECT 1 FROM {_O} WHERE agent_id = %(agent)s AND market = %(market)s"
    "   AND price = %(price)s AND created_at_us >= %(dup_since)s AND side = %(side)s"
    "   AND quantity = %(quantity)s AND decision <> 'rejected') THEN 1 ELSE 0 END,"
    # The agent's resting orders a person asked to cancel (index order_cancel_pending,
    # empty unless one is pending): the gate's answer carries them (cancel_orders).
    f" (SELECT {{cancel_ids}} FROM {_O} WHERE agent_id = %(agent)s"
    "   AND cancel_requested_at_us IS NOT NULL"
    "   AND status IN ('pending_approval', 'open', 'partially_filled'))"
    " FROM (SELECT 1 AS one) base"
    f" LEFT JOIN {MarketRisk._meta.db_table} m ON m.market = %(market)s"
    f" LEFT JOIN {AgentMarketRisk._meta.db_table} am"
    "   ON am.agent_id = %(agent)s AND am.market = %(market)s"
    f" LEFT JOIN {AgentRiskLimit._meta.db_table} lim ON lim.agent_id = %(agent)s"
    # Live orders and their cancels in the surveillance window (the cancel ratio).
    " CROSS JOIN (SELECT SUM(live) AS live, SUM(cancels) AS cancels FROM ("
    f"   SELECT SUM({_LIVE}) AS live, SUM({_CANCELED}) AS cancels FROM {_O}"
    "   WHERE agent_id = %(agent)s AND created_at_us >= %(w_since)s AND created_at_us < %(w1)s"
    + _bucket_sums("SUM(live), SUM(cancels)", "w")
    + " ) u) w"
)


@functools.cache
def snapshot_sql(vendor: str) -> str:
    """SNAPSHOT_SQL for this database: the aggregate that joins text differs.
    (Order ids cannot hold a comma: audit.event_types.ID.)"""
    join = "string_agg(order_id, ',')" if vendor == "postgresql" else "group_concat(order_id, ',')"
    return SNAPSHOT_SQL.replace("{cancel_ids}", join)


def _dec(value: Any) -> Decimal | None:
    """PostgreSQL returns Decimals; SQLite ints or floats (via their repr)."""
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _zero(value: Any) -> Decimal:
    return _dec(value) or Decimal(0)


def _window_params(prefix: str, since_us: int) -> dict[str, int]:
    edge, ranges = bucket_ranges(since_us)
    params = {f"{prefix}_since": since_us, f"{prefix}1": edge}
    for width, first, _ in ranges:
        params[f"{prefix}{width}"] = first
    return params


def _today() -> Any:
    return datetime.now(UTC).date()


def snapshot_for(
    agent: Agent,
    intent: Intent,
    lim: Limits,
    *,
    firm: FirmRisk,
    now: int,
    window_secs: int | None = None,
    exclude: Order | None = None,
) -> tuple[RiskSnapshot, AgentRiskLimit | None]:
    """Everything the checks need, read while the caller holds the firm lock,
    and the agent's risk limits row (None: no limits; read under the lock as
    agent_limits_set takes it). `window_secs`: the cancel-ratio window, the
    config's surveillance window unless given. `exclude`: the order an
    amendment replaces (no duplicate check then)."""
    row = fetch_prepared(*snapshot_statement(agent, intent, lim, now, window_secs, exclude))
    return snapshot_from_row(row, agent, intent, firm, exclude)


def snapshot_statement(
    agent: Agent,
    intent: Intent,
    lim: Limits,
    now: int,
    window_secs: int | None = None,
    exclude: Order | None = None,
) -> tuple[str, dict[str, Any]]:
    """The snapshot's statement, for a caller that sends it in a Batch after
    its locks (the gate); its row goes to `snapshot_from_row`."""
    if window_secs is None:
        window_secs = int(lim.raw.get("surveillance_window_secs", 3600))
    today = _today()
    dup = exclude is None and lim.duplicate_window_us > 0
    params: dict[str, Any] = {
        "agent": agent.pk,
        "agent_id": agent.agent_id,
        "market": intent.market,
        "side": intent.side,
        "quantity": intent.quantity,
        "price": intent.price,
        "today": today if connection.vendor == "postgresql" else today.isoformat(),
        "active": True,
        "dup": int(dup),
        "dup_since": now - lim.duplicate_window_us,
        **_window_params("r", now - MINUTE_US),
        **_window_params("w", now - window_secs * 1_000_000),
    }
    return snapshot_sql(connection.vendor), params


def snapshot_from_row(
    row: Any, agent: Agent, intent: Intent, firm: FirmRisk, exclude: Order | None = None
) -> tuple[RiskSnapshot, AgentRiskLimit | None]:
    today = _today()
    (m_pos, m_buy, m_sell, mark, last, a_pos, a_buy, a_sell, limit_pk, *limits, agent_day,
     gross, switches, last_minute, live, cancels, duplicate, cancel_ids) = row  # fmt: skip
    limit_row = None
    if limit_pk is not None:
        max_position, max_order_notional, max_daily_notional, max_orders_per_minute = limits
        limit_row = AgentRiskLimit(
            pk=limit_pk,
            agent=agent,
            max_position=_dec(max_position),
            max_order_notional=_dec(max_order_notional),
            max_daily_notional=_dec(max_daily_notional),
            max_orders_per_minute=max_orders_per_minute,
        )
    market = Exposure(_zero(m_pos), _zero(m_buy), _zero(m_sell))
    agent_market = Exposure(_zero(a_pos), _zero(a_buy), _zero(a_sell))
    if exclude is not None and exclude.status in Order.RESTING:
        # An amendment replaces what is left of the order: take it out first.
        left = exclude.remaining
        for exp in (market, agent_market):
            if exclude.side == "buy":
                exp.open_buy -= left
            else:
                exp.open_sell -= left
    mask = int(switches or 0)
    kill_switches = {
        key
        for bit, key in zip((1, 2, 4), kill_switch_keys(agent.agent_id, intent.market), strict=True)
        if mask & bit
    }
    snapshot = RiskSnapshot(
        kill_switches=kill_switches,
        reference_price=_dec(last),
        market=market,
        market_price=_zero(mark),
        gross_exposure=_zero(gross) if gross is not None else gross_exposure_recompute(),
        firm_day_notional=firm.day_notional if firm.day == today else Decimal(0),
        duplicate=bool(duplicate),
        agent_orders_last_minute=int(last_minute or 0),
        agent_orders_in_window=int(live or 0),
        agent_cancels_in_window=int(cancels or 0),
        agent_market=agent_market,
        agent_day_notional=_zero(agent_day),
        agent_limits=agent_limits_of(limit_row),
        rows_exist=m_pos is not None and gross is not None,
        cancel_orders=sorted(cancel_ids.split(",")) if cancel_ids else [],
    )
    return snapshot, limit_row


def agent_limits_of(limit_row: AgentRiskLimit | None) -> AgentLimits:
    if limit_row is None:
        return AgentLimits()
    return AgentLimits(
        max_position=limit_row.max_position,
        max_order_notional=limit_row.max_order_notional,
        max_daily_notional=limit_row.max_daily_notional,
        max_orders_per_minute=limit_row.max_orders_per_minute,
    )
