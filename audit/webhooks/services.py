"""Webhook subscriptions, the outbox, and delivery (Standard Webhooks).

Rules enforced here and nowhere else:

* `webhook_notify` writes a message and one delivery row per subscribed,
  active endpoint inside the caller's transaction (the outbox): the notice
  commits with the change that caused it or not at all. After commit the
  broker is only asked to wake a worker; if it is down, the beat sweep sends
  the rows later. Nothing is lost to a broker outage.
* A delivery is sent by whoever claims it with a conditional UPDATE
  (pending and due, or sending with an expired lease); the claim carries a
  token, and only the claimant may finish it. Sending happens outside any
  transaction. At least once: a delivery is retried with exponential backoff
  and jitter until the receiver answers 2xx, for as long as its endpoint is
  active. Duplicates carry the same `webhook-id`.
* Every try is logged as a WebhookAttempt.
* An endpoint is disabled when it answers 410 Gone, or when it has failed at
  least COMPLIANCE_WEBHOOK_DISABLE_AFTER_FAILURES times in a row over at least
  COMPLIANCE_WEBHOOK_DISABLE_AFTER_SECS. Its undelivered rows stay pending.
* URLs pass the SSRF guard at registration and before every send (ssrf.py).
* Only compliance officers and admins register endpoints.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import random
import secrets
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from accounts.models import Role, User
from accounts.roles import has_role
from compliance_site.dispatch import publish
from compliance_site.exceptions import Forbidden, Invalid

from ..models import Log, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookMessage
from ..services.log import DEFAULT_LOG, Actor, record_event
from . import ssrf

logger = logging.getLogger(__name__)

SECRET_PREFIX = "whsec_"
EVENT_TYPES: tuple[str, ...] = (
    "SURVEILLANCE_ALERT",
    "ALERT_UPDATED",
    "APPROVAL_REQUESTED",
    "APPROVAL_GRANTED",
    "APPROVAL_DENIED",
    "APPROVAL_EXPIRED",
    "KILL_SWITCH_ACTIVATED",
    "KILL_SWITCH_DEACTIVATED",
    "CHECKPOINT_CREATED",
)
ALL_EVENTS = "*"
MAX_EVENT_TYPES = 50
SWEEP_LIMIT = 200
Status = WebhookDelivery.Status


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def backoff_base_secs() -> float:
    return _setting("COMPLIANCE_WEBHOOK_BACKOFF_BASE_SECS", 5)


def backoff_max_secs() -> float:
    return _setting("COMPLIANCE_WEBHOOK_BACKOFF_MAX_SECS", 3600)


def timeout_secs() -> float:
    return _setting("COMPLIANCE_WEBHOOK_TIMEOUT_SECS", 10)


def disable_after_failures() -> int:
    return int(_setting("COMPLIANCE_WEBHOOK_DISABLE_AFTER_FAILURES", 20))


def disable_after_secs() -> float:
    return _setting("COMPLIANCE_WEBHOOK_DISABLE_AFTER_SECS", 3 * 86400)


def backoff_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """Exponential backoff with 'equal jitter': half the step fixed, half random,
    so retries spread out but never come sooner than half the step."""
    step = min(backoff_max_secs(), backoff_base_secs() * 2 ** max(attempts - 1, 0))
    jitter = (rng or random).uniform(0, step / 2)
    return timedelta(seconds=step / 2 + jitter)


# --- signing (Standard Webhooks) ----------------------------------------------------


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """`v1,` + base64 HMAC-SHA256 over `id.timestamp.body` with the decoded secret."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def signed_headers(
    secret: str, msg_id: str, body: str, timestamp: int | None = None
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/json",
        "user-agent": "compliance-backoffice-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


# --- subscriptions ----------------------------------------------------------------


