"""Celery tasks for approvals. Each one calls one service and can run twice
with one effect (the services claim rows with conditional UPDATEs)."""

from __future__ import annotations

from celery import shared_task

from .services import approval_expire_due, notification_email_send, notification_email_send_pending


@shared_task(name="approvals.tasks.approval_expire_due_task")
def approval_expire_due_task() -> int:
    """Beat, every few seconds: expire due requests. Bounded per run (batches
    of claimed rows); whatever is left is taken by the next tick."""
    return approval_expire_due()


@shared_task(
    name="approvals.tasks.approval_notification_email_task",
    autoretry_for=(OSError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def approval_notification_email_task(notification_id: int) -> bool:
    """Enqueued after the request commits: mail the compliance officers."""
    return notification_email_send(notification_id=notification_id)


@shared_task(name="approvals.tasks.approval_notification_email_sweep_task")
def approval_notification_email_sweep_task() -> int:
    """Beat, every minute: mail the notices whose task never ran (broker down
    at commit) or whose worker died mid-send."""
    return notification_email_send_pending()
