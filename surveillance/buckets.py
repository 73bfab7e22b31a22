"""Time buckets of the per-agent order counters (AgentOrderCount): pure
arithmetic, shared by the counters' writers and the gate's snapshot
(surveillance.services.counters explains the scheme)."""

from __future__ import annotations

from .models import AgentOrderCount

SECOND_US = 1_000_000
WIDTHS_S = AgentOrderCount.WIDTHS_S

# (agent pk, width_s, start_us, orders, live, cancels): what a writer adds to a bucket.
CountRow = tuple[int, int, int, int, int, int]


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


def order_count_rows(agent_pk: int, created_at_us: int, *, live: bool) -> list[CountRow]:
    """What one new order adds to its agent's buckets."""
    return [(agent_pk, w, start, 1, int(live), 0) for w, start in bucket_starts(created_at_us)]