def _clean_event_types(event_types: Any) -> list[str]:
    if not isinstance(event_types, list) or not event_types:
        raise Invalid("invalid_event_types", "event_types must be a non-empty list")
    if len(event_types) > MAX_EVENT_TYPES:
        raise Invalid("invalid_event_types", "too many event types")
    from .records import ALL_RECORDS, record_event_types

    known = {*EVENT_TYPES, ALL_EVENTS, ALL_RECORDS} | record_event_types()
    unknown = [t for t in event_types if not isinstance(t, str) or t not in known]
    if unknown:
        raise Invalid(
            "invalid_event_types",
            f"unknown event types {unknown}; choose notices ({', '.join(EVENT_TYPES)} or "
            f"'*' for all of them), record event types, or '{ALL_RECORDS}' for every record",
        )
    return sorted(set(event_types))


@transaction.atomic
def webhook_endpoint_create(
    *, url: str, event_types: list[str], acting_user: User, description: str = ""
) -> WebhookEndpoint:
    """Register a receiver (compliance officers and admins). The URL must pass
    the SSRF guard; the returned endpoint carries its new secret, which is
    shown to the caller once."""
    if not has_role(acting_user, Role.COMPLIANCE_OFFICER):
        raise Forbidden("permission_denied", "Only compliance officers register webhooks.")
    types = _clean_event_types(event_types)
    try:
        ssrf.check_url(url)
    except ssrf.UnsafeURL as exc:
        raise Invalid("unsafe_url", exc.detail) from exc
    endpoint = WebhookEndpoint.objects.create(
        url=url,
        event_types=types,
        secret=new_secret(),
        description=description,
        created_by=acting_user,
    )
    _record_change(endpoint, "registered", Actor.for_user(acting_user))
    # Records are streamed to it from here on, not the history before it.
    endpoint.records_from_seq = (
        Log.objects.filter(name=DEFAULT_LOG).values_list("size", flat=True).first() or 0
    )
    endpoint.save(update_fields=["records_from_seq"])
    return endpoint


def _record_change(endpoint: WebhookEndpoint, action: str, actor: Actor, reason: str = "") -> None:
    record_event(
        "WEBHOOK_CHANGED",
        actor=actor,
        data={
            "endpoint_id": endpoint.pk,
            "action": action,
            "url": endpoint.url,
            "event_types": list(endpoint.event_types),
            "reason": reason,
        },
    )


def webhook_endpoint_list_for_user(*, user: Any) -> QuerySet[WebhookEndpoint]:
    """Endpoints the caller may read: viewers and up (auditors see where notices go).
    Without their secrets, which are never shown after creation (and decrypted
    only to sign a delivery)."""
    if not isinstance(user, User) or not has_role(user, Role.VIEWER):
        return WebhookEndpoint.objects.none()
    return WebhookEndpoint.objects.defer("secret").order_by("pk")


def webhook_deliveries_for_user(*, user: Any, endpoint_id: int) -> QuerySet[WebhookDelivery] | None:
    endpoint = webhook_endpoint_list_for_user(user=user).filter(pk=endpoint_id).first()
    if endpoint is None:
        return None
    return (
        WebhookDelivery.objects.filter(endpoint=endpoint)
        .select_related("message")
        .prefetch_related("attempt_log")
        .order_by("-pk")
    )


# --- the outbox ---------------------------------------------------------------------


def _subscribers(event_type: str) -> list[WebhookEndpoint]:
    # A handful of rows; JSON containment is not portable to SQLite. The
    # secrets stay encrypted: the change being recorded does not need them (and
    # a key misconfigured must fail deliveries, not the change).
    return [
        e
        for e in WebhookEndpoint.objects.filter(is_active=True).defer("secret").order_by("pk")
        if event_type in e.event_types or ALL_EVENTS in e.event_types
    ]


