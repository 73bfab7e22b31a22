"""Requesting, generating and scheduling reports.

One row per (kind, period, format, regulator): asking twice (a person, or beat
running twice or after a restart) returns the same row. Generation claims the
row with a conditional UPDATE (pending -> running, or a stale running claim),
writes the file outside any transaction, then in one transaction records
REPORT_GENERATED with the file's SHA-256 and marks the row done, only if its
claim still holds: a task delivered twice generates once."""

from __future__ import annotations

import logging
import re
import tempfile
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import User
from audit.models import Record
from audit.services import Actor, record_event
from compliance_site.dispatch import publish
from compliance_site.exceptions import Forbidden, Invalid

from ..models import Report
from ..periods import Period, day, from_us, previous_quarter, quarter
from ..regulators import REGULATORS
from .content import ReportSpec, collect
from .delivery import anomalies_raise_alerts, critical_anomalies, report_deliveries_queue
from .provisional import provisional_period, provisional_pin
from .render import HashingWriter, render

logger = logging.getLogger(__name__)

MAX_ERROR_CHARS = 2000


def _setting(name: str, default: Any) -> Any:
    return getattr(settings, name, default)


def _enqueue(report_id: int) -> None:
    publish("reporting.tasks.report_generate_task", report_id)


def report_request(
    *,
    kind: str,
    period: Period,
    fmt: str,
    regulator: str = "",
    acting_user: User | None = None,
    now: datetime | None = None,
    provisional: bool = False,
) -> tuple[Report, bool]:
    """Ask for a report (compliance officers and above; beat with no user).

    Returns the one row for (kind, period, format, regulator) and whether it was
    created. Only closed periods are reported, so the file can be reproduced
    and proven; a failed report asked for again is retried. Generation is
    enqueued after commit (the sweep task re-enqueues it if the broker lost it)."""
    if acting_user is not None and not acting_user.has_perm("accounts.generate_reports"):
        raise Forbidden(
            "forbidden", "generating reports needs the compliance_officer role or higher"
        )
    if kind not in Report.Kind.values:
        raise Invalid("invalid", f"unknown kind {kind!r}")
    if fmt not in Report.Format.values:
        raise Invalid("invalid", f"unknown format {fmt!r}")
    if regulator and regulator not in REGULATORS:
        raise Invalid("invalid", f"unknown regulator {regulator!r}; one of {', '.join(REGULATORS)}")
    now = now or timezone.now()
    if period.end > now and provisional:
        try:
            period = provisional_period(period, now)
        except ValueError as exc:
            raise Invalid("period_not_started", str(exc)) from exc
    elif period.end > now:
        raise Invalid(
            "period_not_ended",
            f"the period {period.label} has not ended yet (ask for a provisional report)",
        )
    else:
        provisional = False  # an ended period gets the final report
    key = {
        "kind": kind,
        "period_start": period.start,
        "period_end": period.end,
        "format": fmt,
        "regulator": regulator,
    }
    with transaction.atomic():
        try:
            with transaction.atomic():
                report = Report.objects.create(
                    **key,
                    provisional=provisional,
                    period_label=period.label,
                    scheduled=acting_user is None,
                    requested_by=acting_user,
                )
            created = True
        except IntegrityError:
            report = Report.objects.get(**key)
            created = False
            if report.status == Report.Status.FAILED:
                Report.objects.filter(pk=report.pk, status=Report.Status.FAILED).update(
                    status=Report.Status.PENDING, error=""
                )
                report.refresh_from_db()
        if report.status == Report.Status.PENDING:
            report_id = report.pk
            transaction.on_commit(lambda: _enqueue(report_id), robust=True)
    return report, created


def _file_name(report: Report) -> str:
    label = re.sub(r"[^0-9A-Za-z-]+", "_", report.period_label).strip("_")
    variant = report.regulator or "standard"
    folder = f"reports/{report.period_start:%Y/%m}"
    return f"{folder}/{report.kind}-{label}-{variant}-{report.pk}.{report.format}"


def _claim(report_id: int, now: datetime) -> str | None:
    token = uuid.uuid4().hex
    stale = now - timedelta(seconds=int(_setting("REPORTING_STALE_CLAIM_SECS", 1800)))
    claimed = (
        Report.objects.filter(pk=report_id)
        .filter(
            Q(status=Report.Status.PENDING) | Q(status=Report.Status.RUNNING, claimed_at__lt=stale)
        )
        .update(
            status=Report.Status.RUNNING,
            claim_token=token,
            claimed_at=now,
            attempts=F("attempts") + 1,
        )
    )
    return token if claimed else None


def report_generate(*, report_id: int) -> Report:
    """Generate a claimed report: stream it to a file, store it, record it.

    Called by the task; safe to call twice (the second call finds the row
    done or claimed and does nothing)."""
    token = _claim(report_id, timezone.now())
    report = Report.objects.get(pk=report_id)
    if token is None:
        return report
    stored = ""
    try:
        spec = ReportSpec(
            report.pk,
            report.kind,
            report.format,
            report.regulator,
            Period(report.period_start, report.period_end, report.period_label),
        )
        with tempfile.TemporaryDirectory(prefix="report-") as tmp:
            content = collect(spec, Path(tmp), pinned=provisional_pin(report))
            path = Path(tmp) / f"report.{report.format}"
            with open(path, "wb") as fh:
                writer = HashingWriter(fh)
                render(content, report.format, writer)
            with open(path, "rb") as fh:
                stored = default_storage.save(_file_name(report), File(fh))
            anomalies = critical_anomalies(
                next((s for s in content.sections if s.name == "anomalies"), None)
            )
        row = _finish(
            report, token, stored, writer.sha256.hexdigest(), writer.size, content.summary
        )
    except Exception as exc:
        logger.exception("report %s failed", report_id)
        _fail(report_id, token, stored, exc)
        return Report.objects.get(pk=report_id)
    if row.status == Report.Status.DONE and row.claim_token == token:
        # After the record: alerts for what must not sit in a file, then email.
        anomalies_raise_alerts(report=row, anomalies=anomalies)
        report_deliveries_queue(report=row)
    return row


