"""Celery tasks for surveillance. Each calls one service and can run twice
with one effect (the cycle locks its cursor and alerts have unique fingerprints)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from .services.cycle import surveillance_cycle

__all__ = ["surveillance_cycle_task"]


@shared_task(name="surveillance.tasks.surveillance_cycle_task")
def surveillance_cycle_task() -> dict[str, Any]:
    """Beat, every few seconds: feed the new records to the detectors. Bounded
    per run (MAX_RECORDS_PER_RUN); a backlog is taken over the next ticks."""
    return surveillance_cycle().as_dict()
