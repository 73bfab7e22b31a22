"""Hand-written SQL of the surveillance app (HOUSE_STYLE: only in <app>/store.py).

The gate runs under the firm lock and the log head, which every order in the
firm waits for, so a decision is two round trips (`gate_lock_and_read`,
`gate_write`), each statement prepared once per connection. The ingest
projections and the surveillance cycle read and write in bulk. Everything
else in surveillance uses the ORM.

Named statements (their docstrings or comments say why each is not the ORM):
`LOCK_FIRM_SQL`, `SNAPSHOT_SQL`, `ORDER_INSERT_SQL`, the exposure and counter
upserts (`_exposure_statements`, `_counts_statement`), `REBUILD_SQL`,
`LOCK_ORDERS_SQL`, `IN_FORCE_SQL`, `TRADING_SQL`.

Table names are constants of the models, never input; every value is a parameter."""

from __future__ import annotations

import decimal
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import F

from accounts.models import Agent
from audit.services import Appended, LogClaim, PendingRecord
from compliance_site.db import Batch, copy_rows, fetch_prepared, insert_new

from .buckets import WIDTHS_S, CountRow, bucket_ranges, bucket_starts
from .checks import AgentLimits, Exposure, Intent, RiskSnapshot, kill_switch_keys, worst_position
from .config import Limits
from .models import (
    AgentMarketRisk,
    AgentOrderCount,
    AgentRiskLimit,
    ComplianceConfigVersion,
    DetectorState,
    Fill,
    FirmExposure,
    FirmRisk,
    GateBypass,
    KillSwitch,
    MarketRisk,
    Order,
)

_O = Order._meta.db_table
_C = AgentOrderCount._meta.db_table
_M = MarketRisk._meta.db_table
_X = FirmExposure._meta.db_table
_AM = AgentMarketRisk._meta.db_table
_F = FirmRisk._meta.db_table

# Exact products and sums of 30-digit decimals (the default context keeps 28 digits).
_EXACT = decimal.Context(prec=100)


def _postgresql() -> bool:
    return bool(transaction.get_connection().vendor == "postgresql")


def _today() -> date:
    return datetime.now(UTC).date()


# --- the firm lock ---------------------------------------------------------------------

FIRM_FIELDS = ("id", "name", "day", "day_notional", "config_version", "config_hash")
# Every gate decision starts here: a prepared statement, not an ORM query.
LOCK_FIRM_SQL = f"SELECT {', '.join(FIRM_FIELDS)} FROM {_F} WHERE name = %s FOR UPDATE"  # noqa: S608


def lock_firm() -> FirmRisk:
    """Lock the firm row (until commit) and return it."""
    if _postgresql():
        row = fetch_prepared(LOCK_FIRM_SQL, ["firm"])
        if row is not None:
            return FirmRisk.from_db(DEFAULT_DB_ALIAS, FIRM_FIELDS, row)
    firm = FirmRisk.objects.select_for_update().filter(name="firm").first()
    if firm is None:
        FirmRisk.objects.get_or_create(name="firm")
        firm = FirmRisk.objects.select_for_update().get(name="firm")
    return firm


# --- the snapshot the gate's checks read ------------------------------------------------
# One statement whose cost does not grow with history: the market's row, the
# agent's row in that market and its day's notional, the firm's gross exposure
# (FirmExposure), the kill switches that concern this order, the agent's order
# counts (AgentOrderCount buckets plus under a second of orders, see
# surveillance.services.counters) and the duplicate-order probe (index
# order_shape). The ORM would spend longer building these subqueries than the
# database runs them; planning it cost about four times executing it. It must
# run as its own statement after the locks: a statement sees the data committed
# when it started, so one that waited for a lock would miss what the previous
# holder committed. SQLite runs it too: through the ORM, its twelve queries
# took half of a held order's 30 ms there (`make run`'s database).


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

