"""Human decisions on held actions: the request, and the outbox of what must be
told about it. Approvals is generic: it knows a `kind` and a `subject_id`, never
what an order or a config change is (the owning app's resolver does)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Agent, User


class ApprovalRequest(models.Model):
    """A held action waiting for a compliance officer.

    `summary` is frozen at open time: the officer decides on what was asked, not
    on what the subject looks like later. Status only ever leaves `pending`
    once, through a conditional UPDATE in approvals.services, so a grant racing
    the expiry task has one winner. The constraints restate the invariants the
    services keep, so a bug elsewhere cannot store an impossible row: a decided
    request has a decision time, only humans grant or deny, and nothing is
    granted at or after its deadline."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        GRANTED = "granted", "Granted"
        DENIED = "denied", "Denied"
        EXPIRED = "expired", "Expired"

    kind = models.CharField(max_length=64)
    subject_id = models.CharField(max_length=128)
    summary = models.JSONField(default=dict)
    requested_by_user = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_by_agent = models.ForeignKey(
        Agent, on_delete=models.PROTECT, null=True, blank=True, related_name="approval_requests"
    )
    requested_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    decided_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "granted", "denied", "expired"]),
                name="approval_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("requested_at")),
                name="approval_expires_after_request",
            ),
            models.CheckConstraint(
                condition=(Q(status="pending") & Q(decided_at__isnull=True))
                | (~Q(status="pending") & Q(decided_at__isnull=False)),
                name="approval_decided_at_iff_decided",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["granted", "denied"]) | Q(decided_by__isnull=True),
                name="approval_decider_only_when_decided",
            ),
            models.CheckConstraint(
                condition=~Q(status="granted") | Q(decided_at__lt=F("expires_at")),
                name="approval_granted_before_expiry",
            ),
        ]
        indexes = [
            # The expiry sweep and the work queue: pending requests by deadline.
            models.Index(fields=["status", "expires_at"], name="approval_status_expiry"),
            models.Index(fields=["kind", "subject_id"], name="approval_kind_subject"),
        ]

    def __str__(self) -> str:
        return f"approval #{self.pk} {self.kind}:{self.subject_id} ({self.status})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING

    @property
    def effective_status(self) -> str:
        """What the request is, as read anywhere: a pending one whose deadline has
        passed is expired even before the expiry task (which needs the broker and
        a worker) writes APPROVAL_EXPIRED; a grant is refused past the deadline anyway."""
        if self.status == self.Status.PENDING and self.expires_at <= timezone.now():
            return self.Status.EXPIRED
        return str(self.status)

    def time_left(self, now: datetime | None = None) -> timedelta | None:
        """Time until the deadline for a pending request (negative when overdue
        and not yet swept), None once decided."""
        if not self.is_pending:
            return None
        return self.expires_at - (now or timezone.now())


class Notification(models.Model):
    """Outbox row: something that must be told about a request (by webhook or
    email), written in the same transaction as the transition. Workers deliver
    it after commit, so a broker or mail outage delays a notice and loses none.

    One row per (request, channel, event): a transition happens once, so a
    repeated task cannot queue a second notice."""

    class Channel(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        EMAIL = "email", "Email"

    approval = models.ForeignKey(
        ApprovalRequest, on_delete=models.PROTECT, related_name="notifications"
    )
    channel = models.CharField(max_length=16, choices=Channel.choices)
    event_type = models.CharField(max_length=64)
    seq = models.BigIntegerField(help_text="seq of the record this notice is about")
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["approval", "channel", "event_type"],
                name="notification_unique_per_transition",
            )
        ]
        indexes = [
            models.Index(fields=["channel", "sent_at", "created_at"], name="notification_unsent")
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event_type} for approval #{self.approval_id}"
