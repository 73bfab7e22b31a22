"""Retention: what may be destroyed when, legal holds, and the purge.

A record's retention is the longer of the firm's `retention_days` (compliance
config, default 2,555 days) and the legal minimum of its type:

- order records (gate decisions, amendments, cancels, breaches, approvals,
  kill switches): MiFID II, at least 5 years;
- blotters (fills, positions): SEC Rule 17a-4(a), 6 years;
- communications (bot-reported messages, SYSTEM_ERROR): SEC Rule 17a-4(b)(4),
  3 years;
- every other record: `retention_days`.

So lowering `retention_days` never destroys a record before the law allows.
Records documenting retention itself (DATA_PURGED, LEGAL_HOLD_*) are kept.

The purge clears the payload of records past retention and outside every
active legal hold (audit.services.purge.records_purge; hashes stay, so the
chain, checkpoints and proofs still verify) and records DATA_PURGED per batch.
Purge batches and hold changes lock one row (RetentionLock), so a hold placed
while a purge runs is honoured by the next batch."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone

from accounts.models import User
from audit.models import Log, Record
from audit.services import DEFAULT_LOG, Actor, record_event, records_purge
from compliance_site.exceptions import Conflict, Forbidden, Invalid, NotFound
from surveillance.services.config import config_current

from ..models import LegalHold, RetentionLock
from ..periods import from_us, iso_us, to_us

MAX_REASON_CHARS = 4000
EVENT_TYPE_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,63}$")
KEPT_TYPES = frozenset({"DATA_PURGED", "LEGAL_HOLD_PLACED", "LEGAL_HOLD_RELEASED"})


@dataclass(frozen=True)
class Policy:
    key: str
    title: str
    legal_basis: str
    years: int | None  # legal minimum; None: retention_days alone
    event_types: frozenset[str] | None  # None: every type no other policy names


POLICIES: tuple[Policy, ...] = (
    Policy(
        "order_records",
        "Order records",
        "MiFID II Art. 16(6), MiFIR Art. 25, RTS 6: at least 5 years",
        5,
        frozenset(
            {
                "ORDER_SUBMITTED",
                "ORDER_AMENDED",
                "ORDER_REJECTED",
                "ORDER_CANCELED",
                "VENUE_REJECTED",
                "LIMIT_BREACH",
                "APPROVAL_REQUESTED",
                "APPROVAL_GRANTED",
                "APPROVAL_DENIED",
                "APPROVAL_EXPIRED",
                "KILL_SWITCH_ACTIVATED",
                "KILL_SWITCH_DEACTIVATED",
            }
        ),
    ),
    Policy(
        "blotters",
        "Blotters (fills and positions)",
        "SEC Rule 17a-3(a)(1) and 17a-4(a): 6 years",
        6,
        frozenset({"ORDER_FILLED", "POSITION_CHANGED"}),
    ),
    Policy(
        "communications",
        "Communications (bot-reported messages)",
        "SEC Rule 17a-4(b)(4): 3 years",
        3,
        frozenset({"SYSTEM_ERROR"}),
    ),
    Policy(
        "default",
        "Every other record",
        "Firm retention (compliance config retention_days)",
        None,
        None,
    ),
)
TYPED: frozenset[str] = frozenset().union(*(p.event_types for p in POLICIES if p.event_types))


def years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def years_after(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def retention_days() -> int:
    return int(config_current().config.get("retention_days", 2555))


@dataclass(frozen=True)
class Cutoff:
    policy: Policy
    before: datetime  # records recorded before this are past retention

    @property
    def before_us(self) -> int:
        return to_us(self.before)


def cutoffs(now: datetime, days: int | None = None) -> list[Cutoff]:
    days = retention_days() if days is None else days
    by_days = now - timedelta(days=days)
    out = []
    for policy in POLICIES:
        before = by_days if policy.years is None else min(by_days, years_before(now, policy.years))
        out.append(Cutoff(policy, before))
    return out


def due_at(recorded_at: datetime, policy: Policy, days: int) -> datetime:
    by_days = recorded_at + timedelta(days=days)
    return by_days if policy.years is None else max(by_days, years_after(recorded_at, policy.years))


def _type_q(policy: Policy) -> Q:
    if policy.event_types is None:
        return ~Q(event_type__in=TYPED | KEPT_TYPES)
    return Q(event_type__in=policy.event_types)


def _past_q(cuts: list[Cutoff]) -> Q:
    q = Q(pk__in=[])
    for cut in cuts:
        q |= _type_q(cut.policy) & Q(recorded_at_us__lt=cut.before_us)
    return q


def hold_q(hold: LegalHold) -> Q | None:
    """The records a hold covers; None when it covers the whole log. A hold on an
    agent covers its own records and the server's records about it (their
    canonical text names it as "agent_id")."""
    parts: list[Q] = []
    if hold.from_seq is not None:
        parts.append(Q(seq__gte=hold.from_seq))
    if hold.to_seq is not None:
        parts.append(Q(seq__lte=hold.to_seq))
    if hold.agent_id:
        named = '"agent_id":' + json.dumps(hold.agent_id)
        parts.append(
            Q(agent_id=hold.agent_id) | Q(actor_id=hold.agent_id) | Q(body__contains=named)
        )
    if hold.event_types:
        parts.append(Q(event_type__in=list(hold.event_types)))
    if not parts:
        return None
    q = parts[0]
    for part in parts[1:]:
        q &= part
    return q


def _outside_holds(qs: QuerySet[Record], holds: list[LegalHold]) -> QuerySet[Record]:
    for hold in holds:
        q = hold_q(hold)
        if q is None:
            return qs.none()
        qs = qs.exclude(q)
    return qs


def _log() -> Log:
    return (
        Log.objects.filter(name=DEFAULT_LOG).first()
        or Log.objects.get_or_create(name=DEFAULT_LOG)[0]
    )


def active_holds() -> list[LegalHold]:
    return list(LegalHold.objects.filter(released_at__isnull=True).order_by("pk"))


def purgeable(
    *, now: datetime, holds: list[LegalHold], days: int | None = None
) -> QuerySet[Record]:
    """Records past retention, not purged yet, outside every given hold."""
    qs = Record.objects.filter(log=_log(), purged=False).filter(_past_q(cutoffs(now, days)))
    return _outside_holds(qs, holds)


def _lock() -> RetentionLock:
    RetentionLock.objects.get_or_create(name="retention")
    return RetentionLock.objects.select_for_update().get(name="retention")


@dataclass
class PurgeSummary:
    count: int
    batches: int
    from_seq: int | None
    to_seq: int | None
    record_seqs: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "batches": self.batches,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "data_purged_seqs": self.record_seqs,
        }


def retention_purge(
    *,
    now: datetime | None = None,
    acting: Actor | None = None,
    batch_size: int = 1000,
    reason: str | None = None,
) -> PurgeSummary:
    """Clear the payload of every record past retention and outside every active
    legal hold, in batches, each recorded as DATA_PURGED. Beat and the
    operator (the `retention_purge` command) run it as is; a person starts it
    through retention_purge_by. Running it again purges nothing more and
    records nothing."""
    now = now or timezone.now()
    acting = acting or Actor.system("retention")
    started = {"requested_reason": reason} if reason is not None else {}
    days = retention_days()
    summary = PurgeSummary(0, 0, None, None, [])
    after = -1
    while True:
        with transaction.atomic():
            lock = _lock()
            holds = active_holds()
            seqs = list(
                purgeable(now=now, holds=holds, days=days)
                .filter(seq__gt=after)
                .order_by("seq")
                .values_list("seq", flat=True)[:batch_size]
            )
            if not seqs:
                break
            result = records_purge(
                seqs=seqs,
                acting=acting,
                detail={
                    "reason": "retention",
                    "retention_days": days,
                    "as_of": iso_us(to_us(now)),
                    "active_holds": [h.pk for h in holds],
                    **started,
                },
            )
            lock.last_purge_at = timezone.now()
            lock.save(update_fields=["last_purge_at"])
        after = seqs[-1]
        if result.count:
            summary.count += result.count
            summary.batches += 1
            summary.from_seq = result.from_seq if summary.from_seq is None else summary.from_seq
            summary.to_seq = result.to_seq
            if result.seq is not None:
                summary.record_seqs.append(result.seq)
    return summary


@dataclass(frozen=True)
class PurgePreview:
    """What a purge started now would clear: its records by type, and their seqs."""

    as_of: datetime
    retention_days: int
    count: int
    from_seq: int | None
    to_seq: int | None
    by_event_type: dict[str, int]
    active_holds: list[int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "retention_days": self.retention_days,
            "count": self.count,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "by_event_type": self.by_event_type,
            "active_holds": self.active_holds,
        }


def retention_purge_preview(*, now: datetime | None = None) -> PurgePreview:
    """The records a purge would clear now (for the confirmation a person sees)."""
    now = now or timezone.now()
    days = retention_days()
    holds = active_holds()
    due = purgeable(now=now, holds=holds, days=days)
    by_type = {
        row["event_type"]: row["n"]
        for row in due.order_by("event_type").values("event_type").annotate(n=Count("seq"))
    }
    bounds = due.aggregate(first=Min("seq"), last=Max("seq"))
    return PurgePreview(
        as_of=now,
        retention_days=days,
        count=sum(by_type.values()),
        from_seq=bounds["first"],
        to_seq=bounds["last"],
        by_event_type=by_type,
        active_holds=[h.pk for h in holds],
    )


def retention_purge_by(
    *, acting_user: User, reason: str, now: datetime | None = None
) -> PurgeSummary:
    """A purge a person starts (admin page, POST /api/v1/retention/purge/):
    admins only (`accounts.purge_data`), with a reason; each batch's
    DATA_PURGED names them as actor and carries the reason. The records it
    may clear are exactly the scheduled purge's: past retention, outside every
    active hold."""
    _require(acting_user, "accounts.purge_data", "purging records")
    text = _reason(reason)
    return retention_purge(now=now, acting=Actor.for_user(acting_user), reason=text)


# -- legal holds ------------------------------------------------------------------------------


def _require(user: User, perm: str, what: str) -> None:
    if not user.has_perm(perm):
        raise Forbidden("forbidden", f"{what} needs the admin role")


def _reason(reason: Any) -> str:
    text = str(reason or "").strip()
    if not text:
        raise Invalid("invalid", "a reason is required")
    if len(text) > MAX_REASON_CHARS:
        raise Invalid("invalid", f"the reason is longer than {MAX_REASON_CHARS} characters")
    return text


def legal_hold_place(
    *,
    reason: str,
    acting_user: User,
    from_seq: int | None = None,
    to_seq: int | None = None,
    agent_id: str = "",
    event_types: list[str] | None = None,
) -> LegalHold:
    """Place a hold (admins): records it covers are never purged while it is
    active. Recorded as LEGAL_HOLD_PLACED with its scope and reason."""
    _require(acting_user, "accounts.manage_legal_holds", "placing a legal hold")
    text = _reason(reason)
    types = sorted(set(event_types or []))
    if any(not EVENT_TYPE_NAME.match(t) for t in types):
        raise Invalid("invalid", "event_types must be event type names")
    if (from_seq is not None and from_seq < 0) or (to_seq is not None and to_seq < 0):
        raise Invalid("invalid", "seqs are not negative")
    if from_seq is not None and to_seq is not None and to_seq < from_seq:
        raise Invalid("invalid", "to_seq must not be before from_seq")
    with transaction.atomic():
        _lock()
        hold = LegalHold.objects.create(
            reason=text,
            from_seq=from_seq,
            to_seq=to_seq,
            agent_id=agent_id or "",
            event_types=types,
            placed_by=acting_user,
            placed_at=timezone.now(),
            placed_seq=-1,
        )
        record = record_event(
            "LEGAL_HOLD_PLACED",
            actor=Actor.for_user(acting_user),
            data={"hold_id": hold.pk, "reason": text, "scope": hold.scope_dict()},
        )
        hold.placed_seq = record.seq
        hold.save(update_fields=["placed_seq"])
    return hold


def legal_hold_release(*, hold_id: int, reason: str, acting_user: User) -> LegalHold:
    """Release an active hold (admins), recorded as LEGAL_HOLD_RELEASED. Its
    records become purgeable again once past retention."""
    _require(acting_user, "accounts.manage_legal_holds", "releasing a legal hold")
    text = _reason(reason)
    with transaction.atomic():
        _lock()
        hold = LegalHold.objects.select_for_update().filter(pk=hold_id).first()
        if hold is None:
            raise NotFound("not_found", "no such legal hold")
        if not hold.is_active:
            raise Conflict("already_released", "this legal hold was already released")
        record = record_event(
            "LEGAL_HOLD_RELEASED",
            actor=Actor.for_user(acting_user),
            data={
                "hold_id": hold.pk,
                "reason": text,
                "scope": hold.scope_dict(),
                "placed_seq": hold.placed_seq,
            },
        )
        hold.released_by = acting_user
        hold.released_at = timezone.now()
        hold.release_reason = text
        hold.released_seq = record.seq
        hold.save(update_fields=["released_by", "released_at", "release_reason", "released_seq"])
    return hold


# -- manifest -----------------------------------------------------------------------------------


def retention_manifest(*, now: datetime | None = None) -> dict[str, Any]:
    """What is due for destruction when: per policy its legal basis, effective
    retention, cutoff, how many records are due now (and how many of those a
    hold keeps), when the next one falls due, and counts due within 30, 90
    and 365 days; then every active hold with what it covers."""
    now = now or timezone.now()
    days = retention_days()
    holds = active_holds()
    log = _log()
    live = Record.objects.filter(log=log, purged=False)
    policies = []
    for cut in cutoffs(now, days):
        policy = cut.policy
        of_type = live.filter(_type_q(policy))
        past = of_type.filter(recorded_at_us__lt=cut.before_us)
        past_count = past.count()
        due_now = _outside_holds(past, holds).count()
        upcoming = {}
        for window in (30, 90, 365):
            later = now + timedelta(days=window)
            later_cut = next(c for c in cutoffs(later, days) if c.policy.key == policy.key)
            upcoming[f"within_{window}_days"] = _outside_holds(
                of_type.filter(
                    recorded_at_us__gte=cut.before_us, recorded_at_us__lt=later_cut.before_us
                ),
                holds,
            ).count()
        oldest = (
            of_type.filter(recorded_at_us__gte=cut.before_us)
            .order_by("seq")
            .values_list("recorded_at_us", flat=True)
            .first()
        )
        policies.append(
            {
                "policy": policy.key,
                "title": policy.title,
                "legal_basis": policy.legal_basis,
                "event_types": sorted(policy.event_types) if policy.event_types else "all others",
                "legal_minimum_years": policy.years,
                "retention_days": days,
                "cutoff": cut.before.isoformat(),
                "past_retention": past_count,
                "due_now": due_now,
                "held": past_count - due_now,
                "next_due_at": due_at(from_us(oldest), policy, days).isoformat()
                if oldest is not None
                else None,
                "upcoming": upcoming,
                "purged": Record.objects.filter(log=log, purged=True)
                .filter(_type_q(policy))
                .count(),
            }
        )
    return {
        "as_of": now.isoformat(),
        "retention_days": days,
        "kept_types": sorted(KEPT_TYPES),
        "policies": policies,
        "legal_holds": [
            {
                "id": h.pk,
                "reason": h.reason,
                "scope": h.scope_dict(),
                "placed_by": h.placed_by.username,
                "placed_at": h.placed_at.isoformat(),
                "placed_seq": h.placed_seq,
                "covers_unpurged": (
                    live.filter(q) if (q := hold_q(h)) is not None else live
                ).count(),
            }
            for h in holds
        ],
    }