SNAPSHOT_SQL = (
    "SELECT m.position, m.open_buy, m.open_sell, m.mark_price, m.last_price,"  # noqa: S608
    " am.position, am.open_buy, am.open_sell,"
    " lim.id, lim.max_position, lim.max_order_notional, lim.max_daily_notional,"
    " lim.max_orders_per_minute,"
    f" (SELECT SUM(day_notional) FROM {_AM}"
    "   WHERE agent_id = %(agent)s AND day = %(today)s),"
    f" (SELECT gross FROM {_X} WHERE name = 'firm'),"
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
    f" LEFT JOIN {_M} m ON m.market = %(market)s"
    f" LEFT JOIN {_AM} am ON am.agent_id = %(agent)s AND am.market = %(market)s"
    f" LEFT JOIN {AgentRiskLimit._meta.db_table} lim ON lim.agent_id = %(agent)s"
    # Live orders and their cancels in the surveillance window (the cancel ratio).
    " CROSS JOIN (SELECT SUM(live) AS live, SUM(cancels) AS cancels FROM ("
    f"   SELECT SUM({_LIVE}) AS live, SUM({_CANCELED}) AS cancels FROM {_O}"
    "   WHERE agent_id = %(agent)s AND created_at_us >= %(w_since)s AND created_at_us < %(w1)s"
    + _bucket_sums("SUM(live), SUM(cancels)", "w")
    + " ) u) w"
)


# The one part that differs: SQLite before 3.44 (Debian 12's) has no string_agg.
# (Order ids cannot hold a comma: audit.event_types.ID.)
SNAPSHOT_SQL_SQLITE = SNAPSHOT_SQL.replace("{cancel_ids}", "group_concat(order_id, ',')")
SNAPSHOT_SQL = SNAPSHOT_SQL.replace("{cancel_ids}", "string_agg(order_id, ',')")


MINUTE_US = 60_000_000


@dataclass(frozen=True)
class SnapshotQuery:
    """What the checks need read for one intent. `window_secs`: the
    cancel-ratio window, the config's surveillance window unless given.
    `exclude`: the order an amendment replaces (no duplicate check then)."""

    agent: Agent
    intent: Intent
    limits: Limits
    now: int
    window_secs: int | None = None
    exclude: Order | None = None


def _window_params(prefix: str, since_us: int) -> dict[str, int]:
    edge, ranges = bucket_ranges(since_us)
    params = {f"{prefix}_since": since_us, f"{prefix}1": edge}
    for width, first, _ in ranges:
        params[f"{prefix}{width}"] = first
    return params


def _snapshot_params(q: SnapshotQuery) -> dict[str, Any]:
    lim, intent = q.limits, q.intent
    window_secs = q.window_secs
    if window_secs is None:
        window_secs = int(lim.raw.get("surveillance_window_secs", 3600))
    dup = q.exclude is None and lim.duplicate_window_us > 0
    params: dict[str, Any] = {
        "agent": q.agent.pk,
        "agent_id": q.agent.agent_id,
        "market": intent.market,
        "side": intent.side,
        "quantity": intent.quantity,
        "price": intent.price,
        "today": _today(),
        "active": True,
        "dup": int(dup),
        "dup_since": q.now - lim.duplicate_window_us,
        **_window_params("r", q.now - MINUTE_US),
        **_window_params("w", q.now - window_secs * 1_000_000),
    }
    return params


# SQLite keeps decimals as floats, good to 15 significant digits: what Django
# reads from a DecimalField there. A sum's float noise (0.1 + 0.2) goes with it.
_SQLITE_FLOAT = decimal.Context(prec=15)


def _dec(value: Any) -> Decimal | None:
    """PostgreSQL returns Decimals; SQLite ints or floats."""
    if value is None or isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return _SQLITE_FLOAT.create_decimal_from_float(value)
    return Decimal(value)


def _zero(value: Any) -> Decimal:
    return _dec(value) or Decimal(0)


def _snapshot_from_row(
    row: Any, q: SnapshotQuery, firm: FirmRisk
) -> tuple[RiskSnapshot, AgentRiskLimit | None]:
    agent, intent, exclude = q.agent, q.intent, q.exclude
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


