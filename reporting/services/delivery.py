"""Reports that reach people: subscriptions, emailed scheduled reports, and
critical anomalies raised as alerts.

* Compliance officers subscribe recipients to a report (kind, format,
  regulator variant); each change is recorded (REPORT_SUBSCRIPTION_CHANGED).
* When a scheduled report is recorded, one delivery row per matching active
  subscription is written (unique per report and subscription, so a report is
  emailed once per subscription however often this runs); a worker sends it
  outside any transaction: the file attached when it is at most
  REPORTING_EMAIL_ATTACH_MAX_BYTES (0: never), otherwise a link that needs a
  login. Failed sends are retried by the reports sweep up to
  REPORTING_EMAIL_MAX_ATTEMPTS.
* A critical anomaly found by a report (cancel ratio, error rate, gaps,
  clock drift beyond the RTS 25 tolerance; REPORTING_ALERT_ANOMALIES) raises
  a critical alert in the surveillance queue, once per report period, agent
  and anomaly, with the REPORT_GENERATED record as evidence. Daily reports
  (REPORTING_ALERT_KINDS) raise them; a quarter would only repeat its days.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role, User
from accounts.roles import has_role
from audit.services import Actor, record_event
from compliance_site.dispatch import publish
from compliance_site.exceptions import Conflict, Forbidden, Invalid, NotFound

from ..models import Report, ReportDelivery, ReportSubscription
from ..regulators import REGULATORS
from .render import CONTENT_TYPES
from .spool import Spool

logger = logging.getLogger(__name__)

MAX_RECIPIENTS = 50
SWEEP_LIMIT = 100
STALE_SENDING = timedelta(minutes=10)


# --- subscriptions -------------------------------------------------------------------


def _check_officer(user: User) -> None:
    if not has_role(user, Role.COMPLIANCE_OFFICER):
        raise Forbidden("forbidden", "report subscriptions are managed by compliance officers")


def _clean_recipients(recipients: Any) -> list[str]:
    if not isinstance(recipients, list) or not recipients or len(recipients) > MAX_RECIPIENTS:
        raise Invalid(
            "invalid_recipients", f"recipients: a list of 1 to {MAX_RECIPIENTS} email addresses"
        )
    cleaned = []
    for address in recipients:
        try:
            if not isinstance(address, str):
                raise ValidationError("not text")
            validate_email(address)
        except ValidationError as exc:
            raise Invalid("invalid_recipients", f"{address!r} is not an email address") from exc
        cleaned.append(address.strip())
    return sorted(set(cleaned))


@transaction.atomic
def subscription_create(
    *, kind: str, fmt: str, regulator: str = "", recipients: list[str], acting_user: User
) -> ReportSubscription:
    """Subscribe recipients to a scheduled report (compliance officers and admins)."""
    _check_officer(acting_user)
    if kind not in Report.Kind.values or fmt not in Report.Format.values:
        raise Invalid("invalid", f"unknown report kind {kind!r} or format {fmt!r}")
    if regulator and regulator not in REGULATORS:
        raise Invalid("invalid", f"unknown regulator {regulator!r}")
    sub = ReportSubscription.objects.create(
        kind=kind,
        format=fmt,
        regulator=regulator,
        recipients=_clean_recipients(recipients),
        created_by=acting_user,
    )
    _record(sub, "created", acting_user)
    return sub


@transaction.atomic
def subscription_deactivate(*, subscription_id: int, acting_user: User) -> ReportSubscription:
    _check_officer(acting_user)
    sub = ReportSubscription.objects.select_for_update().filter(pk=subscription_id).first()
    if sub is None:
        raise NotFound("not_found", f"no subscription {subscription_id}")
    if not sub.is_active:
        raise Conflict("already_inactive", "the subscription is already inactive")
    sub.is_active, sub.deactivated_at = False, timezone.now()
    sub.save(update_fields=["is_active", "deactivated_at"])
    _record(sub, "deactivated", acting_user)
    return sub


def _record(sub: ReportSubscription, action: str, user: User) -> None:
    record_event(
        "REPORT_SUBSCRIPTION_CHANGED",
        actor=Actor.for_user(user),
        data={
            "subscription_id": sub.pk,
            "action": action,
            "kind": sub.kind,
            "format": sub.format,
            "regulator": sub.regulator or None,
            "recipients": list(sub.recipients),
        },
    )


def subscription_list_for_user(*, user: Any) -> Any:
    """Subscriptions name people's addresses: compliance officers and up only."""
    if not isinstance(user, User) or not has_role(user, Role.COMPLIANCE_OFFICER):
        return ReportSubscription.objects.none()
    return ReportSubscription.objects.order_by("pk")


