"""Per-agent order counters in time buckets (AgentOrderCount), for the gate's
rate-limit and cancel-ratio checks.

The checks count an agent's orders created at or after an instant `since`
(now - 1 minute; now - surveillance window). That range is cut, exactly, into
  [since, next whole second)            -> counted from the orders table (under 1 s of orders),
  whole 1 s buckets up to the next minute  (at most 59 rows),
  whole 1 min buckets up to the next hour  (at most 59 rows),
  whole 1 h buckets from there on          (one per hour of the window),
so a decision reads O(window / 1 h + 120) small rows, never the agent's order
history, and gives the same counts as counting the orders themselves.

Writers: the gate counts each new order (under the firm lock); the cancel
projection counts cancels (after the log head). Both in the transaction that
changes the orders, so the counters commit or roll back with them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import connection, transaction

from audit.services import lock_head
from compliance_site.db import Batch

from ..models import AgentOrderCount, Order
from .risk import lock_firm

SECOND_US = 1_000_000
WIDTHS_S = AgentOrderCount.WIDTHS_S
# Buckets are never read further back than the longest surveillance window
# the config accepts (30 days) plus the widest bucket.
RETENTION_US = (30 * 86400 + 3600) * SECOND_US


def bucket_starts(at_us: int) -> list[tuple[int, int]]:
    """(width_s, start_us) of the three buckets an instant falls in."""
    return [(w, at_us - at_us % (w * SECOND_US)) for w in WIDTHS_S]


def _ceil(at_us: int, width_s: int) -> int:
    width_us = width_s * SECOND_US
    return -(-at_us // width_us) * width_us


def bucket_ranges(since_us: int) -> tuple[int, list[tuple[int, int, int | None]]]:
    """The edge [since, edge_end) left to the orders table, and the
    (width_s, first start, end start or None) bucket ranges that tile
    [edge_end, infinity) exactly."""
    edges = [_ceil(since_us, w) for w in WIDTHS_S]
    ranges: list[tuple[int, int, int | None]] = [
        (w, edges[i], edges[i + 1] if i + 1 < len(edges) else None) for i, w in enumerate(WIDTHS_S)
    ]
    return edges[0], ranges


def _upsert(rows: Iterable[tuple[int, int, int, int, int, int]], batch: Batch) -> None:
    """Add (agent_id, width_s, start_us, orders, live, cancels) to the buckets,
    creating the missing ones, in one statement (PostgreSQL and SQLite)."""
    rows = list(rows)
    if not rows:
        return
    table = AgentOrderCount._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(rows))
    batch.add(
        f"INSERT INTO {table} (agent_id, width_s, start_us, orders, live, cancels)"  # noqa: S608
        f" VALUES {values} ON CONFLICT (agent_id, width_s, start_us) DO UPDATE SET"
        f" orders = {table}.orders + excluded.orders, live = {table}.live + excluded.live,"
        f" cancels = {table}.cancels + excluded.cancels",
        [v for row in rows for v in row],
        independent=True,
    )


def counts_add_order(agent_pk: int, created_at_us: int, *, live: bool, batch: Batch) -> None:
    """The gate stored an order: count it (joins the gate's batch of writes)."""
    _upsert(
        ((agent_pk, w, start, 1, int(live), 0) for w, start in bucket_starts(created_at_us)),
        batch,
    )


def counts_add_cancels(canceled: Iterable[Order]) -> None:
    """Orders went from resting to canceled: count each in its creation buckets
    (inside the projection's transaction). Only live orders ever rest."""
    per_bucket: Counter[tuple[int, int, int]] = Counter()
    for order in canceled:
        for w, start in bucket_starts(order.created_at_us):
            per_bucket[(order.agent_id, w, start)] += 1
    batch = Batch()
    _upsert(((a, w, s, 0, 0, n) for (a, w, s), n in sorted(per_bucket.items())), batch)
    batch.run()


def _rebuild_sql(width_s: int) -> str:
    width_us = width_s * SECOND_US
    table, orders = AgentOrderCount._meta.db_table, Order._meta.db_table
    return (
        f"INSERT INTO {table} (agent_id, width_s, start_us, orders, live, cancels)"  # noqa: S608
        f" SELECT agent_id, {width_s}, (created_at_us / {width_us}) * {width_us}, COUNT(*),"
        " SUM(CASE WHEN decision <> 'rejected' THEN 1 ELSE 0 END),"
        " SUM(CASE WHEN decision <> 'rejected' AND status = 'canceled' THEN 1 ELSE 0 END)"
        f" FROM {orders} WHERE created_at_us >= 0"
        f" GROUP BY agent_id, (created_at_us / {width_us}) * {width_us}"
    )


REBUILD_SQL = [_rebuild_sql(w) for w in WIDTHS_S]


@transaction.atomic
def counters_rebuild() -> None:
    """Recount every bucket from the orders table (after a restore, or after
    orders were written around the gate). Takes the firm lock and the log head,
    so no order or cancel commits meanwhile."""
    lock_firm()
    lock_head()
    AgentOrderCount.objects.all().delete()
    with connection.cursor() as cursor:
        for sql in REBUILD_SQL:
            cursor.execute(sql)


def counters_prune(*, now_us: int) -> int:
    """Delete buckets that no check can read any more (older than the longest
    window the config accepts). Returns how many were deleted."""
    deleted, _ = AgentOrderCount.objects.filter(start_us__lt=now_us - RETENTION_US).delete()
    return deleted
