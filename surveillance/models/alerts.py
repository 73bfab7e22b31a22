"""Surveillance alerts, the cycle's cursor and the detectors' incremental state.

Re-exported by surveillance.models; ordinary models of the surveillance app."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import User

__all__ = ["Alert", "AlertLogEntry", "DetectorState", "SurveillanceCursor"]


class Alert(models.Model):
    """A suspicious pattern found by a detector, and the analyst's case on it.

    `fingerprint` is unique: the cycle may be repeated or killed and rerun, and
    the same finding can never become a second alert. `evidence` lists the seqs
    of the records the detector used. The case moves open -> assigned ->
    (escalated) -> closed, only through surveillance.services.alerts, and each
    step is an ALERT_UPDATED record. The constraints restate the invariants:
    a closed alert has a disposition, a note and a closing time; an open one
    has none of them."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ASSIGNED = "assigned", "Assigned"
        ESCALATED = "escalated", "Escalated"
        CLOSED = "closed", "Closed"

    class Severity(models.TextChoices):
        LOW = "low", "Low"
        MEDIUM = "medium", "Medium"
        HIGH = "high", "High"
        CRITICAL = "critical", "Critical"

    class Disposition(models.TextChoices):
        FALSE_POSITIVE = "false_positive", "False positive"
        NO_ACTION = "no_action", "No action"
        ESCALATED = "escalated", "Escalated"
        REPORTED = "reported", "Reported (STOR/SAR filed)"

    SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}
    ACTIVE = (Status.OPEN, Status.ASSIGNED, Status.ESCALATED)

    detector = models.CharField(max_length=64)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    severity_rank = models.PositiveSmallIntegerField(help_text="for ordering the queue")
    agent_id = models.CharField(max_length=64, blank=True, default="")
    market = models.CharField(max_length=64, blank=True, default="")
    fingerprint = models.CharField(max_length=200, unique=True)
    evidence = models.JSONField(default=list, help_text="seqs of the records behind the alert")
    detail = models.TextField()
    facts = models.JSONField(default=dict, help_text="the detector's figures, decimal strings")
    occurred_at_us = models.BigIntegerField(help_text="recorded_at_us of the triggering record")
    seq = models.BigIntegerField(help_text="seq of the SURVEILLANCE_ALERT record")
    config_hash = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    assigned_to = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    assigned_at = models.DateTimeField(null=True, blank=True)
    escalated_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    escalated_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    disposition = models.CharField(
        max_length=16, choices=Disposition.choices, blank=True, default=""
    )
    note = models.TextField(blank=True, default="")
    # The case manager's additions: when the case is due (by its severity's SLA,
    # from creation or from a reopening), and to whom or which role it was escalated.
    due_at = models.DateTimeField(
        null=True, blank=True, help_text="SLA due time (COMPLIANCE_ALERT_SLA_HOURS)"
    )
    escalated_to = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    escalated_to_role = models.CharField(max_length=32, blank=True, default="")
    escalation_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["open", "assigned", "escalated", "closed"]),
                name="alert_status_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(status="closed")
                    & ~Q(disposition="")
                    & Q(closed_at__isnull=False)
                    & Q(closed_by__isnull=False)
                )
                | (~Q(status="closed") & Q(disposition="") & Q(closed_at__isnull=True)),
                name="alert_disposition_iff_closed",
            ),
            models.CheckConstraint(
                condition=~Q(status="assigned") | Q(assigned_to__isnull=False),
                name="alert_assigned_has_assignee",
            ),
        ]
        indexes = [
            # The queue: active alerts by severity, oldest first.
            models.Index(fields=["status", "-severity_rank", "created_at"], name="alert_queue"),
            models.Index(fields=["detector", "status"], name="alert_detector_status"),
            # The dashboard: active alerts past their SLA.
            models.Index(fields=["status", "due_at"], name="alert_due"),
            models.Index(fields=["created_at"], name="alert_created"),
        ]

    def __str__(self) -> str:
        return f"alert #{self.pk} {self.detector} {self.agent_id}/{self.market} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class AlertLogEntry(models.Model):
    """Which log records belong to an alert's case (notes, assignments,
    escalations, closing, reopening): an index into the log, written in the
    transaction that appends the ALERT_UPDATED record, so the case's history is
    read from its records by seq instead of by scanning the log. The records
    stay the evidence; this row only says where they are."""

    alert = models.ForeignKey(Alert, on_delete=models.PROTECT, related_name="log_entries")
    seq = models.BigIntegerField()
    action = models.CharField(max_length=16)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["alert", "seq"], name="alertlogentry_unique")
        ]

    def __str__(self) -> str:
        return f"alert #{self.alert_id} {self.action} at seq {self.seq}"


class SurveillanceCursor(models.Model):
    """Where the cycle stands: every record up to `last_seq` has been fed to the
    detectors. Moves forward only in the transaction that stores the alerts and
    detector state of those records."""

    name = models.CharField(max_length=64, unique=True, default="default")
    last_seq = models.BigIntegerField(default=-1)
    last_recorded_at_us = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"surveillance cursor {self.name} at {self.last_seq}"


class DetectorState(models.Model):
    """A detector's incremental state for one partition (an agent, an agent and
    market, an owner and market, ...): what it remembers of the window, so a
    cycle loads only the partitions its new records touch and never rescans the
    window. `active_until_us` lets the cycle drop partitions that went quiet."""

    detector = models.CharField(max_length=64)
    key = models.CharField(max_length=200)
    state = models.JSONField(default=dict)
    last_seq = models.BigIntegerField(default=-1)
    active_until_us = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["detector", "key"], name="detectorstate_unique_key")
        ]
        indexes = [models.Index(fields=["active_until_us"], name="detectorstate_expiry")]

    def __str__(self) -> str:
        return f"{self.detector}[{self.key}]"