def snapshot_read(q: SnapshotQuery, firm: FirmRisk) -> tuple[RiskSnapshot, AgentRiskLimit | None]:
    """Everything the checks need, read while the caller holds the firm lock,
    and the agent's risk limits row (None: no limits; read under the lock as
    agent_limits_set takes it)."""
    sql = SNAPSHOT_SQL if _postgresql() else SNAPSHOT_SQL_SQLITE
    return _snapshot_from_row(fetch_prepared(sql, _snapshot_params(q)), q, firm)


# --- exposure ---------------------------------------------------------------------------
# Every change to a MarketRisk row moves FirmExposure.gross by the change of the
# market's valued exposure (worst reachable position times mark price), in the
# same transaction and, on PostgreSQL, the same statement: the gross is always
# the sum over the markets, exactly (numeric arithmetic in PostgreSQL).

# A market's part of the gross exposure, as SQL over its row.
_VALUED = (
    "(CASE WHEN ABS(position + open_buy) >= ABS(position - open_sell)"
    " THEN ABS(position + open_buy) ELSE ABS(position - open_sell) END)"
    " * COALESCE(mark_price, 0)"
)


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


@dataclass(frozen=True)
class FirmDay:
    """The firm row's day and its notional so far, as they now stand."""

    firm_pk: int
    day: date
    day_notional: Decimal


@dataclass(frozen=True)
class ExposureChange:
    """A change of one market's row (and the gross with it), of the agent's
    row in that market (`agent_pk`; with `day`, that day's notional too), and
    of the firm's day (`firm_day`). A traded or reported `last_price` becomes
    the mark; an `order_price` only marks a market that has not traded yet."""

    market: str
    agent_pk: int | None = None
    position: Decimal = Decimal(0)
    open_buy: Decimal = Decimal(0)
    open_sell: Decimal = Decimal(0)
    last_price: Decimal | None = None
    order_price: Decimal | None = None
    day: date | None = None
    notional: Decimal = Decimal(0)
    firm_day: FirmDay | None = None


def _exposure_statements(
    batch: Batch, change: ExposureChange, *, rows_exist: bool = False, head_held: bool = False
) -> None:
    """Add the change's statements to `batch` (PostgreSQL). `rows_exist`: the caller saw
    the market's row and the gross row (rows are never deleted), so the
    statements that create missing ones are left out. `head_held`: the caller
    locked the log head before it sent any of this (every writer of market
    rows takes the head first), so no other transaction can be changing the
    row and it needs no lock of its own."""
    market = change.market
    if not rows_exist:
        batch.add(
            f"INSERT INTO {_M} (market, position, open_buy, open_sell) VALUES (%s, 0, 0, 0)"  # noqa: S608
            " ON CONFLICT (market) DO NOTHING",
            [market],
        )
    if not head_held:
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
    params: list[Any] = [change.position, change.open_buy, change.open_sell]
    if change.last_price is not None:
        sets += ["last_price = %s", "mark_price = %s"]
        params += [change.last_price, change.last_price]
    elif change.order_price is not None:
        sets.append("mark_price = COALESCE(last_price, %s)")
        params.append(change.order_price)
    update = f"UPDATE {_M} SET {', '.join(sets)} WHERE market = %s"  # noqa: S608
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
    if change.agent_pk is not None:
        day_sql = (
            f" day_notional = CASE WHEN {_AM}.day = excluded.day"
            f" THEN {_AM}.day_notional + excluded.day_notional ELSE excluded.day_notional END,"
            " day = excluded.day,"
            if change.day is not None
            else ""
        )
        batch.add(
            f"INSERT INTO {_AM} (agent_id, market, position, open_buy, open_sell, day,"  # noqa: S608
            f" day_notional) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            f" ON CONFLICT (agent_id, market) DO UPDATE SET"
            f"{day_sql} position = {_AM}.position + excluded.position,"
            f" open_buy = {_AM}.open_buy + excluded.open_buy,"
            f" open_sell = {_AM}.open_sell + excluded.open_sell",
            [change.agent_pk, market, change.position, change.open_buy, change.open_sell,
             change.day, change.notional],
            independent=True,
        )  # fmt: skip
    if change.firm_day is not None:
        firm_day = change.firm_day
        batch.add(
            f"UPDATE {_F} SET day = %s, day_notional = %s WHERE id = %s",  # noqa: S608
            [firm_day.day, firm_day.day_notional, firm_day.firm_pk],
            independent=True,
        )


