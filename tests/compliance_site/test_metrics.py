"""GET /metrics: parsed with prometheus_client's own text parser; each figure
moves when the thing it counts happens; only allowed callers may scrape."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import fill_payload, holding_on

pytestmark = pytest.mark.django_db


def scrape(**headers: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = Client().get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


class Delta:
    """Scrape before and after: counters are process-wide, so tests compare."""

    def __init__(self) -> None:
        self.before = scrape()

    def __call__(self, name: str, **labels: str) -> float:
        return value(scrape(), name, **labels) - value(self.before, name, **labels)


def test_events_ingested_refused_and_ingest_latency_move(bot):
    delta = Delta()
    items = [bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(3)]
    assert bot.post_events(items).status_code == 201
    assert bot.post_events(items[:1]).status_code == 201  # a resend: duplicate
    bad = bot.signer.item("ORDER_FILLED", fill_payload(9))
    bad["signature"] = bot.signer.item("ORDER_FILLED", fill_payload(8))["signature"]
    assert bot.post_events([bad]).status_code == 400
    assert bot.client.post("/api/v1/events/", {"events": []}, format="json").status_code == 400
    code = bot.post_events([bad]).json()["errors"][0]["code"]

    assert delta("compliance_events_ingested_total", status="created") == 3
    assert delta("compliance_events_ingested_total", status="duplicate") == 1
    assert delta("compliance_events_refused_total", code=code) == 2
    assert delta("compliance_events_refused_total", code="empty_batch") == 1
    assert delta("compliance_ingest_latency_seconds_count") == 5
    assert delta("compliance_ingest_latency_seconds_sum") > 0


def test_gate_decisions_by_outcome_and_reason_and_gate_latency_move(bot, order_item, people):
    from surveillance.services.kill_switch import kill_switch_activate

    holding_on(people)
    delta = Delta()

    def submit(**kwargs: Any) -> dict:
        response = bot.client.post("/api/v1/orders/", order_item(bot, **kwargs), format="json")
        return response.json()

    assert submit()["decision"] == "accepted"
    assert submit(quantity="60", price="100", order_id="big")["decision"] == "held"
    kill_switch_activate(scope="agent", target="bot-1", reason="t", acting_user=people["rita"])
    assert submit()["decision"] == "rejected"
    malformed = order_item(bot)
    malformed["signature"] = "AAAA"
    assert bot.client.post("/api/v1/orders/", malformed, format="json").status_code == 400

    assert delta("compliance_gate_decisions_total", decision="accepted") == 1
    assert delta("compliance_gate_decisions_total", decision="rejected") == 1
    assert delta("compliance_gate_decisions_total", decision="held") == 1
    assert (
        delta(
            "compliance_gate_decision_reasons_total",
            decision="rejected",
            reason="kill_switch",
        )
        == 1
    )
    assert (
        delta("compliance_gate_decision_reasons_total", decision="held", reason="approval_required")
        == 1
    )
    assert (
        sum(v for (name, _), v in scrape().items() if name == "compliance_gate_refused_total")
        - sum(v for (name, _), v in delta.before.items() if name == "compliance_gate_refused_total")
        == 1
    )
    assert delta("compliance_gate_latency_seconds_count") == 4
    # pending approvals: one, and its age is read from the database
    from approvals.models import ApprovalRequest

    ApprovalRequest.objects.update(requested_at=timezone.now() - timedelta(minutes=5))
    now = scrape()
    assert value(now, "compliance_approvals_pending") == 1
    assert value(now, "compliance_approvals_oldest_pending_age_seconds") >= 300

    # the approval notices' outbox: one waiting, then one failing
    from approvals.models import Notification

    approval = ApprovalRequest.objects.get()
    waiting = value(now, "compliance_notification_outbox_pending")
    Notification.objects.create(
        approval=approval, channel="email", event_type="APPROVAL_EXPIRED", seq=1, payload={}
    )
    assert value(scrape(), "compliance_notification_outbox_pending") == waiting + 1
    failing = value(now, "compliance_notification_outbox_failing")
    Notification.objects.filter(event_type="APPROVAL_EXPIRED").update(attempts=1)
    assert value(scrape(), "compliance_notification_outbox_failing") == failing + 1


@pytest.fixture
def order_item(db):  # type: ignore[no-untyped-def]
    """Signed orders, each at its own price (the duplicate-order check is on)."""
    from surveillance.services.config import config_current

    config_current()  # version 1 of the config, as the gate expects
    counter = {"n": 0}

    def make(handle, *, market="BTC-USD", side="buy", quantity="1", price=None, order_id=None):  # type: ignore[no-untyped-def]
        counter["n"] += 1
        payload = {
            "order_id": order_id or f"o-{counter['n']}",
            "market": market,
            "side": side,
            "quantity": quantity,
            "price": price or f"100.{counter['n']:04d}",
            "order_type": "limit",
        }
        return handle.signer.item("ORDER_SUBMITTED", payload)

    return make


def test_open_alerts_by_severity_and_kill_switches_move(people):
    from surveillance.models import Alert
    from surveillance.services.kill_switch import kill_switch_activate

    before = scrape()
    Alert.objects.create(
        detector="gate_bypass", severity="critical", severity_rank=4, agent_id="bot-1",
        market="BTC-USD", fingerprint="m-1", evidence=[1], detail="fill for unknown order",
        occurred_at_us=1, seq=1, config_hash="x",
    )  # fmt: skip
    Alert.objects.create(
        detector="rapid_fire", severity="low", severity_rank=1, agent_id="bot-1",
        market="BTC-USD", fingerprint="m-2", evidence=[2], detail="burst", occurred_at_us=2,
        seq=2, config_hash="x", status="closed", disposition="no_action", note="fine",
        closed_by=people["alice"], closed_at=timezone.now(),
    )  # fmt: skip
    kill_switch_activate(scope="global", target=None, reason="test", acting_user=people["rita"])
    after = scrape()
    assert value(before, "compliance_alerts_open", severity="critical") == 0
    assert value(after, "compliance_alerts_open", severity="critical") == 1
    assert value(after, "compliance_alerts_open", severity="low") == 0  # closed
    assert value(before, "compliance_kill_switches_active", scope="global") == 0
    assert value(after, "compliance_kill_switches_active", scope="global") == 1


def test_checkpoint_and_verification_figures_move(bot):
    from audit.services import Actor
    from audit.services.checkpoints import checkpoint_create
    from audit.services.verify import verify_and_record
    from tests.audit.test_log import tamper

    before = scrape()
    assert ("compliance_checkpoint_last_age_seconds", ()) not in before
    assert ("compliance_verification_last_ok", ()) not in before
    checkpoint_create(force=True)
    verify_and_record(actor=Actor.system())
    good = scrape()
    assert 0 <= value(good, "compliance_checkpoint_last_age_seconds") < 60
    assert value(good, "compliance_checkpoint_last_tree_size") >= 1
    assert value(good, "compliance_verification_last_ok") == 1
    assert 0 <= value(good, "compliance_verification_last_age_seconds") < 60
    assert value(good, "compliance_log_size") > value(before, "compliance_log_size")

    tamper("UPDATE audit_record SET leaf_hash = %s WHERE seq = 0", [bytes(32)])
    verify_and_record(actor=Actor.system())
    assert value(scrape(), "compliance_verification_last_ok") == 0


def test_webhook_backlog_and_failures_and_notification_outbox_move(people, settings):
    from audit.models import WebhookAttempt, WebhookDelivery
    from audit.webhooks.services import webhook_endpoint_create, webhook_notify

    settings.COMPLIANCE_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1:9"]
    before = scrape()
    webhook_endpoint_create(
        url="http://127.0.0.1:9/hook",
        event_types=["*"],
        acting_user=people["alice"],
        description="metrics test",
    )
    with transaction.atomic():
        webhook_notify("SURVEILLANCE_ALERT", {"alert_id": 1}, seq=1)
    pending = scrape()
    assert value(pending, "compliance_webhook_deliveries", status="pending") == 1
    delivery = WebhookDelivery.objects.get()
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=1,
        started_at=timezone.now(),
        webhook_timestamp=1,
        outcome="error",
        error="connection refused",
    )
    assert value(scrape(), "compliance_webhook_attempt_failures_total") == (
        value(before, "compliance_webhook_attempt_failures_total") + 1
    )


def test_report_failures_move():
    from reporting.models import Report

    before = value(scrape(), "compliance_reports_failed")
    now = timezone.now()
    Report.objects.create(
        kind="daily_trade",
        format="json",
        period_start=now - timedelta(days=1),
        period_end=now,
        period_label="test",
        status=Report.Status.FAILED,
    )
    assert value(scrape(), "compliance_reports_failed") == before + 1


def test_scrape_needs_an_allowed_address_or_the_token(settings):
    settings.COMPLIANCE_METRICS_TOKEN = "s3cret-metrics"
    outsider = {"REMOTE_ADDR": "203.0.113.9"}
    denied = Client().get("/metrics", **outsider)
    assert denied.status_code == 403
    assert denied.json()["code"] == "metrics_forbidden"
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope", **outsider)
    assert wrong.status_code == 403
    assert scrape(HTTP_AUTHORIZATION="Bearer s3cret-metrics", **outsider)
    settings.COMPLIANCE_METRICS_ALLOWED_IPS = ["203.0.113.0/24"]
    assert scrape(**outsider)
    assert Client().post("/metrics").status_code == 405


def test_counters_from_several_worker_processes_are_summed(tmp_path, monkeypatch):
    """gunicorn runs several workers: in multiprocess mode each writes its own
    file and one scrape, served by any worker, gives the total."""
    import subprocess
    import sys

    worker = (
        "from compliance_site.metrics import EVENTS_INGESTED, GATE_LATENCY\n"
        "EVENTS_INGESTED.labels('created').inc(2)\n"
        "GATE_LATENCY.observe(0.004)\n"
    )
    for _ in range(2):
        subprocess.run(
            [sys.executable, "-c", worker],
            check=True,
            env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
        )
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    metrics = scrape()
    assert value(metrics, "compliance_events_ingested_total", status="created") == 4
    assert value(metrics, "compliance_gate_latency_seconds_count") == 2
    assert value(metrics, "compliance_approvals_pending") == 0  # database gauges still there


def test_grafana_dashboard_reads_only_metrics_the_endpoint_serves():
    import json
    import re
    from pathlib import Path

    from django.conf import settings

    dashboard = json.loads(
        (Path(settings.BASE_DIR) / "deploy/grafana/compliance-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"compliance_[a-z_]+", expr)
    }
    response = Client().get("/metrics")
    served = {f.name for f in text_string_to_metric_families(response.content.decode())}
    # families that only appear once they have a value
    served |= {
        "compliance_checkpoint_last_age_seconds",
        "compliance_checkpoint_last_tree_size",
        "compliance_verification_last_ok",
        "compliance_verification_last_age_seconds",
    }
    assert used <= served, used - served
    assert len(used) >= 20
