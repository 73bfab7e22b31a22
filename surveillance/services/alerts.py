"""Surveillance alerts: creation by the cycle and the analyst's case workflow
(the permission-filtered reads the API and the admin share are in
surveillance.selectors).

Rules enforced here and nowhere else:

* An alert is created once per fingerprint, with its SURVEILLANCE_ALERT
  record and its webhook notice, inside the cycle's transaction.
* The case moves open -> assigned -> (escalated) -> closed. Closing needs a
  disposition (`false_positive`, `no_action`, `escalated`, `reported`) and a
  note; escalating needs a note. A closed alert never changes again.
* Only holders of `accounts.resolve_alerts` (compliance officers, admins) act
  on alerts. Once an alert is assigned, only its assignee (or an admin)
  escalates or closes it; anyone entitled may (re)assign it, which is
  recorded. Resolving an open alert assigns it to the resolver.
* Every action is an ALERT_UPDATED record in the same transaction as the
  change, and a webhook notice. A refused action raises before anything is
  written. Each such record is indexed under its alert (AlertLogEntry), so
  the case's history is read from its records.
* Case management: an alert is due `COMPLIANCE_ALERT_SLA_HOURS[severity]`
  after its creation (or its reopening); notes may be added to any alert,
  closed ones included, and each is a record; an escalation may name a person
  (who then holds the case) or a role, with a reason; a closed alert may be
  reopened with a reason, by anyone entitled, who then holds it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from accounts.roles import has_role
from audit.services import Actor, append, pending_server_event, record_event
from audit.webhooks.services import webhook_notify
from compliance_site.exceptions import Conflict, Forbidden, Invalid, NotFound

from ..detectors import Finding
from ..models import Alert, AlertLogEntry

RESOLVE_PERMISSION = "accounts.resolve_alerts"
MAX_NOTE_CHARS = 4000
CYCLE_ACTOR = Actor.system("surveillance")
Status = Alert.Status


# --- service levels and who may work alerts ---------------------------------------


def sla_hours() -> dict[str, float]:
    """Hours until an alert of each severity is due (settings; defaults for the
    severities a deployment leaves out)."""
    defaults = {"critical": 4.0, "high": 24.0, "medium": 72.0, "low": 168.0}
    return {**defaults, **getattr(settings, "COMPLIANCE_ALERT_SLA_HOURS", {})}


def sla_due(severity: str, start: datetime) -> datetime:
    return start + timedelta(hours=sla_hours()[severity])


ESCALATION_ROLES = (Role.COMPLIANCE_OFFICER, Role.ADMIN)


def may_work_alerts(user: Any) -> bool:
    return isinstance(user, User) and user.is_active and user.has_perm(RESOLVE_PERMISSION)


# --- creation (the cycle) ---------------------------------------------------------


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as its records and webhook notices carry it (no floats)."""
    return {
        "alert_id": alert.pk,
        "detector": alert.detector,
        "severity": alert.severity,
        "status": alert.status,
        "agent_id": alert.agent_id or None,
        "market": alert.market or None,
        "fingerprint": alert.fingerprint,
        "evidence": list(alert.evidence),
        "detail": alert.detail,
        "facts": alert.facts,
        "occurred_at_us": alert.occurred_at_us,
        "config_hash": alert.config_hash,
    }