def _exposure_orm(change: ExposureChange) -> None:
    """`_exposure_statements` through the ORM (SQLite, whose database is locked
    for writing from BEGIN IMMEDIATE: the rows read here cannot change before
    the writes). The gross moves by the market's value after minus before,
    computed exactly."""
    row, _ = MarketRisk.objects.get_or_create(market=change.market)
    exposure = FirmExposure.objects.filter(name="firm").first()
    if exposure is None:  # a fresh database: from the markets as they are
        exposure = FirmExposure.objects.create(name="firm", gross=gross_exposure_recompute())
    before = valued_exposure(row)
    row.position += change.position
    row.open_buy += change.open_buy
    row.open_sell += change.open_sell
    if change.last_price is not None:
        row.last_price = row.mark_price = change.last_price
    elif change.order_price is not None:
        row.mark_price = row.last_price if row.last_price is not None else change.order_price
    row.save(update_fields=["position", "open_buy", "open_sell", "last_price", "mark_price"])
    gross = _EXACT.add(_EXACT.subtract(exposure.gross, before), valued_exposure(row))
    FirmExposure.objects.filter(pk=exposure.pk).update(gross=gross)
    if change.agent_pk is not None:
        mine, _ = AgentMarketRisk.objects.get_or_create(
            agent_id=change.agent_pk, market=change.market
        )
        updates: dict[str, Any] = {
            "position": F("position") + change.position,
            "open_buy": F("open_buy") + change.open_buy,
            "open_sell": F("open_sell") + change.open_sell,
        }
        if change.day is not None:
            same_day = mine.day == change.day
            updates["day"] = change.day
            updates["day_notional"] = (
                F("day_notional") + change.notional if same_day else change.notional
            )
        AgentMarketRisk.objects.filter(pk=mine.pk).update(**updates)
    if change.firm_day is not None:
        FirmRisk.objects.filter(pk=change.firm_day.firm_pk).update(
            day=change.firm_day.day, day_notional=change.firm_day.day_notional
        )


def exposure_write(change: ExposureChange) -> None:
    """Apply one exposure change now (one round trip on PostgreSQL)."""
    if not _postgresql():
        _exposure_orm(change)
        return
    batch = Batch()
    _exposure_statements(batch, change)
    batch.run()


# --- order counters ---------------------------------------------------------------------


def _counts_statement(batch: Batch, rows: Sequence[CountRow]) -> None:
    """Add rows to the buckets, creating the missing ones, in one statement."""
    if not rows:
        return
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    batch.add(
        f"INSERT INTO {_C} (agent_id, width_s, start_us, orders, live, cancels)"  # noqa: S608
        f" VALUES {values} ON CONFLICT (agent_id, width_s, start_us) DO UPDATE SET"
        f" orders = {_C}.orders + excluded.orders, live = {_C}.live + excluded.live,"
        f" cancels = {_C}.cancels + excluded.cancels",
        [v for row in rows for v in row],
        independent=True,
    )


def counts_add(rows: Sequence[CountRow]) -> None:
    """Add to the order counters now."""
    batch = Batch()
    _counts_statement(batch, rows)
    batch.run()


