"""Writes on approval requests: open, grant, deny, expire, and the email notice.

Rules enforced here and nowhere else:

* Every transition records its event (APPROVAL_REQUESTED / _GRANTED / _DENIED /
  _EXPIRED) and queues its outbox notice in the same transaction as the change,
  then calls the kind's resolver in that transaction (fail closed).
* Lock order, as everywhere in the project (surveillance/services/risk.py):
  approval row -> log head -> the kind's own rows (taken by the resolver). The
  ingest path also appends before it touches order and market rows, so taking
  them after the head is what keeps a decision from deadlocking with a fill.
* A status leaves `pending` exactly once: grant and deny are a conditional
  ``UPDATE ... WHERE status='pending' AND expires_at > now`` and expiry is
  ``UPDATE ... WHERE status='pending' AND expires_at <= now``; the row count says
  who won, so a grant racing the expiry task has exactly one winner and the
  loser writes nothing.
* Only holders of `accounts.decide_approvals` (compliance officers, admins)
  decide, and never on a request they made or whose agent they own (four eyes).
  Refusals raise before anything is written.
* Nothing slow runs inside a transaction: email is sent by a task after commit,
  from an outbox row written with the request.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Agent, User
from audit.services import Actor, record_event
from audit.webhooks.services import webhook_notify
from compliance_site.dispatch import publish
from compliance_site.exceptions import Conflict, Forbidden, Invalid, NotFound

from .models import ApprovalRequest, Notification
from .registry import Resolver, get_resolver, recheck_of
from .selectors import decider_emails

logger = logging.getLogger(__name__)

DECIDE_PERMISSION = "accounts.decide_approvals"
DEFAULT_TIMEOUT_SECS = 300
MAX_TIMEOUT_SECS = 7 * 24 * 3600
MAX_REASON_CHARS = 2000
EXPIRE_BATCH_SIZE = 100
EXPIRE_MAX_BATCHES = 50
# An email claim older than this is presumed lost with its worker and is retried.
EMAIL_CLAIM_LEASE = timedelta(minutes=5)
EXPIRY_ACTOR = Actor.system("approvals-expiry")
_MAX_SAFE_INT = 2**53 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Status = ApprovalRequest.Status


class ApprovalRecheckFailed(Conflict):
    """The grant's re-check failed (CONTRACT 12): 409 with the reasons; nothing changed."""

    def __init__(self, reasons: list[dict[str, Any]]):
        shown = "; ".join(str(r.get("detail") or r.get("code")) for r in reasons)
        super().__init__(
            "recheck_failed", f"The re-check at the grant failed: {shown}", reasons=reasons
        )
        self.reasons = reasons


