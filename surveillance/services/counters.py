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

Writers: the gate counts each new order (under the firm lock, order_count_rows); the cancel
projection counts cancels (after the log head). Both in the transaction that
changes the orders, so the counters commit or roll back with them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from django.db import transaction

from audit.services import lock_head

from .. import store
from ..buckets import SECOND_US, WIDTHS_S, bucket_ranges, bucket_starts, order_count_rows
from ..models import AgentOrderCount, Order
from .risk import lock_firm

__all__ = [
    "RETENTION_US",
    "WIDTHS_S",
    "bucket_ranges",
    "bucket_starts",
    "counters_prune",
    "counters_rebuild",
    "counts_add_cancels",
    "order_count_rows",
]

# Buckets are never read further back than the longest surveillance window
# the config accepts (30 days) plus the widest bucket.
RETENTION_US = (30 * 86400 + 3600) * SECOND_US


def counts_add_cancels(canceled: Iterable[Order]) -> None:
    """Orders went from resting to canceled: count each in its creation buckets
    (inside the projection's transaction). Only live orders ever rest."""
    per_bucket: Counter[tuple[int, int, int]] = Counter()
    for order in canceled:
        for w, start in bucket_starts(order.created_at_us):
            per_bucket[(order.agent_id, w, start)] += 1
    store.counts_add([(a, w, s, 0, 0, n) for (a, w, s), n in sorted(per_bucket.items())])


@transaction.atomic
def counters_rebuild() -> None:
    """Recount every bucket from the orders table (after a restore, or after
    orders were written around the gate). Takes the firm lock and the log head,
    so no order or cancel commits meanwhile."""
    lock_firm()
    lock_head()
    store.counts_rebuild()


def counters_prune(*, now_us: int) -> int:
    """Delete buckets that no check can read any more (older than the longest
    window the config accepts). Returns how many were deleted."""
    deleted, _ = AgentOrderCount.objects.filter(start_us__lt=now_us - RETENTION_US).delete()
    return deleted