def _rebuild_sql(width_s: int) -> str:
    width_us = width_s * 1_000_000
    return (
        f"INSERT INTO {_C} (agent_id, width_s, start_us, orders, live, cancels)"  # noqa: S608
        f" SELECT agent_id, {width_s}, (created_at_us / {width_us}) * {width_us}, COUNT(*),"
        f" SUM({_LIVE}), SUM({_CANCELED})"
        f" FROM {_O} WHERE created_at_us >= 0"
        f" GROUP BY agent_id, (created_at_us / {width_us}) * {width_us}"
    )


REBUILD_SQL = [_rebuild_sql(w) for w in WIDTHS_S]


def counts_rebuild() -> None:
    """Recount every bucket from the orders table (the caller holds the locks)."""
    AgentOrderCount.objects.all().delete()
    if not _postgresql():
        per_bucket: dict[tuple[int, int, int], list[int]] = {}
        for agent_pk, created_at_us, decision, status in Order.objects.filter(
            created_at_us__gte=0
        ).values_list("agent_id", "created_at_us", "decision", "status"):
            live = int(decision != "rejected")
            for width_s, start_us in bucket_starts(created_at_us):
                counts = per_bucket.setdefault((agent_pk, width_s, start_us), [0, 0, 0])
                counts[0] += 1
                counts[1] += live
                counts[2] += int(live and status == Order.Status.CANCELED)
        AgentOrderCount.objects.bulk_create(
            AgentOrderCount(agent_id=a, width_s=w, start_us=s, orders=o, live=li, cancels=c)
            for (a, w, s), (o, li, c) in sorted(per_bucket.items())
        )
        return
    with connection.cursor() as cursor:
        for sql in REBUILD_SQL:
            cursor.execute(sql)


# --- the gate's unit of work ------------------------------------------------------------


@dataclass
class GateRead:
    """What a gate decision read under its locks: the firm row (locked), the
    config in force, the log head (claimed, `log`), the snapshot for the
    checks and the agent's risk limits row."""

    firm: FirmRisk
    limits: Limits
    log: LogClaim
    snapshot: RiskSnapshot
    limit_row: AgentRiskLimit | None


# The limits of the last decision: the snapshot's statement needs the config's
# windows before the firm row names the config in force; almost always the same.
_last_limits: list[Limits] = []


def gate_lock_and_read(
    agent: Agent, intent: Intent, now: int, limits_for: Callable[[FirmRisk], Limits]
) -> GateRead:
    """Lock the firm row, then the log head (the documented lock order), then
    read the snapshot: on PostgreSQL one pipelined round trip, each statement
    starting after the one before, so the snapshot sees what the previous lock
    holder committed. Under the head lock no fill or cancel moves the exposure
    between this read and the decision's writes. `limits_for`: the config in
    force named by the firm row (a config change since the last decision costs
    one more round trip, locks held)."""
    guess = _last_limits[0] if _last_limits else None
    if guess is not None and _postgresql():
        reads = Batch()
        firm_at = reads.add(LOCK_FIRM_SQL, ["firm"], fetch=True)
        log = LogClaim.queue(reads)
        query = SnapshotQuery(agent, intent, guess, now)
        snap_at = reads.add(SNAPSHOT_SQL, _snapshot_params(query), fetch=True)
        rows = reads.run()
        if rows[firm_at] is not None:
            firm = FirmRisk.from_db(DEFAULT_DB_ALIAS, FIRM_FIELDS, rows[firm_at])
            lim = limits_for(firm)
            if lim is guess:
                snap, limit_row = _snapshot_from_row(rows[snap_at], query, firm)
            else:
                snap, limit_row = snapshot_read(SnapshotQuery(agent, intent, lim, now), firm)
                _last_limits[:] = [lim]
            return GateRead(firm, lim, log, snap, limit_row)
    firm = lock_firm()
    lim = limits_for(firm)
    _last_limits[:] = [lim]
    reads = Batch()
    log = LogClaim.queue(reads)
    reads.run()
    snap, limit_row = snapshot_read(SnapshotQuery(agent, intent, lim, now), firm)
    return GateRead(firm, lim, log, snap, limit_row)


