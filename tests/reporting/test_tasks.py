"""Beat jobs run exactly once per period: twice, after a restart, or after the
broker lost the first enqueue, each report exists once and is recorded once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import Record
from reporting.models import Report
from reporting.periods import day
from reporting.services.reports import report_request
from reporting.tasks import (
    report_daily_trade_schedule_task,
    report_generate_task,
    report_quarterly_schedule_task,
    report_sweep_task,
)

from .conftest import D, at

pytestmark = pytest.mark.django_db


def generated() -> list[tuple[str, str, str]]:
    return sorted(
        (
            r.as_dict()["data"]["kind"],
            r.as_dict()["data"]["period"]["label"],
            r.as_dict()["data"]["format"],
        )
        for r in Record.objects.filter(event_type="REPORT_GENERATED")
    )


def test_daily_trade_job_run_twice_makes_one_report_per_format(
    dataset, clock, django_capture_on_commit_callbacks
):
    clock.move_to(at(0, 15, days=1))
    with django_capture_on_commit_callbacks(execute=True):
        first = report_daily_trade_schedule_task()
    with django_capture_on_commit_callbacks(execute=True):
        second = report_daily_trade_schedule_task()
    clock.move_to(at(6, 0, days=1))  # beat restarted later that day
    with django_capture_on_commit_callbacks(execute=True):
        third = report_daily_trade_schedule_task()

    assert first == second == third
    assert len(first) == 3
    reports = Report.objects.filter(kind="daily_trade")
    assert sorted(reports.values_list("period_label", "format", "status")) == [
        ("2025-03-10", "csv", "done"),
        ("2025-03-10", "json", "done"),
        ("2025-03-10", "pdf", "done"),
    ]
    assert generated() == [("daily_trade", "2025-03-10", f) for f in ("csv", "json", "pdf")]
    assert all(r.scheduled and r.requested_by is None for r in reports)


def test_daily_job_whose_enqueue_was_lost_is_generated_by_the_next_run(
    dataset, clock, django_capture_on_commit_callbacks
):
    clock.move_to(at(0, 15, days=1))
    with django_capture_on_commit_callbacks(execute=False):  # broker down: the task never ran
        report_daily_trade_schedule_task()
    assert set(Report.objects.values_list("status", flat=True)) == {"pending"}
    with django_capture_on_commit_callbacks(execute=True):
        report_daily_trade_schedule_task()

    assert set(Report.objects.values_list("status", flat=True)) == {"done"}
    assert len(generated()) == 3


def test_daily_job_catches_up_missed_days_but_not_before_the_log_began(
    dataset, clock, django_capture_on_commit_callbacks, settings
):
    settings.REPORTING_DAILY_FORMATS = ["json"]
    clock.move_to(at(0, 15, days=3))  # beat was down for two days
    with django_capture_on_commit_callbacks(execute=True):
        report_daily_trade_schedule_task()

    labels = sorted(Report.objects.values_list("period_label", flat=True))
    assert labels == ["2025-03-10", "2025-03-11", "2025-03-12"]


def test_quarterly_job_run_twice_on_the_first_day_and_again_later_makes_one_report_each(
    dataset, clock, django_capture_on_commit_callbacks, settings
):
    settings.REPORTING_QUARTERLY_FORMATS = ["json", "csv"]
    clock.move_to(at(0, 0, 30, days=22))  # 2025-04-01 00:00:30, first day of Q2
    with django_capture_on_commit_callbacks(execute=True):
        report_quarterly_schedule_task()
    with django_capture_on_commit_callbacks(execute=True):
        report_quarterly_schedule_task()
    clock.move_to(at(0, 0, days=40))  # later in the quarter, after a restart
    with django_capture_on_commit_callbacks(execute=True):
        report_quarterly_schedule_task()

    assert sorted(Report.objects.values_list("kind", "period_label", "format", "status")) == [
        ("quarterly", "2025-Q1", "csv", "done"),
        ("quarterly", "2025-Q1", "json", "done"),
    ]
    assert generated() == [("quarterly", "2025-Q1", "csv"), ("quarterly", "2025-Q1", "json")]


def test_generate_task_delivered_twice_generates_once(dataset, people):
    report, _ = report_request(
        kind="daily_trade", period=day(D), fmt="json", acting_user=people["alice"]
    )

    assert report_generate_task(report.pk) == "done"
    assert report_generate_task(report.pk) == "done"
    assert len(generated()) == 1


def test_a_report_whose_worker_died_is_taken_over_after_the_stale_time(
    dataset, people, clock, django_capture_on_commit_callbacks
):
    report, _ = report_request(
        kind="daily_trade", period=day(D), fmt="csv", acting_user=people["alice"]
    )
    Report.objects.filter(pk=report.pk).update(status="running", claimed_at=at(0, 0, 3, days=1))

    clock.move_to(at(0, 5, days=1))
    assert report_sweep_task() == 0  # still within the stale time: the worker may be alive
    assert report_generate_task(report.pk) == "running"
    clock.move_to(at(0, 0, 3, days=1) + timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert report_sweep_task() == 1

    report.refresh_from_db()
    assert report.status == "done"
    assert report.attempts == 1
    assert len(generated()) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_beats_racing_on_the_same_day_make_one_report_per_format(settings):
    """Two schedulers at the same moment (a duplicated beat): the unique key lets
    one row per format through, the claim lets one worker generate it."""
    import threading

    import time_machine
    from django.db import connections, transaction

    from audit.services import Actor, record_event

    settings.REPORTING_DAILY_FORMATS = ["json", "csv"]
    with time_machine.travel(at(9, 0), tick=False), transaction.atomic():
        record_event("AUDIT_VERIFIED", actor=Actor.system("test"), data={"ok": True, "checked": 0})
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def beat() -> None:
        try:
            barrier.wait()
            report_daily_trade_schedule_task()  # eager: each report is generated at commit
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    with time_machine.travel(at(0, 15, days=1), tick=True):
        threads = [threading.Thread(target=beat) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert errors == []
    assert sorted(Report.objects.values_list("format", "status")) == [
        ("csv", "done"),
        ("json", "done"),
    ]
    assert generated() == [
        ("daily_trade", "2025-03-10", "csv"),
        ("daily_trade", "2025-03-10", "json"),
    ]
