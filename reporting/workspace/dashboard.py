"""What the dashboard reads: what needs attention now, and the trading day's
charts. Every read is an indexed lookup, an aggregate over an index range or a
small table (summary rows kept by the gate and the projections), never a scan
of the log: the dashboard answers in the same time at a million records.

Who sees what: every role that may open the admin sees the queues read-only
(viewers are the auditors); webhooks and failed reports are shown from the
compliance officer up, who can act on them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, IntegerField, Min, Q, Sum
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import Role
from accounts.roles import has_role, user_role
from approvals.models import ApprovalRequest
from audit.models import Checkpoint, Record, WebhookEndpoint
from audit.services import DEFAULT_LOG
from compliance_site.decimals import decimal_text
from surveillance.checks import worst_position
from surveillance.models import AgentOrderCount, Alert, KillSwitch, MarketRisk, Order
from surveillance.services.alerts import sla_hours

from ..models import Report
from ..store import rejection_reason_counts

HOUR_US = 3_600_000_000
MAX_REASON_ORDERS = 20_000  # rejection reasons: the latest rejected orders of the window


@dataclass
class Attention:
    """The "needs attention now" panel, for one user."""

    role: str
    now: dt.datetime
    pending_approvals: int = 0
    nearest_approvals: list[ApprovalRequest] = field(default_factory=list)
    alerts_by_severity: list[dict[str, Any]] = field(default_factory=list)
    alerts_active: int = 0
    alerts_overdue: int = 0
    kill_switches: list[KillSwitch] = field(default_factory=list)
    checkpoint: Checkpoint | None = None
    checkpoint_age_s: int | None = None
    verification: dict[str, Any] | None = None
    failing_webhooks: list[WebhookEndpoint] | None = None
    failed_reports: list[Report] | None = None


def attention(*, user: Any, now: dt.datetime | None = None) -> Attention:
    now = now or timezone.now()
    panel = Attention(role=user_role(user) or "", now=now)
    if not has_role(user, Role.VIEWER):
        return panel

    pending = ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING)
    panel.pending_approvals = pending.count()  # a pending queue is short (timeouts)
    panel.nearest_approvals = list(
        pending.select_related("requested_by_agent").order_by("expires_at")[:5]
    )

    hours = sla_hours()
    rows = {
        row["severity"]: row
        for row in Alert.objects.filter(status__in=Alert.ACTIVE)
        .values("severity")
        .annotate(
            n=Count("id"),
            oldest=Min("created_at"),
            overdue=Count("id", filter=Q(due_at__lt=now)),
        )
    }
    for severity in reversed(Alert.Severity.values):
        row = rows.get(severity)
        panel.alerts_by_severity.append(
            {
                "severity": severity,
                "label": Alert.Severity(severity).label,
                "count": row["n"] if row else 0,
                "oldest": row["oldest"] if row else None,
                "overdue": row["overdue"] if row else 0,
                "sla_hours": hours[severity],
            }
        )
    panel.alerts_active = sum(r["count"] for r in panel.alerts_by_severity)
    panel.alerts_overdue = sum(r["overdue"] for r in panel.alerts_by_severity)

    panel.kill_switches = list(
        KillSwitch.objects.filter(active=True).select_related("activated_by")[:20]
    )
    panel.checkpoint = (
        Checkpoint.objects.filter(log__name=DEFAULT_LOG).order_by("-tree_size", "-pk").first()
    )
    if panel.checkpoint is not None:
        panel.checkpoint_age_s = max(
            int(now.timestamp() - panel.checkpoint.timestamp_us / 1_000_000), 0
        )
    verified = (
        Record.objects.filter(log__name=DEFAULT_LOG, event_type="AUDIT_VERIFIED")
        .order_by("-seq")
        .first()
    )
    if verified is not None:
        data = verified.as_dict().get("data") or {}
        panel.verification = {
            "seq": verified.seq,
            "recorded_at_us": verified.recorded_at_us,
            "ok": data.get("ok"),
            "checked": data.get("checked"),
            "first_bad_seq": data.get("first_bad_seq"),
        }

    if has_role(user, Role.COMPLIANCE_OFFICER):
        panel.failing_webhooks = list(
            WebhookEndpoint.objects.filter(
                Q(consecutive_failures__gt=0) | Q(is_active=False, disabled_at__isnull=False)
            ).order_by("-consecutive_failures")[:10]
        )
        panel.failed_reports = list(
            Report.objects.filter(
                status=Report.Status.FAILED, requested_at__gte=now - dt.timedelta(days=7)
            ).order_by("-requested_at")[:10]
        )
    return panel


def _exposure(row: MarketRisk) -> Decimal:
    """A market's gross exposure as the gate values it: its worst reachable
    position (filled plus resting buys, or minus resting sells) at its mark."""
    price = row.mark_price if row.mark_price is not None else row.last_price
    if price is None:
        return Decimal(0)
    return worst_position(row.position, row.open_buy, row.open_sell) * price


def charts(*, user: Any, hours: int = 24, now: dt.datetime | None = None) -> dict[str, Any]:
    """The trading day's series, hourly over the last `hours` hours, as plain
    JSON (decimal strings for money): orders by decision, rejection reasons,
    alerts by detector, cancel ratio, gross exposure by market."""
    if not has_role(user, Role.VIEWER):
        return {}
    now = now or timezone.now()
    now_us = int(now.timestamp() * 1_000_000)
    first_bucket = now_us // HOUR_US - hours + 1
    since_us = first_bucket * HOUR_US
    buckets = list(range(first_bucket, first_bucket + hours))
    labels = [
        timezone.localtime(dt.datetime.fromtimestamp(b * 3600, tz=dt.UTC)).strftime("%H:%M")
        for b in buckets
    ]
    index = {b: i for i, b in enumerate(buckets)}

    # Orders by decision per hour: an aggregate over the (created_at_us, decision) index.
    decisions = {name: [0] * hours for name in ("accepted", "rejected", "held")}
    per_hour = (
        Order.objects.filter(created_at_us__gte=since_us)
        .annotate(bucket=Cast(F("created_at_us") / HOUR_US, IntegerField()))
        .values("bucket", "decision")
        .annotate(n=Count("id"))
        .order_by()
    )
    for row in per_hour:
        i = index.get(int(row["bucket"]))
        if i is not None and row["decision"] in decisions:
            decisions[row["decision"]][i] += row["n"]

    # Rejection reasons: the codes of the window's latest rejected orders.
    reasons = rejection_reason_counts(since_us=since_us, max_orders=MAX_REASON_ORDERS, top=12)

    # Alerts by detector in the window (index on created_at).
    detectors = dict(
        Alert.objects.filter(created_at__gte=dt.datetime.fromtimestamp(since_us / 1e6, tz=dt.UTC))
        .values_list("detector")
        .annotate(n=Count("id"))
        .order_by()
    )

    # Cancel ratio per hour from the gate's hourly counters (summary rows).
    live = [0] * hours
    cancels = [0] * hours
    for counted in (
        AgentOrderCount.objects.filter(width_s=3600, start_us__gte=since_us)
        .values("start_us")
        .annotate(live=Sum("live"), cancels=Sum("cancels"))
        .order_by()
    ):
        i = index.get(counted["start_us"] // HOUR_US)
        if i is not None:
            live[i] += counted["live"] or 0
            cancels[i] += counted["cancels"] or 0
    ratio = [round(c / n, 4) if n else None for c, n in zip(cancels, live, strict=True)]

    markets = sorted(
        ((row.market, _exposure(row)) for row in MarketRisk.objects.all()),
        key=lambda item: item[1],
        reverse=True,
    )[:20]
    return {
        "generated_at_us": now_us,
        "hours": hours,
        "labels": labels,
        "orders": decisions,
        "rejection_reasons": reasons,
        "alerts_by_detector": dict(sorted(detectors.items(), key=lambda kv: -kv[1])),
        "cancel_ratio": ratio,
        "exposure_by_market": {market: decimal_text(value) for market, value in markets},
    }
