"""Celery tasks for surveillance. Each calls one service and can run twice
with one effect (the cycle locks its cursor and alerts have unique fingerprints)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from audit.services import now_us

from .services.counters import counters_prune
from .services.cycle import surveillance_cycle

__all__ = ["order_counts_prune_task", "surveillance_cycle_task"]


@shared_task(name="surveillance.tasks.surveillance_cycle_task")
def surveillance_cycle_task() -> dict[str, Any]:
    """Beat, every few seconds: feed the new records to the detectors. Bounded
    per run (MAX_RECORDS_PER_RUN); a backlog is taken over the next ticks."""
    return surveillance_cycle().as_dict()


@shared_task(name="surveillance.tasks.order_counts_prune_task")
def order_counts_prune_task() -> int:
    """Beat, hourly: delete the gate's order-count buckets that no window can
    read any more. Running it twice deletes nothing the second time."""
    return counters_prune(now_us=now_us())