def alerts_create(*, findings: Sequence[Finding], config_hash: str) -> list[Alert]:
    """Store the findings not yet stored (by fingerprint) as open alerts, each
    with its SURVEILLANCE_ALERT record and webhook notice. Called by the
    surveillance cycle inside its transaction, with the cursor locked."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("alerts are created inside the surveillance cycle's transaction")
    wanted: dict[str, Finding] = {}
    for finding in findings:
        wanted.setdefault(finding.fingerprint, finding)
    if not wanted:
        return []
    stored = set(
        Alert.objects.filter(fingerprint__in=list(wanted)).values_list("fingerprint", flat=True)
    )
    now = timezone.now()
    alerts = [
        Alert(
            detector=f.detector,
            severity=f.severity,
            severity_rank=Alert.SEVERITY_RANK[f.severity],
            agent_id=f.agent_id,
            market=f.market,
            fingerprint=fp,
            evidence=f.evidence,
            detail=f.detail,
            facts=f.facts,
            occurred_at_us=f.ts,
            seq=-1,
            config_hash=config_hash,
            created_at=now,
            updated_at=now,
            due_at=sla_due(f.severity, now),
        )
        for fp, f in wanted.items()
        if fp not in stored
    ]
    if not alerts:
        return []
    alerts = Alert.objects.bulk_create(alerts)
    if any(a.pk is None for a in alerts):  # a backend without RETURNING
        by_fp = dict(
            Alert.objects.filter(fingerprint__in=[a.fingerprint for a in alerts]).values_list(
                "fingerprint", "pk"
            )
        )
        for alert in alerts:
            alert.pk = by_fp[alert.fingerprint]
    pending = []
    for alert, finding in zip(alerts, (wanted[a.fingerprint] for a in alerts), strict=True):
        pending.append(
            pending_server_event(
                "SURVEILLANCE_ALERT",
                actor=CYCLE_ACTOR,
                data={**alert_payload(alert), "trigger_seq": finding.seq},
            )
        )
    records = append(pending)
    for alert, record in zip(alerts, records, strict=True):
        alert.seq = record.seq
    Alert.objects.bulk_update(alerts, ["seq"])
    for alert in alerts:
        webhook_notify(
            "SURVEILLANCE_ALERT", {**alert_payload(alert), "seq": alert.seq}, seq=alert.seq
        )
    return alerts


# --- the case workflow ------------------------------------------------------------


def _clean_note(note: Any, *, required: bool) -> str:
    text = note.strip() if isinstance(note, str) else ""
    if required and not text:
        raise Invalid("note_required", "A note is required.")
    if len(text) > MAX_NOTE_CHARS:
        raise Invalid("note_too_long", f"A note has at most {MAX_NOTE_CHARS} characters.")
    return text


def _lock(alert_id: int, acting_user: User, *, allow_closed: bool = False) -> Alert:
    if not may_work_alerts(acting_user):
        raise Forbidden("permission_denied", "Only compliance officers and admins work alerts.")
    alert = Alert.objects.select_for_update().filter(pk=alert_id).first()
    if alert is None:
        raise NotFound("not_found", "No such alert.")
    if alert.status == Status.CLOSED and not allow_closed:
        raise Conflict("already_closed", f"The alert was closed as {alert.disposition}.")
    return alert


def _check_assignee(alert: Alert, acting_user: User) -> None:
    if (
        alert.assigned_to_id is not None
        and alert.assigned_to_id != acting_user.pk
        and not has_role(acting_user, Role.ADMIN)
    ):
        raise Forbidden(
            "not_assignee",
            f"The alert is assigned to {alert.assigned_to}; assign it to yourself first.",
        )


def _record(alert: Alert, acting_user: User, action: str, previous: str, **extra: Any) -> None:
    data = {
        "alert_id": alert.pk,
        "action": action,
        "detector": alert.detector,
        "fingerprint": alert.fingerprint,
        "from_status": previous,
        "status": alert.status,
        "assigned_to": alert.assigned_to.get_username() if alert.assigned_to else None,
        **extra,
    }
    record = record_event("ALERT_UPDATED", actor=Actor.for_user(acting_user), data=data)
    AlertLogEntry.objects.create(alert=alert, seq=record.seq, action=action)
    webhook_notify("ALERT_UPDATED", {**data, "seq": record.seq}, seq=record.seq)


@transaction.atomic
def alert_assign(*, alert_id: int, acting_user: User, assignee: User | None = None) -> Alert:
    """Assign an active alert (to the caller unless `assignee` is named; the
    assignee must be entitled to work alerts). An open alert becomes assigned;
    an escalated one stays escalated with its new assignee."""
    alert = _lock(alert_id, acting_user)
    target = assignee or acting_user
    if not may_work_alerts(target):
        raise Invalid("invalid_assignee", f"{target} may not work alerts.")
    if alert.assigned_to_id == target.pk:
        raise Conflict("already_assigned", f"The alert is already assigned to {target}.")
    previous = alert.status
    now = timezone.now()
    alert.assigned_to, alert.assigned_at, alert.updated_at = target, now, now
    if alert.status == Status.OPEN:
        alert.status = Status.ASSIGNED
    alert.save(update_fields=["assigned_to", "assigned_at", "updated_at", "status"])
    _record(alert, acting_user, "assign", previous)
    return alert


@transaction.atomic
def alert_escalate(
    *,
    alert_id: int,
    acting_user: User,
    note: str,
    to_user: User | None = None,
    to_role: str = "",
) -> Alert:
    """Escalate an assigned alert (by its assignee or an admin), with a note
    (the reason). It may name a person, who must be entitled to work alerts and
    then holds the case, or a role (compliance_officer, admin), or neither."""
    text = _clean_note(note, required=True)
    if to_user is not None and to_role:
        raise Invalid("invalid_escalation", "Escalate to a person or to a role, not both.")
    if to_role and to_role not in ESCALATION_ROLES:
        raise Invalid("invalid_escalation", f"to_role must be one of {', '.join(ESCALATION_ROLES)}")
    if to_user is not None and not may_work_alerts(to_user):
        raise Invalid("invalid_assignee", f"{to_user} may not work alerts.")
    alert = _lock(alert_id, acting_user)
    if alert.status == Status.OPEN:
        raise Conflict("not_assigned", "Assign the alert before escalating it.")
    if alert.status == Status.ESCALATED:
        raise Conflict("already_escalated", "The alert is already escalated.")
    _check_assignee(alert, acting_user)
    previous = alert.status
    now = timezone.now()
    alert.status, alert.escalated_by, alert.escalated_at, alert.updated_at = (
        Status.ESCALATED,
        acting_user,
        now,
        now,
    )
    alert.escalated_to, alert.escalated_to_role, alert.escalation_reason = to_user, to_role, text
    fields = [
        "status",
        "escalated_by",
        "escalated_at",
        "updated_at",
        "escalated_to",
        "escalated_to_role",
        "escalation_reason",
    ]
    if to_user is not None:
        alert.assigned_to, alert.assigned_at = to_user, now
        fields += ["assigned_to", "assigned_at"]
    alert.save(update_fields=fields)
    _record(
        alert,
        acting_user,
        "escalate",
        previous,
        note=text,
        escalated_to=to_user.get_username() if to_user else None,
        escalated_to_role=to_role or None,
    )
    return alert


@transaction.atomic
def alert_note_add(*, alert_id: int, acting_user: User, note: str) -> Alert:
    """Add a note to an alert's case, open or closed: a record in the log, and
    nothing else changes (who holds the case, its status, its due time)."""
    text = _clean_note(note, required=True)
    alert = _lock(alert_id, acting_user, allow_closed=True)
    alert.updated_at = timezone.now()
    alert.save(update_fields=["updated_at"])
    _record(alert, acting_user, "note", alert.status, note=text)
    return alert


@transaction.atomic
def alert_reopen(*, alert_id: int, acting_user: User, reason: str) -> Alert:
    """Reopen a closed alert with a reason. The case becomes assigned to the
    one reopening it, its disposition and closing are cleared (the log keeps
    them), and it is due again by its severity's SLA from now."""
    text = _clean_note(reason, required=True)
    alert = _lock(alert_id, acting_user, allow_closed=True)
    if alert.status != Status.CLOSED:
        raise Conflict("not_closed", "Only a closed alert can be reopened.")
    previous_disposition = alert.disposition
    now = timezone.now()
    alert.status, alert.disposition, alert.note = Status.ASSIGNED, "", ""
    alert.closed_by, alert.closed_at = None, None
    alert.escalated_to, alert.escalated_to_role, alert.escalation_reason = None, "", ""
    alert.assigned_to, alert.assigned_at, alert.updated_at = acting_user, now, now
    alert.due_at = sla_due(alert.severity, now)
    alert.save(
        update_fields=[
            "status",
            "disposition",
            "note",
            "closed_by",
            "closed_at",
            "escalated_to",
            "escalated_to_role",
            "escalation_reason",
            "assigned_to",
            "assigned_at",
            "updated_at",
            "due_at",
        ]
    )
    _record(
        alert,
        acting_user,
        "reopen",
        Status.CLOSED,
        note=text,
        previous_disposition=previous_disposition,
    )
    return alert


@transaction.atomic
def alert_resolve(*, alert_id: int, acting_user: User, disposition: str, note: str) -> Alert:
    """Close an active alert with a disposition and a note. An open alert is
    assigned to the resolver as it closes; an assigned or escalated one may be
    closed only by its assignee or an admin."""
    if disposition not in Alert.Disposition.values:
        raise Invalid(
            "invalid_disposition",
            f"disposition must be one of {', '.join(Alert.Disposition.values)}",
        )
    text = _clean_note(note, required=True)
    alert = _lock(alert_id, acting_user)
    _check_assignee(alert, acting_user)
    previous = alert.status
    now = timezone.now()
    if alert.assigned_to_id is None:
        alert.assigned_to, alert.assigned_at = acting_user, now
    alert.status, alert.disposition, alert.note = Status.CLOSED, disposition, text
    alert.closed_by, alert.closed_at, alert.updated_at = acting_user, now, now
    alert.save(
        update_fields=[
            "status",
            "disposition",
            "note",
            "closed_by",
            "closed_at",
            "updated_at",
            "assigned_to",
            "assigned_at",
        ]
    )
    _record(alert, acting_user, "resolve", previous, disposition=disposition, note=text)
    return alert
