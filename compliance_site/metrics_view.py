"""GET /metrics: the Prometheus endpoint (text exposition format).

Hot-path counters come from ``compliance_site.metrics`` (summed over the
gunicorn workers in prometheus_client's multiprocess mode when
``PROMETHEUS_MULTIPROC_DIR`` is set); everything that is a state of the
firm is read from the database at scrape time by ``DatabaseCollector``, a
handful of indexed queries, so every worker gives the same answer.

Only callers on ``COMPLIANCE_METRICS_ALLOWED_IPS`` or bearing
``COMPLIANCE_METRICS_TOKEN`` may scrape: the figures describe the firm's
trading and its controls.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.db.models import Count, Min, QuerySet
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _count_by(qs: QuerySet[Any], field: str) -> dict[str, int]:
    """{value of `field`: rows} in one GROUP BY."""
    return dict(qs.values_list(field).annotate(n=Count("pk")).values_list(field, "n"))


class DatabaseCollector:
    """Gauges read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        yield from self._approvals(now)
        yield from self._alerts()
        yield from self._kill_switches()
        yield from self._log(now)
        yield from self._outboxes()
        yield from self._reports()

    def _approvals(self, now: float) -> Iterator[Metric]:
        from approvals.models import ApprovalRequest

        pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING).aggregate(
            n=Count("pk"), oldest=Min("requested_at")
        )
        yield _gauge(
            "compliance_approvals_pending", "Held requests awaiting a decision.", pending["n"]
        )
        oldest = pending["oldest"]
        yield _gauge(
            "compliance_approvals_oldest_pending_age_seconds",
            "Age of the oldest pending approval (0 when none).",
            now - oldest.timestamp() if oldest else 0,
        )

    def _alerts(self) -> Iterator[Metric]:
        from surveillance.models import Alert

        family = GaugeMetricFamily(
            "compliance_alerts_open", "Alerts not closed, by severity.", labels=["severity"]
        )
        counts = _count_by(Alert.objects.filter(status__in=Alert.ACTIVE), "severity")
        for severity in Alert.Severity.values:
            family.add_metric([severity], counts.get(severity, 0))
        yield family

    def _kill_switches(self) -> Iterator[Metric]:
        from surveillance.models import KillSwitch

        family = GaugeMetricFamily(
            "compliance_kill_switches_active", "Kill switches in force, by scope.", labels=["scope"]
        )
        counts = _count_by(KillSwitch.objects.filter(active=True), "scope")
        for scope in KillSwitch.Scope.values:
            family.add_metric([scope], counts.get(scope, 0))
        yield family

    def _log(self, now: float) -> Iterator[Metric]:
        from audit.models import Checkpoint, Log, Record
        from audit.services import DEFAULT_LOG

        log = Log.objects.filter(name=DEFAULT_LOG).values("pk", "size").first()
        yield _gauge("compliance_log_size", "Records in the audit log.", log["size"] if log else 0)
        latest = (
            Checkpoint.objects.filter(log_id=log["pk"] if log else None)
            .order_by("-timestamp_us")
            .values("timestamp_us", "tree_size")
            .first()
        )
        if latest is not None:
            yield _gauge(
                "compliance_checkpoint_last_age_seconds",
                "Seconds since the latest signed checkpoint.",
                now - latest["timestamp_us"] / 1e6,
            )
            yield _gauge(
                "compliance_checkpoint_last_tree_size",
                "Tree size of the latest signed checkpoint.",
                latest["tree_size"],
            )
        verified = (
            Record.objects.filter(log_id=log["pk"] if log else None, event_type="AUDIT_VERIFIED")
            .order_by("-seq")
            .values("recorded_at_us", "body")
            .first()
        )
        if verified is not None:
            body = json.loads(verified["body"]) if verified["body"] else {}
            yield _gauge(
                "compliance_verification_last_ok",
                "1 if the latest full verification of the log passed, 0 if it failed.",
                1 if body.get("data", {}).get("ok") else 0,
            )
            yield _gauge(
                "compliance_verification_last_age_seconds",
                "Seconds since the latest full verification of the log.",
                now - verified["recorded_at_us"] / 1e6,
            )

    def _outboxes(self) -> Iterator[Metric]:
        from approvals.models import Notification
        from audit.models import WebhookAttempt, WebhookDelivery

        backlog = GaugeMetricFamily(
            "compliance_webhook_deliveries",
            "Webhook deliveries not yet delivered, by state (pending, sending, failed).",
            labels=["status"],
        )
        counts = _count_by(
            WebhookDelivery.objects.exclude(status=WebhookDelivery.Status.DELIVERED), "status"
        )
        for status in ("pending", "sending", "failed"):
            backlog.add_metric([status], counts.get(status, 0))
        yield backlog
        failures = CounterMetricFamily(
            "compliance_webhook_attempt_failures",
            "Webhook delivery attempts that did not deliver.",
            value=WebhookAttempt.objects.exclude(outcome="delivered").count(),
        )
        yield failures
        unsent = Notification.objects.filter(sent_at__isnull=True)
        yield _gauge(
            "compliance_notification_outbox_pending",
            "Approval notices (email, chat) not yet sent.",
            unsent.count(),
        )
        yield _gauge(
            "compliance_notification_outbox_failing",
            "Approval notices not yet sent after at least one failed attempt.",
            unsent.filter(attempts__gt=0).count(),
        )

    def _reports(self) -> Iterator[Metric]:
        from reporting.models import Report

        # A gauge, not a counter: a failed report asked for again is retried
        # and leaves this state, so the figure can go down.
        yield _gauge(
            "compliance_reports_failed",
            "Reports whose generation failed and has not been retried successfully.",
            Report.objects.filter(status=Report.Status.FAILED).count(),
        )


def _client_allowed(request: HttpRequest) -> bool:
    token = settings.COMPLIANCE_METRICS_TOKEN
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if token and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode())
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.COMPLIANCE_METRICS_ALLOWED_IPS:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            continue
    return False


def exposition() -> bytes:
    """The whole scrape: the hot-path metrics (all workers) and the database gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        process_metrics = generate_latest(registry)
    else:
        process_metrics = generate_latest(REGISTRY)
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())  # type: ignore[arg-type]
    return process_metrics + generate_latest(database)


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not _client_allowed(request):
        body: dict[str, Any] = {
            "code": "metrics_forbidden",
            "detail": "Scrape from an allowed address or with the metrics token.",
        }
        return HttpResponse(json.dumps(body), status=403, content_type="application/json")
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
