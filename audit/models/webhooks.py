"""Webhook subscriptions, the outbox of messages to send, and every attempt.

Re-exported by audit.models. A message (`WebhookMessage`) is
written in the same transaction as the change that causes it, with one
`WebhookDelivery` per subscribed endpoint: that pair is the outbox. Workers
claim deliveries with a conditional UPDATE, send them outside any transaction
and log each try as a `WebhookAttempt`."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from compliance_site.fields import EncryptedTextField

__all__ = [
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookMessage",
    "WebhookRecordCursor",
]


class WebhookEndpoint(models.Model):
    """A receiver registered by a compliance officer. `secret` is the Standard
    Webhooks signing secret (`whsec_` + base64); it is shown once at creation
    and kept because every delivery must be signed with it: encrypted in the
    database (`EncryptedTextField`), plain on the instance. Disabled once it has
    failed for long enough (consecutive failures since `failing_since`), or at
    once when the receiver answers 410 Gone; its undelivered messages stay in
    the outbox and go out if it is enabled again."""

    url = models.URLField(max_length=2000)
    event_types = models.JSONField(default=list)
    secret = EncryptedTextField()
    description = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField(default=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    disabled_reason = models.CharField(max_length=200, blank=True, default="")
    records_from_seq = models.BigIntegerField(
        default=0, help_text="record subscriptions start with this seq (the log size at creation)"
    )
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook #{self.pk} {self.url}"


class WebhookMessage(models.Model):
    """One notification (the Standard Webhooks message). `msg_id` is the
    `webhook-id` header: the same on every retry and to every endpoint, so a
    receiver can drop duplicates. `body` is the exact JSON text that is signed
    and sent."""

    msg_id = models.CharField(max_length=64, unique=True)
    event_type = models.CharField(max_length=64)
    body = models.TextField()
    seq = models.BigIntegerField(null=True, blank=True, help_text="seq of the record it is about")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.msg_id} {self.event_type}"


class WebhookDelivery(models.Model):
    """Outbox row: one message to one endpoint. `pending` rows are due at
    `next_attempt_at`; a worker takes one by moving it to `sending` with a lease
    (`claimed_until`) in a conditional UPDATE, so two workers never send it at
    once and a worker that dies only delays it until the lease runs out."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed (receiver gone)"

    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    message = models.ForeignKey(WebhookMessage, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["endpoint", "message"], name="webhookdelivery_unique_per_endpoint"
            ),
            models.CheckConstraint(
                condition=~Q(status="delivered") | Q(delivered_at__isnull=False),
                name="webhookdelivery_delivered_at",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhookdelivery_due"),
            models.Index(fields=["status", "claimed_until"], name="webhookdelivery_lease"),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} of {self.message_id} to endpoint {self.endpoint_id}"


class WebhookAttempt(models.Model):
    """One try to send a delivery, whatever happened (HTTP status, timeout,
    refused address). Kept for the receiver's operator and the auditor."""

    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_log"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    webhook_timestamp = models.BigIntegerField(help_text="the webhook-timestamp header sent")
    status_code = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=16)  # delivered | http_error | timeout | error | refused
    error = models.TextField(blank=True, default="")
    response_excerpt = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["delivery", "number"], name="webhookattempt_delivery")]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}: {self.outcome}"


def notify_checkpoint(checkpoint: object) -> None:
    """Checkpoint hook (registered in AuditConfig.ready): push each new checkpoint.
    With a witness quorum, a checkpoint is pushed when it counts as published
    (audit.services.witnesses, once k witnesses cosigned it), not before."""
    from ..services.witnesses import quorum
    from ..webhooks.services import checkpoint_notify

    if quorum() == 0:
        checkpoint_notify(checkpoint)


class WebhookRecordCursor(models.Model):
    """How far the record stream has been fanned out to webhook subscribers:
    every record with seq <= `last_seq` of its log has its messages queued
    (or had no subscriber). One row per log, advanced under its row lock."""

    log = models.OneToOneField("audit.Log", on_delete=models.PROTECT, related_name="+")
    last_seq = models.BigIntegerField(default=-1)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"webhook record cursor at {self.last_seq}"