# --- deliveries ------------------------------------------------------------------------


def report_deliveries_queue(*, report: Report) -> list[int]:
    """One delivery per matching active subscription for a finished scheduled
    report; existing ones are left alone. Returns the ids of new rows."""
    if report.status != Report.Status.DONE or not report.scheduled:
        return []
    subs = ReportSubscription.objects.filter(
        is_active=True, kind=report.kind, format=report.format, regulator=report.regulator
    ).exclude(deliveries__report=report)
    made = []
    with transaction.atomic():
        for sub in subs:
            delivery, created = ReportDelivery.objects.get_or_create(
                report=report, subscription=sub, defaults={"recipients": list(sub.recipients)}
            )
            if created:
                made.append(delivery.pk)
        if made:
            transaction.on_commit(lambda: _wake(made), robust=True)
    return made


def _wake(ids: list[int]) -> None:
    """After commit: ask a worker to send now, from the dispatch thread (no
    caller waits for the broker); the sweep sends what a lost wake-up left."""
    for delivery_id in ids:
        publish("reporting.tasks.report_delivery_send_task", delivery_id)


def _link(report: Report) -> str:
    base = str(getattr(settings, "COMPLIANCE_BASE_URL", "")).rstrip("/")
    return base + reverse("reporting:report-download", args=[report.pk])


def _email(delivery: ReportDelivery, report: Report) -> EmailMessage:
    limit = int(getattr(settings, "REPORTING_EMAIL_ATTACH_MAX_BYTES", 5 * 1024 * 1024))
    attach = bool(limit) and (report.size or 0) <= limit
    variant = f" ({REGULATORS[report.regulator].title})" if report.regulator else ""
    subject = f"[compliance] {report.get_kind_display()} {report.period_label}{variant}"
    lines = [
        f"{report.get_kind_display()} for {report.period_label}{variant}, format {report.format}.",
        "",
        f"SHA-256:  {report.sha256}",
        f"Recorded: seq {report.seq} (REPORT_GENERATED) in the audit log",
        f"Covers:   seq {report.from_seq}..{report.to_seq} ({report.record_count} records)",
        "",
    ]
    if attach:
        lines.append("The report is attached.")
    else:
        lines.append(f"Download it (sign in first): {_link(report)}")
    message = EmailMessage(subject=subject, body="\n".join(lines) + "\n", to=delivery.recipients)
    if attach:
        with default_storage.open(report.file, "rb") as fh:
            message.attach(posixpath.basename(report.file), fh.read(), CONTENT_TYPES[report.format])
    delivery.method = "attachment" if attach else "link"
    return message


