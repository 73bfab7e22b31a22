"""Celery tasks for webhook delivery. The broker only wakes workers: the rows
live in the outbox, so a lost task delays a notice and loses none."""

from __future__ import annotations

from celery import shared_task

from .records import webhook_records_fanout
from .services import webhook_deliver, webhook_deliver_due


@shared_task(name="audit.webhooks.tasks.webhook_deliver_task")
def webhook_deliver_task(delivery_ids: list[int]) -> dict[str, int]:
    """Enqueued after the causing transaction commits: send these now."""
    return webhook_deliver(delivery_ids)


@shared_task(name="audit.webhooks.tasks.webhook_sweep_task")
def webhook_sweep_task() -> dict[str, int]:
    """Beat, every few seconds: queue the new records for their subscribers,
    then send what is due (new records, retries after backoff, rows whose
    wake-up was lost with the broker, rows whose worker died)."""
    webhook_records_fanout()
    return webhook_deliver_due()
