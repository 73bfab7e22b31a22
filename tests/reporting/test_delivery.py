"""Reports that reach people (issue 16): subscriptions, scheduled reports
emailed (attachment or link), critical anomalies raised as alerts, and
provisional intraday reports that regenerate byte for byte."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from django.core import mail
from django.core.files.storage import default_storage

from audit.models import Record
from compliance_site.exceptions import Invalid
from reporting.models import Report, ReportDelivery, ReportSubscription
from reporting.periods import day
from reporting.services.delivery import report_delivery_sweep, subscription_create
from reporting.services.provisional import report_reproduce
from reporting.services.reports import report_request
from reporting.tasks import report_daily_trade_schedule_task
from tests.conftest import fill_payload

from .conftest import D, at

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "carol", "bob", "oscar", "rita", "alice", "adam"]


def subscribe(people: Any, fmt: str = "json", recipients: list[str] | None = None) -> Any:
    return subscription_create(
        kind="daily_trade",
        fmt=fmt,
        recipients=recipients or ["mlro@firm.example", "desk-head@firm.example"],
        acting_user=people["alice"],
    )


def run_schedule(clock: Any, capture: Any) -> list[Report]:
    clock.move_to(at(0, 15, days=1))
    with capture(execute=True):
        report_daily_trade_schedule_task()
    return list(Report.objects.filter(kind="daily_trade").order_by("format"))


def test_a_scheduled_report_is_emailed_to_its_subscribers_with_the_file_attached(
    dataset, people, clock, django_capture_on_commit_callbacks, settings
):
    settings.REPORTING_DAILY_FORMATS = ["json", "csv"]
    subscribe(people, "json")
    subscribe(people, "pdf", ["other@firm.example"])  # no pdf scheduled: nobody mailed
    reports = run_schedule(clock, django_capture_on_commit_callbacks)
    json_report = next(r for r in reports if r.format == "json")

    [email] = mail.outbox
    assert sorted(email.to) == ["desk-head@firm.example", "mlro@firm.example"]
    assert "2025-03-10" in email.subject
    assert json_report.sha256 in email.body
    [(name, content, mimetype)] = email.attachments
    with default_storage.open(json_report.file, "rb") as fh:
        assert content == fh.read()
    assert hashlib.sha256(content).hexdigest() == json_report.sha256
    assert mimetype == "application/json"
    assert name.endswith(".json")
    [delivery] = ReportDelivery.objects.all()
    assert delivery.status == "sent"
    assert delivery.method == "attachment"

    # the sweep running again sends nothing twice
    with django_capture_on_commit_callbacks(execute=True):
        report_delivery_sweep()
        report_daily_trade_schedule_task()
    assert len(mail.outbox) == 1


def test_above_the_size_limit_the_email_carries_a_link_that_needs_a_login(
    dataset, people, clock, django_capture_on_commit_callbacks, settings, client
):
    settings.REPORTING_DAILY_FORMATS = ["csv"]
    settings.REPORTING_EMAIL_ATTACH_MAX_BYTES = 10
    settings.COMPLIANCE_BASE_URL = "https://compliance.firm.example"
    subscribe(people, "csv")
    [report] = run_schedule(clock, django_capture_on_commit_callbacks)

    [email] = mail.outbox
    assert email.attachments == []
    link = f"https://compliance.firm.example/api/v1/reports/{report.pk}/download/"
    assert link in email.body
    assert client.get(link.removeprefix("https://compliance.firm.example")).status_code == 401
    assert ReportDelivery.objects.get().method == "link"


def test_a_failed_email_is_retried_by_the_sweep(
    dataset, people, clock, django_capture_on_commit_callbacks, settings, monkeypatch
):
    settings.REPORTING_DAILY_FORMATS = ["json"]
    subscribe(people, "json")
    from django.core.mail import EmailMessage

    real_send = EmailMessage.send
    monkeypatch.setattr(
        EmailMessage, "send", lambda self, **kw: (_ for _ in ()).throw(OSError("smtp down"))
    )
    run_schedule(clock, django_capture_on_commit_callbacks)
    delivery = ReportDelivery.objects.get()
    assert delivery.status == "pending"
    assert "smtp down" in delivery.last_error
    assert mail.outbox == []
    monkeypatch.setattr(EmailMessage, "send", real_send)
    assert report_delivery_sweep() == 1
    assert len(mail.outbox) == 1
    assert ReportDelivery.objects.get().status == "sent"


def test_critical_anomalies_in_a_report_raise_alerts_in_the_queue_once(dataset, generate):
    from surveillance.models import Alert

    report = generate()
    alerts = Alert.objects.filter(detector="report_anomaly")
    assert sorted((a.facts["anomaly"], a.agent_id) for a in alerts) == [
        ("cancel_ratio", "bot-b"),
        ("clock_drift", "bot-c"),
        ("error_rate", "bot-c"),
        ("gap_in_trading_hours", "bot-d"),
    ]  # "orders without fills" stays in the file
    assert all(a.severity == "critical" and a.status == "open" for a in alerts)
    assert all(a.evidence == [report.seq] for a in alerts)
    recorded = Record.objects.filter(event_type="SURVEILLANCE_ALERT").count()
    assert recorded >= 4
    generate(fmt="csv")  # the same report in another format raises nothing new
    assert Alert.objects.filter(detector="report_anomaly").count() == 4
    assert Record.objects.filter(event_type="SURVEILLANCE_ALERT").count() == recorded


@pytest.mark.parametrize("fmt", ["json", "csv", "pdf"])
def test_a_provisional_intraday_report_regenerates_byte_for_byte_from_its_seq_range(
    dataset, people, clock, django_capture_on_commit_callbacks, fmt
):
    clock.move_to(at(15, 30))  # day D is not over
    with pytest.raises(Invalid) as refused:
        report_request(kind="daily_trade", period=day(D), fmt=fmt, acting_user=people["alice"])
    assert refused.value.code == "period_not_ended"
    with django_capture_on_commit_callbacks(execute=True):
        report, _ = report_request(
            kind="daily_trade",
            period=day(D),
            fmt=fmt,
            acting_user=people["alice"],
            provisional=True,
        )
    report.refresh_from_db()
    assert report.status == "done", report.error
    assert report.provisional
    assert report.period_end == at(15, 30)
    assert report.to_seq is not None
    assert report.to_seq < report.log_size
    if fmt == "json":
        with default_storage.open(report.file, "rb") as fh:
            header = json.loads(fh.read())["report"]
        assert header["provisional"] is True
        assert header["coverage"]["to_seq"] == report.to_seq

    # the day goes on: more records, more alerts, other projections move
    clock.move_to(at(16, 0))
    bot = dataset.bots["bot-a"]
    assert bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(77))]).status_code == 201
    from surveillance.models import Alert

    Alert.objects.create(
        detector="rapid_fire", severity="low", severity_rank=1, agent_id="bot-a",
        market="BTC-USD", fingerprint="later-1", evidence=[1], detail="burst",
        occurred_at_us=int(at(9, 0).timestamp() * 1_000_000), seq=1, config_hash="x",
    )  # fmt: skip
    again = report_reproduce(report_id=report.pk)
    assert again.identical
    assert again.regenerated_sha256 == report.sha256
    # and the recorded hash is the one of the file
    record = Record.objects.get(seq=report.seq).as_dict()
    assert record["data"]["sha256"] == report.sha256
    # a stored file changed afterwards no longer matches its regeneration
    with open(default_storage.path(report.file), "ab") as fh:
        fh.write(b" ")
    assert not report_reproduce(report_id=report.pk).identical


def test_a_provisional_report_of_a_period_not_started_is_refused(people, clock):
    from reporting.periods import day as day_period

    with pytest.raises(Invalid) as refused:
        report_request(
            kind="daily_trade",
            period=day_period(at(0, 0, days=3).date()),
            fmt="json",
            acting_user=people["alice"],
            provisional=True,
        )
    assert refused.value.code == "period_not_started"
    assert Report.objects.count() == 0


def sub_state() -> tuple:
    return (
        list(ReportSubscription.objects.order_by("pk").values_list("pk", "is_active")),
        Record.objects.filter(event_type="REPORT_SUBSCRIPTION_CHANGED").count(),
    )


@pytest.mark.parametrize("who", ROLES)
def test_only_compliance_officers_manage_subscriptions(api, client_for, people, who):
    existing = subscribe(people)
    before = sub_state()
    caller = api if who == "anonymous" else client_for(who)
    created = caller.post(
        "/api/v1/reports/subscriptions/",
        {"kind": "daily_trade", "format": "csv", "recipients": ["a@firm.example"]},
        format="json",
    )
    listed = caller.get("/api/v1/reports/subscriptions/")
    ended = caller.post(f"/api/v1/reports/subscriptions/{existing.pk}/deactivate/")
    if who in ("alice", "adam"):
        assert created.status_code == 201
        assert created.json()["recipients"] == ["a@firm.example"]
        assert len(listed.json()) == 2
        assert ended.status_code == 200
        assert ended.json()["is_active"] is False
        assert Record.objects.filter(event_type="REPORT_SUBSCRIPTION_CHANGED").count() == 3
    else:
        expected = 401 if who == "anonymous" else 403
        assert (created.status_code, listed.status_code, ended.status_code) == (expected,) * 3
        assert sub_state() == before


def test_bad_subscriptions_are_refused_and_nothing_stored(client_for):
    before = sub_state()
    alice = client_for("alice")
    for body, code in [
        ({"kind": "weekly", "format": "json", "recipients": ["a@x.example"]}, "invalid"),
        ({"kind": "daily_trade", "format": "json", "recipients": ["not-an-address"]}, None),
        ({"kind": "daily_trade", "format": "json", "recipients": []}, None),
        ({"kind": "daily_trade", "format": "json", "recipients": [{"a": 1}]}, None),
    ]:
        response = alice.post("/api/v1/reports/subscriptions/", body, format="json")
        assert response.status_code == 400, body
        assert response.json()["code"] == (code or "invalid_recipients")
    assert sub_state() == before


def test_report_reproduce_command(dataset, people, clock, django_capture_on_commit_callbacks):
    from django.core.management import CommandError, call_command

    clock.move_to(at(12, 0))
    with django_capture_on_commit_callbacks(execute=True):
        report, _ = report_request(
            kind="full_compliance", period=day(D), fmt="csv", acting_user=people["alice"],
            provisional=True,
        )  # fmt: skip
    report.refresh_from_db()
    call_command("report_reproduce", str(report.pk))
    clock.move_to(at(1, 0, days=1))
    with django_capture_on_commit_callbacks(execute=True):
        final, _ = report_request(
            kind="full_compliance", period=day(D), fmt="csv", acting_user=people["alice"]
        )
    with pytest.raises(CommandError):
        call_command("report_reproduce", str(final.pk))