def report_delivery_send(*, delivery_id: int) -> str:
    """Claim and send one delivery; outside any transaction. Returns the outcome."""
    now = timezone.now()
    claimed = (
        ReportDelivery.objects.filter(pk=delivery_id)
        .filter(
            Q(status=ReportDelivery.Status.PENDING)
            | Q(status=ReportDelivery.Status.SENDING, claimed_at__lt=now - STALE_SENDING)
        )
        .update(status=ReportDelivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    )
    if not claimed:
        return "not_claimed"
    delivery = ReportDelivery.objects.select_related("report").get(pk=delivery_id)
    try:
        _email(delivery, delivery.report).send(fail_silently=False)
    except Exception as exc:
        logger.warning("report delivery %s failed: %s", delivery_id, exc)
        max_attempts = int(getattr(settings, "REPORTING_EMAIL_MAX_ATTEMPTS", 5))
        failed = delivery.attempts >= max_attempts
        ReportDelivery.objects.filter(pk=delivery_id).update(
            status=ReportDelivery.Status.FAILED if failed else ReportDelivery.Status.PENDING,
            last_error=f"{type(exc).__name__}: {exc}"[:2000],
        )
        return "failed" if failed else "retry"
    ReportDelivery.objects.filter(pk=delivery_id).update(
        status=ReportDelivery.Status.SENT, sent_at=timezone.now(), method=delivery.method
    )
    return "sent"


def report_delivery_sweep(*, now: datetime | None = None) -> int:
    """Beat (with the reports sweep): queue deliveries for recent scheduled
    reports that lack them (a worker died after recording), then send what is
    pending. Returns how many were sent."""
    now = now or timezone.now()
    recent = Report.objects.filter(
        status=Report.Status.DONE, scheduled=True, finished_at__gte=now - timedelta(days=7)
    ).order_by("pk")
    for report in recent[:SWEEP_LIMIT]:
        report_deliveries_queue(report=report)
    ids = list(
        ReportDelivery.objects.filter(
            Q(status=ReportDelivery.Status.PENDING)
            | Q(status=ReportDelivery.Status.SENDING, claimed_at__lt=now - STALE_SENDING)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:SWEEP_LIMIT]
    )
    return sum(report_delivery_send(delivery_id=i) == "sent" for i in ids)


# --- anomalies to alerts -------------------------------------------------------------------


@dataclass(frozen=True)
class Anomaly:
    name: str
    agent_id: str
    value: Any
    threshold: Any
    detail: str


def critical_anomalies(spool: Spool | None) -> list[Anomaly]:
    """The report's anomalies that must not sit in a file (read from its section)."""
    if spool is None:
        return []
    critical = set(
        getattr(
            settings,
            "REPORTING_ALERT_ANOMALIES",
            ["cancel_ratio", "error_rate", "gap_in_trading_hours", "clock_drift"],
        )
    )
    out = []
    for row in spool.rows():
        name, agent_id, value, threshold, *_rest, why = row
        if name in critical:
            out.append(Anomaly(name, agent_id or "", value, threshold, why or ""))
    return out


def anomalies_raise_alerts(*, report: Report, anomalies: list[Anomaly]) -> int:
    """Critical anomalies of a recorded report become critical alerts (once per
    report period start, kind, regulator, agent and anomaly: the final report
    after an intraday one, or the same report in three formats, raise one)."""
    kinds = getattr(settings, "REPORTING_ALERT_KINDS", ["daily_trade", "full_compliance"])
    if not anomalies or report.seq is None or report.kind not in kinds:
        return 0
    from surveillance.detectors.base import Finding
    from surveillance.services.alerts import alerts_create
    from surveillance.services.config import config_current

    at_us = int(report.period_start.timestamp()) * 1_000_000
    findings = [
        Finding(
            detector="report_anomaly",
            severity="critical",
            fingerprint=(
                f"report_anomaly:{report.kind}:{report.regulator}:"
                f"{report.period_start:%Y-%m-%dT%H:%M:%S}:{a.name}:{a.agent_id}"
            ),
            agent_id=a.agent_id,
            market="",
            evidence=[report.seq],
            detail=f"{a.name} in the {report.get_kind_display()} {report.period_label}: "
            f"{a.value} (threshold {a.threshold}); {a.detail}",
            seq=report.seq,
            ts=at_us,
            facts={
                "report_id": report.pk,
                "anomaly": a.name,
                "value": a.value,
                "threshold": a.threshold,
                "provisional": report.provisional,
            },
        )
        for a in anomalies
    ]
    with transaction.atomic():
        return len(alerts_create(findings=findings, config_hash=config_current().hash))