_ORDER_FIELDS = [f for f in Order._meta.concrete_fields if not f.primary_key]
# The gate's new order. Named, not Model.save(): it travels in the decision's
# one round trip of writes, fused with the records' INSERT.
ORDER_INSERT_SQL = (
    f"INSERT INTO {_O} ({', '.join(str(f.column) for f in _ORDER_FIELDS)})"  # noqa: S608
    f" VALUES ({', '.join(['%s'] * len(_ORDER_FIELDS))}) RETURNING {Order._meta.pk.column}"
)


@dataclass
class GateWritePlan:
    """A gate decision's writes: its records (appended through `log`), the
    order (unsaved; its seq is the first record's), what it adds to the
    agent's order counters, the exposure it reserves (None when rejected),
    and whether the COMMIT travels with them (the decision's last write)."""

    log: LogClaim
    records: list[PendingRecord]
    order: Order
    counts: list[CountRow]
    exposure: ExposureChange | None
    rows_exist: bool
    commit: bool
    appended: list[Appended] = field(default_factory=list)


def gate_write(plan: GateWritePlan) -> Order:
    """Send the plan in one round trip (with the COMMIT when `plan.commit`):
    the records, the order, its counters, the agent's and the firm's rows, as
    one fused statement where they are independent. Returns the stored order;
    `plan.appended` holds the records. A taken order_id or event_id fails
    here with IntegrityError, and the caller's transaction rolls back."""
    writes = Batch()
    plan.appended = plan.log.append(plan.records, writes)
    order = plan.order
    order.seq = plan.appended[0].seq
    if not _postgresql():
        _counts_statement(writes, plan.counts)
        writes.run()
        order.save(force_insert=True)
        if plan.exposure is not None:
            _exposure_orm(plan.exposure)
        return order
    values = [getattr(order, f.attname) for f in _ORDER_FIELDS]
    inserted = writes.add(
        ORDER_INSERT_SQL,
        [f.get_db_prep_save(v, connection) for f, v in zip(_ORDER_FIELDS, values, strict=True)],
        fetch=True,
        independent=True,
    )
    _counts_statement(writes, plan.counts)
    if plan.exposure is not None:
        _exposure_statements(writes, plan.exposure, rows_exist=plan.rows_exist, head_held=True)
    writes.run(commit=plan.commit)
    (pk,) = writes.results[inserted]
    stored = Order.from_db(
        DEFAULT_DB_ALIAS,
        [Order._meta.pk.attname, *(f.attname for f in _ORDER_FIELDS)],
        [pk, *values],
    )
    stored.agent = order.agent
    if order.submitted_by_id is not None:
        stored.submitted_by = order.submitted_by
    return stored


# --- the ingest projections -------------------------------------------------------------

_ORDER_ATTNAMES = [f.attname for f in Order._meta.concrete_fields]
_ORDER_COLUMNS = ", ".join(str(f.column) for f in Order._meta.concrete_fields)
# Every ingest batch with fills or cancels runs it under the log head lock: one
# prepared statement whatever the number of ids.
LOCK_ORDERS_SQL = (
    f"SELECT {_ORDER_COLUMNS} FROM {_O} WHERE agent_id = %s"  # noqa: S608
    " AND order_id = ANY(%s) ORDER BY id FOR UPDATE"
)


def orders_locked(agent_pk: int, order_ids: Iterable[str]) -> list[Order]:
    """The agent's orders with these ids, locked, in pk order."""
    ids = sorted(order_ids)
    if not ids:
        return []
    if _postgresql():
        rows = fetch_prepared(LOCK_ORDERS_SQL, [agent_pk, ids], every_row=True)
        return [Order.from_db(DEFAULT_DB_ALIAS, _ORDER_ATTNAMES, row) for row in rows]
    # SQLite: the database is locked for writing already
    return list(Order.objects.filter(agent_id=agent_pk, order_id__in=ids).order_by("id"))


