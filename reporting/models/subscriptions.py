"""Report subscriptions and their email deliveries.

Re-exported by reporting.models. A subscription names a report
(kind, format, regulator variant) and who receives it; each scheduled report
that matches is emailed once per subscription (`ReportDelivery`, unique per
report and subscription), written after the report is recorded and sent by a
worker outside any transaction, retried by the sweep."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import User

__all__ = ["ReportDelivery", "ReportSubscription"]


class ReportSubscription(models.Model):
    """Who receives which scheduled report, managed by compliance officers.
    Deactivated, never deleted: where reports went is evidence."""

    kind = models.CharField(max_length=32)
    format = models.CharField(max_length=8)
    regulator = models.CharField(max_length=32, blank=True, default="")
    recipients = models.JSONField(default=list)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["kind", "format", "is_active"], name="reportsub_match")]

    def __str__(self) -> str:
        variant = f" [{self.regulator}]" if self.regulator else ""
        return f"{self.kind} {self.format}{variant} -> {', '.join(self.recipients)}"


class ReportDelivery(models.Model):
    """One email of one report to one subscription's recipients (the outbox row)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    report = models.ForeignKey("reporting.Report", on_delete=models.PROTECT, related_name="+")
    subscription = models.ForeignKey(
        ReportSubscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    recipients = models.JSONField(default=list)
    method = models.CharField(max_length=16, blank=True, default="")  # attachment | link
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["report", "subscription"], name="reportdelivery_once_per_subscription"
            )
        ]
        indexes = [models.Index(fields=["status", "created_at"], name="reportdelivery_due")]

    def __str__(self) -> str:
        return f"report {self.report_id} to subscription {self.subscription_id} ({self.status})"