def to_us(moment: datetime) -> int:
    """Exact integer microseconds since the epoch (no float on the way)."""
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _freeze(value: Any, path: str = "summary") -> Any:
    """A JSON copy of `value` fit for a hashed record: decimals become decimal
    strings, floats are refused (CONTRACT section 3), integers stay within the
    range RFC 8785 represents exactly."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INT:
            raise Invalid("invalid_summary", f"{path}: integer out of range")
        return value
    if isinstance(value, float):
        raise Invalid("float_not_allowed", f"{path}: use a decimal string, not a float")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise Invalid("invalid_summary", f"{path}: decimal must be finite")
        return format(value, "f")
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise Invalid("invalid_summary", f"{path}: keys must be strings")
            out[key] = _freeze(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_freeze(item, f"{path}[{i}]") for i, item in enumerate(value)]
    raise Invalid("invalid_summary", f"{path}: {type(value).__name__} is not JSON")


def _requester_actor(request: ApprovalRequest) -> Actor:
    # A person first: a manual order names both the person and the agent.
    if request.requested_by_user is not None:
        return Actor.for_user(request.requested_by_user)
    if request.requested_by_agent is not None:
        return Actor.agent(request.requested_by_agent.agent_id)
    return Actor.system("approvals")


def notice_payload(request: ApprovalRequest, event_type: str, seq: int) -> dict[str, Any]:
    """What a webhook receiver (typically the bot) needs to act on the notice
    without another call; `seq` lets it fetch the record and its proof."""
    agent = request.requested_by_agent
    return {
        "event_type": event_type,
        "seq": seq,
        "approval": {
            "id": request.pk,
            "kind": request.kind,
            "subject_id": request.subject_id,
            "status": request.status,
            "summary": request.summary,
            "agent_id": agent.agent_id if agent is not None else None,
            "requested_at": request.requested_at.isoformat(),
            "expires_at": request.expires_at.isoformat(),
            "decided_at": request.decided_at.isoformat() if request.decided_at else None,
            "reason": request.reason,
        },
    }


def _queue_webhook(request: ApprovalRequest, event_type: str, seq: int) -> None:
    """The webhook notice of a transition: the Notification row is the
    request's own ledger of what was told; delivery (signing, retries, every
    attempt) is the audit app's webhook outbox, written here in the same
    transaction."""
    payload = notice_payload(request, event_type, seq)
    Notification.objects.create(
        approval=request,
        channel=Notification.Channel.WEBHOOK,
        event_type=event_type,
        seq=seq,
        payload=payload,
    )
    webhook_notify(event_type, payload, seq=seq)


def _enqueue_email(notification_id: int) -> None:
    """After commit: hand the email to a worker, from the dispatch thread (no
    request waits for the broker). If the broker is down the row stays unsent
    and the sweep task sends it later."""
    publish("approvals.tasks.approval_notification_email_task", notification_id)


@transaction.atomic
def approval_open(
    *,
    kind: str,
    subject_id: str,
    summary: dict[str, Any],
    requested_by_user: User | None = None,
    requested_by_agent: Agent | None = None,
    timeout_secs: int = DEFAULT_TIMEOUT_SECS,
    now: datetime | None = None,
) -> ApprovalRequest:
    """Hold an action for a human decision and return the pending request.

    Called by server code (the gate, config changes) inside its own transaction:
    the request, its APPROVAL_REQUESTED record and its notices commit with the
    caller's change or not at all. `timeout_secs` comes from the caller (the
    compliance config's `approval_timeout_secs`). The kind must have a resolver,
    or nobody could ever carry out the decision. `now` fixes the request time
    for callers that already stamped their decision."""
    get_resolver(kind)
    if not isinstance(subject_id, str) or not 0 < len(subject_id) <= 128:
        raise Invalid("invalid_subject", "subject_id must be 1..128 characters")
    if isinstance(timeout_secs, bool) or not isinstance(timeout_secs, int):
        raise Invalid("invalid_timeout", "timeout_secs must be an integer")
    if not 0 < timeout_secs <= MAX_TIMEOUT_SECS:
        raise Invalid("invalid_timeout", f"timeout_secs must be 1..{MAX_TIMEOUT_SECS}")
    if not isinstance(summary, dict):
        raise Invalid("invalid_summary", "summary must be an object")
    frozen = _freeze(summary)
    requested_at = now or timezone.now()
    request = ApprovalRequest.objects.create(
        kind=kind,
        subject_id=subject_id,
        summary=frozen,
        requested_by_user=requested_by_user,
        requested_by_agent=requested_by_agent,
        requested_at=requested_at,
        expires_at=requested_at + timedelta(seconds=timeout_secs),
    )
    actor = _requester_actor(request)
    record = record_event(
        "APPROVAL_REQUESTED",
        actor=actor,
        data={
            "approval_id": request.pk,
            "kind": kind,
            "subject_id": subject_id,
            "summary": frozen,
            "requested_by": {"type": actor.type, "id": actor.id},
            "requested_at_us": to_us(request.requested_at),
            "expires_at_us": to_us(request.expires_at),
        },
    )
    _queue_webhook(request, "APPROVAL_REQUESTED", record.seq)
    email = Notification.objects.create(
        approval=request,
        channel=Notification.Channel.EMAIL,
        event_type="APPROVAL_REQUESTED",
        seq=record.seq,
        payload=notice_payload(request, "APPROVAL_REQUESTED", record.seq),
    )
    # robust: the caller's change is committed by then; a broker error must not
    # turn it into a 500. The sweep task picks the row up instead.
    transaction.on_commit(lambda: _enqueue_email(email.pk), robust=True)
    return request


def may_decide(user: Any) -> bool:
    """Holds the right to decide at all (role), before any four-eyes check."""
    return isinstance(user, User) and user.is_active and user.has_perm(DECIDE_PERMISSION)


def _check_four_eyes(request: ApprovalRequest, acting_user: User, resolver: Resolver) -> None:
    if request.requested_by_user_id is not None and request.requested_by_user_id == acting_user.pk:
        raise Forbidden(
            "four_eyes_requester", "You requested this action; another officer must decide."
        )
    agent = request.requested_by_agent
    owners = {agent.owner_id} if agent is not None and agent.owner_id is not None else set()
    owner = resolver.owner_of(request)
    if owner is not None:
        owners.add(owner.pk)
    if acting_user.pk in owners:
        raise Forbidden(
            "four_eyes_owner",
            "You own the agent or subject of this request; another officer must decide.",
        )


def _clean_reason(reason: Any) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise Invalid("reason_required", "A reason is required.")
    if len(text) > MAX_REASON_CHARS:
        raise Invalid("reason_too_long", f"A reason has at most {MAX_REASON_CHARS} characters.")
    return text


@transaction.atomic
def _decide(*, request_id: int, acting_user: User, reason: str, outcome: str) -> ApprovalRequest:
    text = _clean_reason(reason)
    if not may_decide(acting_user):
        raise Forbidden(
            "permission_denied", "Only compliance officers and admins decide approvals."
        )
    request = (
        ApprovalRequest.objects.select_related("requested_by_agent__owner", "requested_by_user")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise NotFound("not_found", "No such approval request.")
    resolver = get_resolver(request.kind)
    _check_four_eyes(request, acting_user, resolver)

    now = timezone.now()
    if outcome == Status.GRANTED and request.status == Status.PENDING and request.expires_at > now:
        # Against the state now, not the state when it was held; before the
        # status changes, so a refusal leaves the request pending and writes nothing.
        reasons = recheck_of(resolver, request)
        if reasons:
            raise ApprovalRecheckFailed(reasons)
    won = ApprovalRequest.objects.filter(
        pk=request.pk, status=Status.PENDING, expires_at__gt=now
    ).update(status=outcome, decided_by=acting_user, decided_at=now, reason=text)
    if won != 1:
        request.refresh_from_db(fields=["status"])
        if request.status in (Status.PENDING, Status.EXPIRED):
            raise Conflict("expired", "The request has expired.")
        raise Conflict("already_decided", f"The request is already {request.status}.")
    request.status, request.decided_by, request.decided_at, request.reason = (
        outcome,
        acting_user,
        now,
        text,
    )

    event_type = "APPROVAL_GRANTED" if outcome == Status.GRANTED else "APPROVAL_DENIED"
    record = record_event(
        event_type,
        actor=Actor.for_user(acting_user),
        data={
            "approval_id": request.pk,
            "kind": request.kind,
            "subject_id": request.subject_id,
            "reason": text,
            "decided_at_us": to_us(now),
            "expires_at_us": to_us(request.expires_at),
        },
    )
    # After the record: the kind's rows are locked after the log head, the lock
    # order every writer follows (see the module docstring).
    if outcome == Status.GRANTED:
        resolver.on_grant(request, acting_user)
    else:
        resolver.on_deny(request, acting_user)
    _queue_webhook(request, event_type, record.seq)
    return request


def approval_grant(*, request_id: int, acting_user: User, reason: str) -> ApprovalRequest:
    """Grant a pending request and carry out the held action (resolver.on_grant).
    The kind's re-check runs first; if it finds reasons, ApprovalRecheckFailed
    (409 `recheck_failed`) and nothing changes: the request stays pending.

    For compliance officers and admins who neither requested it nor own its
    agent or subject (403 otherwise); a decided or expired request is a 409.
    Call it in its own transaction: it takes the request row, then the log head."""
    return _decide(
        request_id=request_id, acting_user=acting_user, reason=reason, outcome=Status.GRANTED
    )


def approval_deny(*, request_id: int, acting_user: User, reason: str) -> ApprovalRequest:
    """Deny a pending request (resolver.on_deny). Same rights and refusals as grant."""
    return _decide(
        request_id=request_id, acting_user=acting_user, reason=reason, outcome=Status.DENIED
    )


def _expire_one(request_id: int, now: datetime) -> bool:
    """Expire one request if it is still pending and due: status, record, the
    kind's resolver, the notice. Returns whether this call made the transition
    (False when a concurrent grant or sweep won)."""
    won = ApprovalRequest.objects.filter(
        pk=request_id, status=Status.PENDING, expires_at__lte=now
    ).update(status=Status.EXPIRED, decided_at=now)
    if won != 1:
        return False
    request = ApprovalRequest.objects.select_related("requested_by_agent").get(pk=request_id)
    resolver = get_resolver(request.kind)
    record = record_event(
        "APPROVAL_EXPIRED",
        actor=EXPIRY_ACTOR,
        data={
            "approval_id": request.pk,
            "kind": request.kind,
            "subject_id": request.subject_id,
            "expired_at_us": to_us(now),
            "expires_at_us": to_us(request.expires_at),
        },
    )
    resolver.on_expire(request)
    _queue_webhook(request, "APPROVAL_EXPIRED", record.seq)
    return True


@transaction.atomic
def _expire_batch(now: datetime, batch_size: int, skip: set[int]) -> tuple[int, int]:
    """Claim up to `batch_size` due requests and expire each. Returns (expired,
    claimed). One transaction per batch: a worker killed mid-batch loses that
    batch's work and nothing else, and a rerun picks it up.

    All the batch's request rows are locked up front, before the log head, so
    the sweep keeps the global lock order. SKIP LOCKED (PostgreSQL) lets two
    sweepers share the work and never makes a sweep that holds the log head
    wait on a row a grant is deciding. Each request gets a savepoint: one
    failing resolver is logged and skipped for this run (its status and record
    roll back with it) instead of blocking the queue."""
    ids = list(
        ApprovalRequest.objects.select_for_update(skip_locked=True)
        .filter(status=Status.PENDING, expires_at__lte=now)
        .exclude(pk__in=skip)
        .order_by("expires_at", "pk")
        .values_list("pk", flat=True)[:batch_size]
    )
    expired = 0
    for request_id in ids:
        try:
            with transaction.atomic():
                expired += _expire_one(request_id, now)
        except Exception:
            logger.exception(
                "approval %s could not be expired; retried on the next run", request_id
            )
            skip.add(request_id)
    return expired, len(ids)


def approval_expire_due(
    now: datetime | None = None,
    *,
    batch_size: int = EXPIRE_BATCH_SIZE,
    max_batches: int = EXPIRE_MAX_BATCHES,
) -> int:
    """Expire every pending request whose deadline has passed; return how many
    this call expired. Run by the beat task every few seconds and by nobody
    else (the system is the actor).

    Idempotent: a second run finds nothing due. Bounded: at most
    `batch_size * max_batches` per call; the next tick continues. Each batch
    commits on its own, so a run killed halfway leaves whole batches done and
    the rest pending for the rerun. `now` defaults to the clock at each batch."""
    total = 0
    skip: set[int] = set()
    for _ in range(max_batches):
        expired, claimed = _expire_batch(now or timezone.now(), batch_size, skip)
        total += expired
        if claimed < batch_size:
            break
    return total


def _email_text(notice: Notification) -> tuple[str, str]:
    approval = notice.payload["approval"]
    asked = "\n".join(f"  {key}: {value}" for key, value in sorted(approval["summary"].items()))
    subject = f"Approval needed: {approval['kind']} {approval['subject_id']} (#{approval['id']})"
    body = (
        f"A {approval['kind']} is held for a decision by a compliance officer.\n\n"
        f"What is asked:\n{asked or '  (no summary)'}\n\n"
        f"Requested by agent: {approval['agent_id'] or '-'}\n"
        f"Expires at: {approval['expires_at']}\n\n"
        f"Decide in the work queue: /admin/approvals/approvalrequest/?status__exact=pending\n"
        f"Record seq: {notice.seq}\n"
    )
    return subject, body


def notification_email_send(*, notification_id: int) -> bool:
    """Send one email notice to everyone who may decide; at least once.

    Runs outside any transaction (it talks to a mail server). The row is
    claimed with a conditional UPDATE so two workers do not both send it; a
    claim older than EMAIL_CLAIM_LEASE counts as lost and may be retaken. Returns
    whether this call sent (or had nobody to send to)."""
    now = timezone.now()
    claimed = (
        Notification.objects.filter(
            pk=notification_id, channel=Notification.Channel.EMAIL, sent_at__isnull=True
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - EMAIL_CLAIM_LEASE))
        .update(claimed_at=now, attempts=F("attempts") + 1)
    )
    if claimed != 1:
        return False
    notice = Notification.objects.get(pk=notification_id)
    recipients = decider_emails()
    if recipients:
        subject, body = _email_text(notice)
        try:
            send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception as exc:
            Notification.objects.filter(pk=notification_id, claimed_at=now).update(
                claimed_at=None, last_error=str(exc)[:2000]
            )
            raise
    else:
        logger.warning(
            "no compliance officer has an email address; approval notice %s not mailed",
            notification_id,
        )
    Notification.objects.filter(pk=notification_id, claimed_at=now).update(
        sent_at=timezone.now(), last_error="" if recipients else "no recipients"
    )
    return True


def notification_email_send_pending(*, limit: int = 50) -> int:
    """Send email notices that were never handed to a worker (broker down at
    commit) or whose worker died. Bounded by `limit`; returns how many were sent."""
    now = timezone.now()
    ids = list(
        Notification.objects.filter(channel=Notification.Channel.EMAIL, sent_at__isnull=True)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - EMAIL_CLAIM_LEASE))
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    sent = 0
    for notification_id in ids:
        try:
            sent += notification_email_send(notification_id=notification_id)
        except Exception:
            logger.exception("approval email notice %s failed; will retry", notification_id)
    return sent