# The active kill switches and (scope '') the config version in force, in one
# round trip: the ingest path runs it under the log head, once per batch with fills.
IN_FORCE_SQL = (
    f"SELECT scope, target FROM {KillSwitch._meta.db_table} WHERE active = %s"  # noqa: S608
    " UNION ALL SELECT '', CAST(version AS TEXT) || ':' || hash FROM"
    f" (SELECT version, hash FROM {ComplianceConfigVersion._meta.db_table}"
    " ORDER BY version DESC LIMIT 1) v"
)


def in_force() -> tuple[set[tuple[str, str]], str | None]:
    """The active kill switches (scope, target), and the config version in
    force as "version:hash" (None: no version yet)."""
    if not _postgresql():
        latest = (
            ComplianceConfigVersion.objects.order_by("-version").values_list("version", "hash")
        ).first()
        return (
            set(KillSwitch.objects.filter(active=True).values_list("scope", "target")),
            f"{latest[0]}:{latest[1]}" if latest is not None else None,
        )
    rows = fetch_prepared(IN_FORCE_SQL, [True], every_row=True) or []
    switches = {(scope, target) for scope, target in rows if scope}
    return switches, next((target for scope, target in rows if not scope), None)


FILL_COLUMNS = (
    "agent_id", "order_id", "order_ref", "fill_id", "market", "side", "quantity", "price",
    "seq", "recorded_at_us",
)  # fmt: skip
FILL_KEY = ("order_ref", "fill_id")


def fills_insert_new(rows: Sequence[Sequence[Any]]) -> set[tuple[Any, ...]]:
    """Insert the fills (FILL_COLUMNS order) whose (order_ref, fill_id) is
    new; return the keys of those inserted."""
    return insert_new(Fill, FILL_COLUMNS, rows, returning=FILL_KEY)


BYPASS_COLUMNS = (
    "agent_id", "order_ref", "order_id", "event_type", "reasons", "detail", "market", "side",
    "quantity", "price", "seq", "order_seq", "recorded_at_us",
)  # fmt: skip


def gate_bypasses_insert(rows: Iterable[Sequence[Any]]) -> None:
    """Insert GateBypass evidence rows (tuples in BYPASS_COLUMNS order; reasons
    as a list). An overfilled order makes one per fill: a model instance each
    through bulk_create cost about 60 us of the web worker, a tuple through
    COPY about 9 us."""
    copy_rows(GateBypass, BYPASS_COLUMNS, rows)


# --- the surveillance cycle -------------------------------------------------------------

TRADING_SQL = (
    "SELECT seq, event_type, agent_id, recorded_at_us, body FROM {table}"
    " WHERE log_id = %s AND seq > %s AND seq <= %s AND event_type IN ({types}) AND purged = %s"
)


def trading_records(
    log_id: int, after: int, upto: int, types: Sequence[str]
) -> list[tuple[int, str, str | None, int, str | None]]:
    """The records of these types in (after, upto], unsorted, as plain tuples:
    tens of thousands of rows per chunk, where the ORM's per-row iteration
    cost more than the query."""
    from audit.models import Record

    if not _postgresql():
        return list(
            Record.objects.filter(
                log_id=log_id, seq__gt=after, seq__lte=upto, event_type__in=types, purged=False
            ).values_list("seq", "event_type", "agent_id", "recorded_at_us", "body")
        )
    sql = TRADING_SQL.format(table=Record._meta.db_table, types=", ".join(["%s"] * len(types)))
    with connection.cursor() as cursor:
        cursor.execute(sql, [log_id, after, upto, *types, False])
        rows: list[tuple[int, str, str | None, int, str | None]] = cursor.fetchall()
    return rows


STATE_COLUMNS = ("detector", "key", "state", "last_seq", "active_until_us")


def detector_states_copy(rows: Iterable[Sequence[Any]]) -> None:
    """Insert detector state rows (STATE_COLUMNS order): by COPY on
    PostgreSQL, hundreds of rows per chunk, each with its JSON state."""
    copy_rows(DetectorState, STATE_COLUMNS, rows)
