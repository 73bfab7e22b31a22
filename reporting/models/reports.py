"""Reports, legal holds and the retention lock.

A report is one file for one (kind, period, format, regulator): the unique key
makes beat and API requests for the same report converge on one row, and the
row moves pending -> running -> done/failed only through conditional UPDATEs in
reporting.services.reports, so a task run twice generates once."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from accounts.models import User


class Report(models.Model):
    """A report over a closed period, stored as a file and recorded in the log as
    REPORT_GENERATED with the file's SHA-256 (`seq` is that record)."""

    class Kind(models.TextChoices):
        DAILY_TRADE = "daily_trade", "Daily trade report"
        POSITIONS = "positions", "Position report"
        FULL_COMPLIANCE = "full_compliance", "Full compliance report"
        QUARTERLY = "quarterly", "Quarterly report"

    class Format(models.TextChoices):
        JSON = "json", "JSON"
        CSV = "csv", "CSV"
        PDF = "pdf", "PDF"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    format = models.CharField(max_length=8, choices=Format.choices)
    regulator = models.CharField(
        max_length=32, blank=True, default="", help_text="'' for no variant"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField(help_text="exclusive")
    period_label = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    scheduled = models.BooleanField(default=False, help_text="created by beat, not by a person")
    requested_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)
    file = models.CharField(
        max_length=255, blank=True, default="", help_text="name in default storage"
    )
    size = models.BigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, default="")
    seq = models.BigIntegerField(
        null=True, blank=True, help_text="seq of the REPORT_GENERATED record"
    )
    from_seq = models.BigIntegerField(null=True, blank=True)
    to_seq = models.BigIntegerField(null=True, blank=True)
    record_count = models.BigIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    # An intraday report of a period not yet over: it covers the period up to
    # the moment it was asked for, and is pinned at its first generation to a
    # seq range, the log size and a generation time, so it can be regenerated
    # byte for byte later (reporting.services.provisional).
    provisional = models.BooleanField(default=False)
    generated_at_us = models.BigIntegerField(null=True, blank=True)
    log_size = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "period_start", "period_end", "format", "regulator"],
                name="report_unique_per_period",
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=models.F("period_start")), name="report_period_valid"
            ),
            models.CheckConstraint(
                condition=~Q(status="done") | (~Q(sha256="") & Q(seq__isnull=False) & ~Q(file="")),
                name="report_done_has_hash_seq_file",
            ),
        ]
        indexes = [models.Index(fields=["status", "requested_at"], name="report_status_time")]
        permissions = [("download_report", "Download report files")]

    def __str__(self) -> str:
        variant = f" [{self.regulator}]" if self.regulator else ""
        return f"{self.kind} {self.period_label} {self.format}{variant}"


class LegalHold(models.Model):
    """A legal hold: while active, no record it covers is purged, whatever its age.

    It covers the records matching every criterion given: a seq range (either
    end open), an agent, a set of event types; a hold with no criterion covers
    the whole log. Placed and released by admins with a reason, each recorded
    (LEGAL_HOLD_PLACED / LEGAL_HOLD_RELEASED). Released holds stay as history."""

    reason = models.TextField()
    from_seq = models.BigIntegerField(null=True, blank=True)
    to_seq = models.BigIntegerField(null=True, blank=True)
    agent_id = models.CharField(max_length=64, blank=True, default="")
    event_types = models.JSONField(default=list, blank=True)
    placed_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    placed_at = models.DateTimeField()
    placed_seq = models.BigIntegerField()
    released_by = models.ForeignKey(
        User, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    released_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.TextField(blank=True, default="")
    released_seq = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(from_seq__isnull=True)
                | Q(to_seq__isnull=True)
                | Q(to_seq__gte=models.F("from_seq")),
                name="legalhold_seq_range_valid",
            ),
            models.CheckConstraint(
                condition=(Q(released_at__isnull=True) & Q(released_by__isnull=True))
                | (
                    Q(released_at__isnull=False)
                    & Q(released_by__isnull=False)
                    & ~Q(release_reason="")
                ),
                name="legalhold_release_complete",
            ),
        ]

    def __str__(self) -> str:
        state = "released" if self.released_at else "active"
        return f"legal hold #{self.pk} ({state})"

    @property
    def is_active(self) -> bool:
        return self.released_at is None

    def scope_dict(self) -> dict[str, object]:
        return {
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "agent_id": self.agent_id or None,
            "event_types": list(self.event_types),
        }


class RetentionLock(models.Model):
    """One row locked (select_for_update) by every purge batch and every hold placement
    or release, so a hold placed while a purge runs is seen by the next batch
    and never loses a race with it."""

    name = models.CharField(max_length=32, unique=True, default="retention")
    last_purge_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name