def webhook_notify(
    event_type: str, data: dict[str, Any], *, seq: int | None = None
) -> WebhookMessage | None:
    """Queue a notice to every active endpoint subscribed to `event_type`, in
    the caller's transaction. `data` must be JSON without floats (decimal
    strings). Returns the message, or None when nobody subscribes."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"{event_type} is not a webhook event type")
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("webhook notices are queued inside the caller's transaction")
    endpoints = _subscribers(event_type)
    if not endpoints:
        return None
    now = timezone.now()
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat().replace("+00:00", "Z"), "data": data},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    message = WebhookMessage.objects.create(
        msg_id="msg_" + secrets.token_hex(16),
        event_type=event_type,
        body=body,
        seq=seq,
        created_at=now,
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint=e, message=message, next_attempt_at=now, created_at=now)
            for e in endpoints
        ]
    )
    ids = [d.pk for d in deliveries if d.pk is not None]
    transaction.on_commit(lambda: _wake(ids), robust=True)
    return message


def _wake(delivery_ids: list[int]) -> None:
    """After commit: ask a worker to send now, from the dispatch thread (no
    request waits for the broker): the row is already safe in the outbox and
    the sweep sends it if the broker is down."""
    if delivery_ids:
        publish("audit.webhooks.tasks.webhook_deliver_task", delivery_ids)


def checkpoint_notify(checkpoint: Any) -> None:
    """Tell subscribers of a checkpoint as it is published (signed, or with a
    witness quorum, cosigned by k witnesses: the note carries their lines)."""
    from ..services.witnesses import note_with_cosignatures

    webhook_notify(
        "CHECKPOINT_CREATED",
        {
            "origin": settings.COMPLIANCE_LOG_ORIGIN,
            "tree_size": checkpoint.tree_size,
            "root_hash": base64.b64encode(bytes(checkpoint.root_hash)).decode("ascii"),
            "timestamp_us": checkpoint.timestamp_us,
            "note": note_with_cosignatures(checkpoint),
        },
    )


# --- delivery -------------------------------------------------------------------------


def _claimable(now: datetime) -> Q:
    return Q(status=Status.PENDING, next_attempt_at__lte=now) | Q(
        status=Status.SENDING, claimed_until__lt=now
    )


def _lease() -> timedelta:
    return timedelta(seconds=timeout_secs() * (ssrf.MAX_REDIRECTS + 1) + 30)


def webhook_delivery_send(*, delivery_id: int) -> str:
    """Claim and send one delivery; returns the outcome ("delivered",
    "http_error", "timeout", "error", "refused", "gone") or "not_claimed" when
    it is not due, already delivered, its endpoint is disabled, or another
    worker holds it. Runs outside any transaction."""
    now = timezone.now()
    token = secrets.token_hex(8)
    claimed = (
        WebhookDelivery.objects.filter(pk=delivery_id, endpoint__is_active=True)
        .filter(_claimable(now))
        .update(
            status=Status.SENDING,
            claimed_until=now + _lease(),
            claim_token=token,
            attempts=F("attempts") + 1,
        )
    )
    if claimed != 1:
        return "not_claimed"
    delivery = WebhookDelivery.objects.select_related("endpoint", "message").get(pk=delivery_id)
    endpoint, message = delivery.endpoint, delivery.message
    ts = int(time.time())
    headers = signed_headers(endpoint.secret, message.msg_id, message.body, ts)
    started = timezone.now()
    clock = time.monotonic()
    status_code: int | None = None
    excerpt = error = ""
    try:
        response = ssrf.safe_post(
            endpoint.url, message.body.encode("utf-8"), headers, timeout=timeout_secs()
        )
    except ssrf.UnsafeURL as exc:
        outcome, error = "refused", exc.detail
    except TimeoutError as exc:
        outcome, error = "timeout", f"no answer within {timeout_secs()}s ({exc})"
    except (OSError, HTTPException) as exc:
        outcome, error = "error", f"{type(exc).__name__}: {exc}"
    else:
        status_code, excerpt = response.status, response.excerpt
        if 200 <= response.status < 300:
            outcome = "delivered"
        elif response.status == 410:
            outcome = "gone"
        else:
            outcome, error = "http_error", f"HTTP {response.status}"
    WebhookAttempt.objects.create(
        delivery=delivery,
        number=delivery.attempts,
        started_at=started,
        duration_ms=int((time.monotonic() - clock) * 1000),
        webhook_timestamp=ts,
        status_code=status_code,
        outcome=outcome,
        error=error[:2000],
        response_excerpt=excerpt[:500],
    )
    _finish(delivery, token, outcome, status_code, error)
    return outcome


def _finish(
    delivery: WebhookDelivery, token: str, outcome: str, status_code: int | None, error: str
) -> None:
    now = timezone.now()
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, claim_token=token, status=Status.SENDING)
    endpoint = WebhookEndpoint.objects.filter(pk=delivery.endpoint_id)

    def disable(reason: str, **still: Any) -> None:
        with transaction.atomic():
            if endpoint.filter(is_active=True, **still).update(
                is_active=False, disabled_at=now, disabled_reason=reason
            ):
                _record_change(endpoint.get(), "disabled", Actor.system("webhooks"), reason)

    if outcome == "delivered":
        mine.update(
            status=Status.DELIVERED,
            delivered_at=now,
            last_status_code=status_code,
            last_error="",
            claimed_until=None,
        )
        endpoint.update(consecutive_failures=0, failing_since=None)
        return
    if outcome == "gone":
        mine.update(
            status=Status.FAILED,
            last_status_code=status_code,
            last_error="410 Gone",
            claimed_until=None,
        )
        disable("the receiver answered 410 Gone")
        return
    mine.update(
        status=Status.PENDING,
        next_attempt_at=now + backoff_delay(delivery.attempts),
        last_status_code=status_code,
        last_error=error[:2000],
        claimed_until=None,
    )
    endpoint.update(consecutive_failures=F("consecutive_failures") + 1)
    endpoint.filter(failing_since__isnull=True).update(failing_since=now)
    disable(
        f"failed {disable_after_failures()}+ times in a row; last: {error[:100]}",
        consecutive_failures__gte=disable_after_failures(),
        failing_since__lte=now - timedelta(seconds=disable_after_secs()),
    )


def webhook_deliver(delivery_ids: Iterable[int]) -> dict[str, int]:
    """Send the given deliveries (those still claimable); outcome counts."""
    counts: dict[str, int] = {}
    for delivery_id in delivery_ids:
        try:
            outcome = webhook_delivery_send(delivery_id=delivery_id)
        except Exception:
            logger.exception(
                "webhook delivery %s failed unexpectedly; the sweep retries it", delivery_id
            )
            outcome = "crashed"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def webhook_deliver_due(*, limit: int = SWEEP_LIMIT, now: datetime | None = None) -> dict[str, int]:
    """The sweep (beat): send every due delivery, and retake those whose worker
    died (lease expired). Bounded by `limit` per run."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(endpoint__is_active=True)
        .filter(_claimable(now))
        .order_by("next_attempt_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    return webhook_deliver(ids)


@transaction.atomic
def webhook_endpoint_enable(*, endpoint_id: int, acting_user: User) -> WebhookEndpoint:
    """Enable a disabled endpoint again (compliance officers): its pending
    deliveries go out on the next sweep."""
    if not has_role(acting_user, Role.COMPLIANCE_OFFICER):
        raise Forbidden("permission_denied", "Only compliance officers manage webhooks.")
    was_disabled = WebhookEndpoint.objects.filter(pk=endpoint_id, is_active=False).update(
        is_active=True,
        disabled_at=None,
        disabled_reason="",
        consecutive_failures=0,
        failing_since=None,
    )
    endpoint = WebhookEndpoint.objects.get(pk=endpoint_id)
    if was_disabled:
        _record_change(endpoint, "enabled", Actor.for_user(acting_user))
    return endpoint
