"""Celery tasks for reports and retention. Each calls one service and can run
twice with one effect (unique report key, conditional claims, purged flag)."""

from __future__ import annotations

from typing import Any

from celery import shared_task


@shared_task(name="reporting.tasks.report_generate_task", acks_late=True)
def report_generate_task(report_id: int) -> str:
    """Enqueued after a report is asked for; generates it unless already claimed."""
    from .services.reports import report_generate

    return report_generate(report_id=report_id).status


@shared_task(name="reporting.tasks.report_daily_trade_schedule_task")
def report_daily_trade_schedule_task() -> list[int]:
    """Beat, after each UTC day: yesterday's daily trade report (and missed days)."""
    from .services.reports import daily_trade_schedule

    return [r.pk for r in daily_trade_schedule()]


@shared_task(name="reporting.tasks.report_quarterly_schedule_task")
def report_quarterly_schedule_task() -> list[int]:
    """Beat, daily: the last quarter's report, created on the quarter's first day."""
    from .services.reports import quarterly_schedule

    return [r.pk for r in quarterly_schedule()]


@shared_task(name="reporting.tasks.report_sweep_task")
def report_sweep_task() -> int:
    """Beat: re-enqueue reports whose task was lost or whose worker died, and
    send the report emails still pending (or whose wake-up was lost)."""
    from .services.delivery import report_delivery_sweep
    from .services.reports import report_sweep

    report_delivery_sweep()
    return report_sweep()


@shared_task(name="reporting.tasks.report_delivery_send_task")
def report_delivery_send_task(delivery_id: int) -> str:
    """Enqueued after the delivery row commits: email the report now."""
    from .services.delivery import report_delivery_send

    return report_delivery_send(delivery_id=delivery_id)


@shared_task(name="reporting.tasks.retention_purge_task")
def retention_purge_task() -> dict[str, Any]:
    """Beat, daily: purge the payload of records past retention and outside every hold."""
    from audit.services import Actor

    from .services.retention import retention_purge

    return retention_purge(acting=Actor.system("retention-beat")).as_dict()