def _fail(report_id: int, token: str, stored: str, exc: Exception) -> None:
    if stored:
        default_storage.delete(stored)
    Report.objects.filter(pk=report_id, claim_token=token, status=Report.Status.RUNNING).update(
        status=Report.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    )


def _finish(
    report: Report, token: str, stored: str, sha256: str, size: int, summary: dict[str, Any]
) -> Report:
    with transaction.atomic():
        row = Report.objects.select_for_update().get(pk=report.pk)
        if row.status != Report.Status.RUNNING or row.claim_token != token:
            lost = True
        else:
            lost = False
            actor = (
                Actor.for_user(row.requested_by) if row.requested_by else Actor.system("reporting")
            )
            record = record_event(
                "REPORT_GENERATED",
                actor=actor,
                data={
                    "sha256": sha256,
                    "report_id": row.pk,
                    "kind": row.kind,
                    "format": row.format,
                    "regulator": row.regulator or None,
                    "period": {
                        "label": row.period_label,
                        "start": row.period_start.isoformat(),
                        "end": row.period_end.isoformat(),
                    },
                    "from_seq": summary["from_seq"],
                    "to_seq": summary["to_seq"],
                    "records": summary["records"],
                    "bytes": size,
                    "file": stored,
                },
            )
            row.status = Report.Status.DONE
            row.file, row.sha256, row.size, row.seq = stored, sha256, size, record.seq
            row.from_seq, row.to_seq, row.record_count = (
                summary["from_seq"],
                summary["to_seq"],
                summary["records"],
            )
            row.finished_at = timezone.now()
            row.error = ""
            row.save()
    if lost:  # another worker took over a stale claim and owns the result
        default_storage.delete(stored)
    return row


# -- beat -----------------------------------------------------------------------------------


def _first_record_date() -> date | None:
    first = Record.objects.order_by("seq").values_list("recorded_at_us", flat=True).first()
    return from_us(first).date() if first is not None else None


def _scheduled_variants(setting: str) -> list[tuple[str, str]]:
    formats = list(_setting(setting, ["json", "csv", "pdf"]))
    regulators = list(_setting("REPORTING_SCHEDULED_REGULATORS", [""]))
    return [(fmt, reg) for fmt in formats for reg in regulators]


def daily_trade_schedule(*, now: datetime | None = None) -> list[Report]:
    """Beat, after each UTC day: the daily trade report of every ended day from
    yesterday back REPORTING_DAILY_CATCHUP_DAYS days (none before the first
    record), in each scheduled format. Idempotent: a day already asked for is
    not asked again, so beat running twice or after a restart adds nothing."""
    now = now or timezone.now()
    first = _first_record_date()
    if first is None:
        return []
    today = now.date()
    catchup = int(_setting("REPORTING_DAILY_CATCHUP_DAYS", 7))
    out = []
    for back in range(catchup, 0, -1):
        d = today - timedelta(days=back)
        if d < first:
            continue
        for fmt, reg in _scheduled_variants("REPORTING_DAILY_FORMATS"):
            report, _ = report_request(
                kind=Report.Kind.DAILY_TRADE, period=day(d), fmt=fmt, regulator=reg, now=now
            )
            out.append(report)
    return out


def quarterly_schedule(*, now: datetime | None = None) -> list[Report]:
    """Beat, daily: the quarterly report of the quarter that ended last. The first
    run in a quarter (its first day) creates it; later runs find it and do
    nothing. Skipped when the log began after that quarter."""
    now = now or timezone.now()
    year, q = previous_quarter(now.date())
    period = quarter(year, q)
    first = _first_record_date()
    if first is None or first >= period.end.date():
        return []
    out = []
    for fmt, reg in _scheduled_variants("REPORTING_QUARTERLY_FORMATS"):
        report, _ = report_request(
            kind=Report.Kind.QUARTERLY, period=period, fmt=fmt, regulator=reg, now=now
        )
        out.append(report)
    return out


def report_sweep(*, now: datetime | None = None) -> int:
    """Beat: re-enqueue reports whose task never ran (broker down at commit) or
    whose worker died (stale claim). The claim keeps this from doubling work."""
    now = now or timezone.now()
    pending_before = now - timedelta(seconds=int(_setting("REPORTING_PENDING_GRACE_SECS", 300)))
    stale = now - timedelta(seconds=int(_setting("REPORTING_STALE_CLAIM_SECS", 1800)))
    ids = list(
        Report.objects.filter(
            Q(status=Report.Status.PENDING, requested_at__lt=pending_before)
            | Q(status=Report.Status.RUNNING, claimed_at__lt=stale)
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:100]
    )
    for report_id in ids:
        _enqueue(report_id)
    return len(ids)
