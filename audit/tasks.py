from __future__ import annotations

from celery import shared_task

# Celery's autodiscovery imports only `<app>.tasks`: this registers the webhook
# delivery tasks with every worker.
from .webhooks.tasks import webhook_deliver_task, webhook_sweep_task

__all__ = ["webhook_deliver_task", "webhook_sweep_task"]

from .services.log import Actor
from .services.verify import verify_and_record


@shared_task(name="audit.tasks.audit_verify_task")
def audit_verify_task() -> dict[str, object]:
    """Nightly verification; its result is itself recorded in the log."""
    return verify_and_record(actor=Actor.system("nightly-verify")).as_dict()


@shared_task(name="audit.tasks.checkpoint_create_task")
def checkpoint_create_task() -> int | None:
    """Beat: sign a checkpoint if the tree grew (or the heartbeat is due)."""
    from .services.checkpoints import checkpoint_create

    checkpoint = checkpoint_create()
    return checkpoint.tree_size if checkpoint else None


@shared_task(name="audit.tasks.log_export_task", acks_late=True)
def log_export_task(export_id: str) -> str | None:
    """Produce an evidence bundle; safe to run twice (the export is claimed)."""
    from .services.export import export_run

    export = export_run(export_id=export_id)
    return export.status if export else None


@shared_task(name="audit.tasks.log_verify_task", acks_late=True)
def log_verify_task(verification_id: str) -> str | None:
    """Run one verification asked for through the API; safe to run twice (claimed)."""
    from .services.verify import verification_run

    job = verification_run(verification_id=verification_id)
    return job.status if job else None


@shared_task(name="audit.tasks.audit_jobs_sweep_task")
def audit_jobs_sweep_task() -> int:
    """Beat: re-enqueue exports and verifications whose wake-up never reached a
    worker (the broker was down, the web process died after commit)."""
    from compliance_site.dispatch import publish

    from .services.export import exports_stale
    from .services.verify import verifications_stale

    exports, verifications = exports_stale(), verifications_stale()
    for export_id in exports:
        publish(log_export_task.name, export_id)
    for verification_id in verifications:
        publish(log_verify_task.name, verification_id)
    return len(exports) + len(verifications)
