"""Intraday (provisional) reports: a report of a period that has not ended,
e.g. today so far.

It covers the period up to the moment it was asked for and is marked
provisional. At its first generation it is pinned to the seq range it
covered, the log size and the generation time (stored on the row), so that
regenerating it later from that range gives the same bytes: that is what lets
it be proven, like a final report, against the log and a checkpoint.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.core.files.storage import default_storage
from django.utils import timezone

from audit.models import Log
from audit.services import DEFAULT_LOG

from ..models import Report
from ..periods import Period, to_us
from .content import Pinned, ReportSpec, collect, period_seq_range
from .render import HashingWriter, render


def provisional_period(period: Period, now: datetime) -> Period:
    """The part of `period` up to `now` (to the second), labelled provisional."""
    end = now.replace(microsecond=0)
    if end <= period.start:
        raise ValueError(f"the period {period.label} has not started yet")
    return Period(period.start, end, f"{period.label} (provisional to {end:%Y-%m-%dT%H:%M:%SZ})")


def provisional_pin(report: Report) -> Pinned | None:
    """The pin of a provisional report: made and stored at its first generation
    (only if no other run stored one first), read back ever after. None for a
    final report."""
    if not report.provisional:
        return None
    if report.generated_at_us is None:
        log = Log.objects.filter(name=DEFAULT_LOG).first()
        size = log.size if log else 0
        from_seq, to_seq = period_seq_range(log, _period(report), size) if log else (None, None)
        Report.objects.filter(pk=report.pk, generated_at_us__isnull=True).update(
            generated_at_us=to_us(timezone.now()), log_size=size, from_seq=from_seq, to_seq=to_seq
        )
        report.refresh_from_db()
    assert report.generated_at_us is not None
    assert report.log_size is not None
    return Pinned(report.from_seq, report.to_seq, report.log_size, report.generated_at_us)


def _period(report: Report) -> Period:
    return Period(report.period_start, report.period_end, report.period_label)


@dataclass(frozen=True)
class Reproduction:
    report_id: int
    sha256: str  # as generated and recorded
    regenerated_sha256: str
    identical: bool  # byte for byte, the stored file against the regenerated one


def report_reproduce(*, report_id: int) -> Reproduction:
    """Regenerate a provisional report from its pinned seq range and compare it,
    byte for byte, with the stored file (whose SHA-256 is in its
    REPORT_GENERATED record)."""
    report = Report.objects.get(pk=report_id, status=Report.Status.DONE)
    pinned = provisional_pin(report)
    if pinned is None:
        raise ValueError("only provisional reports are pinned to a seq range")
    spec = ReportSpec(report.pk, report.kind, report.format, report.regulator, _period(report))
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        content = collect(spec, Path(tmp), pinned=pinned)
        path = Path(tmp) / f"again.{report.format}"
        with open(path, "wb") as fh:
            writer = HashingWriter(fh)
            render(content, report.format, writer)
        again = path.read_bytes()
    with default_storage.open(report.file, "rb") as fh:
        stored = fh.read()
    return Reproduction(
        report.pk,
        report.sha256,
        hashlib.sha256(again).hexdigest(),
        stored == again and hashlib.sha256(stored).hexdigest() == report.sha256,
    )
