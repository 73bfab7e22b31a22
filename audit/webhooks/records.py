"""Webhooks for every record: a subscription may name any event type of the
log (trading ones included), so a firm can stream its trail to a SIEM or a
second archive. Each delivery carries the record exactly as the API shows it
(the six hashed keys plus leaf_hash and chain_hash) and its leaf hash, so the
receiver can check it against a checkpoint.

The hot paths (gate, ingest) are not touched: the stream is fanned out from
the log by the beat sweep, behind a cursor. Under the cursor's row lock a
window of records past it is read, one message per subscribed record is
written (msg_id derived from log and seq, unique) with a delivery per
subscribed endpoint, and the cursor moves past the window, all in one
transaction. So each record is queued once, however often or concurrently the
sweep runs; delivery is then the outbox's usual at-least-once with the same
`webhook-id` on every retry.

The nine notice types (alerts, approvals, kill switches, checkpoints) keep
their own notices, sent in the transaction of the change, and are not
streamed a second time. A subscription to `records:*` receives every record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..event_types import CORE_TYPES
from ..models import (
    EventType,
    Log,
    Record,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
    WebhookRecordCursor,
)
from ..services.log import DEFAULT_LOG

ALL_RECORDS = "records:*"
WINDOW = 2000  # records examined per transaction


def record_event_types() -> set[str]:
    """Every event type a record can have: the core ones and the firm's own."""
    return set(CORE_TYPES) | set(EventType.objects.values_list("name", flat=True))


def _record_subscribers(notice_types: tuple[str, ...]) -> list[tuple[WebhookEndpoint, set[str]]]:
    """Active endpoints that subscribe to records, with the record types they want
    (an empty set with `records:*` means all)."""
    out: list[tuple[WebhookEndpoint, set[str]]] = []
    for endpoint in WebhookEndpoint.objects.filter(is_active=True).defer("secret").order_by("pk"):
        types = set(endpoint.event_types)
        if ALL_RECORDS in types:
            out.append((endpoint, set()))
            continue
        wanted = {t for t in types if t not in notice_types and t != "*"}
        if wanted:
            out.append((endpoint, wanted))
    return out


def _body(record: Record) -> str:
    recorded = datetime.fromtimestamp(record.recorded_at_us / 1_000_000, tz=UTC)
    data: dict[str, Any] = {
        "seq": record.seq,
        "leaf_hash": bytes(record.leaf_hash).hex(),
        "record": record.as_dict(),
    }
    return json.dumps(
        {
            "type": record.event_type,
            "timestamp": recorded.isoformat().replace("+00:00", "Z"),
            "data": data,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def message_id(log: Log, seq: int) -> str:
    return f"msg_rec_{log.pk}_{seq}"


def webhook_records_fanout(*, log_name: str = DEFAULT_LOG, window: int = WINDOW) -> list[int]:
    """Queue the records past the cursor for their subscribers; returns the new
    delivery ids (the caller may wake a worker). Runs from the beat sweep."""
    from .services import EVENT_TYPES

    with transaction.atomic():
        log = Log.objects.filter(name=log_name).first()
        if log is None:
            return []
        cursor, _ = WebhookRecordCursor.objects.get_or_create(log=log)
        cursor = WebhookRecordCursor.objects.select_for_update().get(pk=cursor.pk)
        size = Log.objects.filter(pk=log.pk).values_list("size", flat=True).get()
        subscribers = _record_subscribers(EVENT_TYPES)
        end = min(size - 1, cursor.last_seq + window)
        if end <= cursor.last_seq:
            return []
        if not subscribers:  # a subscription starts with the records after it
            cursor.last_seq, cursor.updated_at = size - 1, timezone.now()
            cursor.save(update_fields=["last_seq", "updated_at"])
            return []
        wanted: set[str] = set()
        everything = any(not types for _, types in subscribers)
        for _, types in subscribers:
            wanted |= types
        rows = Record.objects.filter(log=log, seq__gt=cursor.last_seq, seq__lte=end)
        if not everything:
            rows = rows.filter(event_type__in=wanted)
        now = timezone.now()
        ids: list[int] = []
        for record in rows.order_by("seq").iterator(chunk_size=500):
            if record.event_type in EVENT_TYPES:
                continue  # has its own notice
            endpoints = [
                e
                for e, types in subscribers
                if (not types or record.event_type in types) and record.seq >= e.records_from_seq
            ]
            if not endpoints:
                continue
            message, created = WebhookMessage.objects.get_or_create(
                msg_id=message_id(log, record.seq),
                defaults={
                    "event_type": record.event_type,
                    "body": _body(record),
                    "seq": record.seq,
                    "created_at": now,
                },
            )
            if not created:  # queued before (cannot happen past the cursor; be safe)
                continue
            deliveries = WebhookDelivery.objects.bulk_create(
                [
                    WebhookDelivery(
                        endpoint=e, message=message, next_attempt_at=now, created_at=now
                    )
                    for e in endpoints
                ]
            )
            ids.extend(d.pk for d in deliveries if d.pk is not None)
        cursor.last_seq, cursor.updated_at = end, now
        cursor.save(update_fields=["last_seq", "updated_at"])
        return ids
