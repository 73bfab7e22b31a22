"""What goes into a report, collected in one streaming pass over the period.

The log is the source: the period is a contiguous seq range (recorded_at_us
never decreases along seq), read in keyset chunks by seq. Detail rows are
spooled to files as they are found, and only per-agent and per-market figures
stay in memory, so memory is flat in the period's size. The projections that
hold what the log does not (approval decisions, alert dispositions, fills with
their side, current positions) are read with `.iterator()`.

Anomalies (thresholds from settings, read when a report runs):
cancel ratio above 90% of an agent's orders, orders but no fills, error rate
(SYSTEM_ERROR among the agent's records) above 5%, gaps of more than 4 hours
of trading hours between an agent's records, and clock drift beyond the RTS 25
tolerance (receipt minus the bot's timestamp; default 1 ms, the RTS 25 figure
for algorithmic trading other than HFT)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from accounts.models import Agent
from approvals.models import ApprovalRequest
from audit.models import Checkpoint, Log, Record
from audit.services import DEFAULT_LOG
from compliance_site.decimals import decimal_text
from surveillance.models import AgentMarketRisk, ComplianceConfigVersion, Fill, GateBypass

from ..periods import Period, iso_us, to_us
from ..regulators import (
    FIRM_SETTINGS,
    KIND_TITLES,
    REGULATORS,
    SUMMARY_METRICS,
    sections_for,
)
from .spool import Spool
from .thresholds import Thresholds

CHUNK = 2000
ORDER_TYPES = frozenset(
    {
        "ORDER_SUBMITTED",
        "ORDER_REJECTED",
        "ORDER_AMENDED",
        "ORDER_FILLED",
        "ORDER_CANCELED",
        "VENUE_REJECTED",
    }
)
PARSED_TYPES = ORDER_TYPES | {
    "LIMIT_BREACH",
    "KILL_SWITCH_ACTIVATED",
    "KILL_SWITCH_DEACTIVATED",
    "POSITION_CHANGED",
    "DATA_PURGED",
    "SYSTEM_ERROR",
}
COUNTED_TYPES = {
    "APPROVAL_REQUESTED": "approvals_requested",
    "APPROVAL_GRANTED": "approvals_granted",
    "APPROVAL_DENIED": "approvals_denied",
    "APPROVAL_EXPIRED": "approvals_expired",
    "LIMIT_BREACH": "limit_breaches",
    "KILL_SWITCH_ACTIVATED": "kill_switch_activations",
    "KILL_SWITCH_DEACTIVATED": "kill_switch_releases",
    "ORDER_CANCELED": "orders_cancelled",
    "ORDER_AMENDED": "orders_amended",
    "SYSTEM_ERROR": "system_errors",
}


@dataclass
class AgentStats:
    events: int = 0
    submitted: int = 0
    accepted: int = 0
    held: int = 0
    rejected: int = 0
    amended: int = 0
    fills: int = 0
    cancels: int = 0
    errors: int = 0
    drift_records: int = 0
    drift_abs_sum: int = 0
    drift_max: int = 0
    drift_beyond: int = 0
    last_us: int | None = None


@dataclass
class ReportSpec:
    report_id: int
    kind: str
    format: str
    regulator: str
    period: Period


@dataclass
class ReportContent:
    header: dict[str, Any]
    summary: dict[str, Any]
    sections: list[Spool] = field(default_factory=list)


def _ratio(num: int, den: int) -> Decimal:
    return (Decimal(num) / Decimal(den)).quantize(Decimal("0.0001"))


def _d(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return decimal_text(value)


def _seconds(delta: timedelta) -> Decimal:
    return (
        Decimal(delta.days * 86_400 + delta.seconds) + Decimal(delta.microseconds) / 1_000_000
    ).quantize(Decimal("0.001"))


def _iso(moment: datetime | None) -> str | None:
    return iso_us(to_us(moment)) if moment is not None else None


def period_seq_range(log: Log, period: Period, log_size: int) -> tuple[int | None, int | None]:
    """First and last seq recorded inside the period (None, None when empty)."""
    base = Record.objects.filter(log=log)
    first = (
        base.filter(recorded_at_us__gte=period.start_us, seq__lt=log_size)
        .order_by("recorded_at_us", "seq")
        .values_list("seq", flat=True)
        .first()
    )
    last = (
        base.filter(recorded_at_us__lt=period.end_us, seq__lt=log_size)
        .order_by("-recorded_at_us", "-seq")
        .values_list("seq", flat=True)
        .first()
    )
    if first is None or last is None or last < first:
        return None, None
    return first, last


def _iter_records(log: Log, from_seq: int, to_seq: int) -> Iterator[tuple[Any, ...]]:
    """Keyset pagination on the contiguous seq range, CHUNK rows at a time."""
    cursor = from_seq
    while cursor <= to_seq:
        upper = min(cursor + CHUNK - 1, to_seq)
        rows = list(
            Record.objects.filter(log=log, seq__gte=cursor, seq__lte=upper)
            .order_by("seq")
            .values_list(
                "seq",
                "recorded_at_us",
                "event_type",
                "actor_type",
                "actor_id",
                "agent_id",
                "body",
                "leaf_hash",
                "chain_hash",
                "purged",
            )
        )
        yield from rows
        cursor = upper + 1


def firm_fields(regulator: str) -> dict[str, str]:
    names = ["firm_name", *(REGULATORS[regulator].firm_fields if regulator else ())]
    out: dict[str, str] = {}
    for name in dict.fromkeys(names):
        setting = FIRM_SETTINGS[name]
        value = getattr(settings, setting, "") or ""
        out[name] = str(value) if value else f"not configured (set {setting})"
    return out


class _Collector:
    def __init__(self, spec: ReportSpec, directory: Path, log: Log, thresholds: Thresholds):
        self.spec = spec
        self.log = log
        self.t = thresholds
        self.wanted = sections_for(spec.kind, spec.regulator)
        self.spools = {name: Spool(directory, name) for name in self.wanted}
        self.stats: dict[str, AgentStats] = {}
        self.counts: dict[str, int] = dict.fromkeys(SUMMARY_METRICS, 0)
        self.reported: dict[tuple[str, str], tuple[str, int]] = {}
        # Fills are counted once by (agent, fill_id): a fill re-sent under a new
        # event_id is a second record of one execution. 8-byte digests keep the
        # memory small on a quarter of fills.
        self.fills_seen: set[bytes] = set()

    def _first_fill(self, agent_id: str | None, fill_id: Any) -> bool:
        key = hashlib.blake2b(f"{agent_id}\x00{fill_id}".encode(), digest_size=8).digest()
        if key in self.fills_seen:
            return False
        self.fills_seen.add(key)
        return True

    def spool(self, name: str) -> Spool | None:
        return self.spools.get(name)

    def agent(self, agent_id: str | None) -> AgentStats:
        key = agent_id or ""
        stats = self.stats.get(key)
        if stats is None:
            stats = self.stats[key] = AgentStats()
        return stats

    # -- the pass over the log ---------------------------------------------------------

    def walk(self, from_seq: int, to_seq: int) -> None:
        orders = self.spool("order_events")
        trail = self.spool("audit_trail")
        gaps = self.spool("anomalies")
        loads = json.loads
        for (
            seq,
            at_us,
            event_type,
            actor_type,
            actor_id,
            agent_id,
            body,
            leaf,
            chain,
            purged,
        ) in _iter_records(self.log, from_seq, to_seq):
            self.counts["records"] += 1
            record: dict[str, Any] | None = None
            if purged or body is None:
                self.counts["purged_records"] += 1
            elif event_type in PARSED_TYPES or agent_id is not None:
                record = loads(body)
            data: dict[str, Any] = (record or {}).get("data") or {}
            source = (record or {}).get("source")
            envelope: dict[str, Any] = (
                source.get("envelope", {}) if isinstance(source, dict) else {}
            )
            # A manual order (a person's, through the gate) has no envelope: the
            # order as sent is in its data.
            payload: dict[str, Any] = envelope.get("payload") or data.get("order") or {}
            counter = COUNTED_TYPES.get(event_type)
            if counter:
                self.counts[counter] += 1
            # agent_id is set on records a bot signed and on the manual orders a
            # person sent for it; other server records about a bot have none
            if agent_id is not None:
                self._agent_record(agent_id, at_us, data, gaps)
                if event_type == "SYSTEM_ERROR":
                    self.agent(agent_id).errors += 1
            order_id = payload.get("order_id") or data.get("order_id")
            if event_type in ORDER_TYPES:
                self._order_event(
                    seq, at_us, event_type, agent_id, record, data, envelope, payload, orders
                )
            elif record is not None:
                self._other_event(seq, at_us, event_type, actor_id, agent_id, data, payload)
            if trail is not None:
                trail.write(
                    [
                        seq,
                        iso_us(at_us),
                        at_us,
                        event_type,
                        actor_type,
                        actor_id,
                        agent_id,
                        order_id,
                        bool(purged),
                        bytes(leaf).hex(),
                        bytes(chain).hex(),
                    ]
                )

    def _agent_record(
        self, agent_id: str, at_us: int, data: dict[str, Any], gaps: Spool | None
    ) -> None:
        stats = self.agent(agent_id)
        stats.events += 1
        drift = data.get("clock_drift_us")
        if isinstance(drift, int):
            magnitude = abs(drift)
            stats.drift_records += 1
            stats.drift_abs_sum += magnitude
            stats.drift_max = max(stats.drift_max, magnitude)
            if magnitude > self.t.clock_tolerance_us:
                stats.drift_beyond += 1
        if stats.last_us is not None:
            quiet = self.t.trading_us_between(stats.last_us, at_us)
            if quiet > self.t.gap_us and gaps is not None:
                self.counts["anomalies"] += 1
                gaps.write(
                    [
                        "gap_in_trading_hours",
                        agent_id,
                        str(_seconds(timedelta(microseconds=quiet))),
                        str(self.t.gap_us // 1_000_000),
                        iso_us(stats.last_us),
                        iso_us(at_us),
                        "seconds of trading hours without a record from this agent",
                    ]
                )
        stats.last_us = at_us

    def _order_event(
        self,
        seq: int,
        at_us: int,
        event_type: str,
        agent_id: str | None,
        record: dict[str, Any] | None,
        data: dict[str, Any],
        envelope: dict[str, Any],
        payload: dict[str, Any],
        orders: Spool | None,
    ) -> None:
        agent_key = agent_id or data.get("agent_id")
        stats = self.agent(agent_key)
        decision = data.get("decision")
        detail = ""
        if record is None:
            decision, detail = "purged", "payload cleared by the retention purge"
        if event_type == "ORDER_SUBMITTED":
            stats.submitted += 1
            self.counts["orders_submitted"] += 1
            if decision == "held":
                stats.held += 1
                self.counts["orders_held"] += 1
            elif decision == "accepted":
                stats.accepted += 1
                self.counts["orders_accepted"] += 1
        elif event_type == "ORDER_REJECTED":
            if envelope.get("event_type") == "ORDER_AMENDED":
                self.counts["amendments_rejected"] += 1
                detail = "amendment refused"
            else:
                stats.rejected += 1
                self.counts["orders_rejected"] += 1
                if envelope or data.get("manual"):
                    stats.submitted += 1
                    self.counts["orders_submitted"] += 1
                else:
                    detail = f"after approval: {data.get('status', '')}"
        elif event_type == "ORDER_AMENDED":
            stats.amended += 1
        elif event_type == "ORDER_FILLED":
            detail = f"fill {payload.get('fill_id', '')}".strip()
            if record is None or self._first_fill(agent_key, payload.get("fill_id")):
                stats.fills += 1
                self.counts["fills"] += 1
            else:
                detail += " (re-sent: counted once)"
        elif event_type == "VENUE_REJECTED":
            # Refused by the venue after the gate accepted it: apart from the gate's rejections.
            self.counts["venue_rejections"] += 1
            code = payload.get("venue_code")
            detail = f"venue: {payload.get('reason', '')}" + (f" ({code})" if code else "")
        elif event_type == "ORDER_CANCELED":
            stats.cancels += 1
            detail = str(payload.get("reason", ""))
        if orders is None:
            return
        reasons = ",".join(
            r.get("code", "") for r in data.get("reasons") or [] if isinstance(r, dict)
        )
        orders.write(
            [
                seq,
                iso_us(at_us),
                agent_key,
                event_type,
                payload.get("order_id") or data.get("order_id"),
                payload.get("market"),
                payload.get("side"),
                payload.get("quantity"),
                payload.get("price"),
                payload.get("venue"),
                decision,
                reasons,
                detail,
            ]
        )

    def _other_event(
        self,
        seq: int,
        at_us: int,
        event_type: str,
        actor_id: str,
        agent_id: str | None,
        data: dict[str, Any],
        payload: dict[str, Any],
    ) -> None:
        if event_type == "LIMIT_BREACH" and (spool := self.spool("limit_breaches")):
            spool.write(
                [
                    seq,
                    iso_us(at_us),
                    data.get("agent_id"),
                    data.get("order_id"),
                    data.get("market"),
                    data.get("code"),
                    None if data.get("limit") is None else str(data.get("limit")),
                    None if data.get("value") is None else str(data.get("value")),
                    data.get("detail"),
                ]
            )
        elif event_type.startswith("KILL_SWITCH_") and (spool := self.spool("kill_switches")):
            action = "activated" if event_type == "KILL_SWITCH_ACTIVATED" else "released"
            spool.write(
                [
                    seq,
                    iso_us(at_us),
                    action,
                    data.get("scope"),
                    data.get("target"),
                    actor_id,
                    data.get("reason"),
                ]
            )
        elif event_type == "POSITION_CHANGED" and agent_id:
            self.reported[(agent_id, str(payload.get("market", "")))] = (
                str(payload.get("quantity")),
                at_us,
            )
        elif event_type == "DATA_PURGED" and (spool := self.spool("purges")):
            spool.write(
                [
                    seq,
                    iso_us(at_us),
                    data.get("from_seq"),
                    data.get("to_seq"),
                    data.get("count"),
                    actor_id,
                ]
            )

    # -- after the pass ------------------------------------------------------------------

    def finish_agents(self, owners: dict[str, str]) -> None:
        activity = self.spool("activity")
        clock = self.spool("clock_evidence")
        anomalies = self.spool("anomalies")
        t = self.t
        for agent_id in sorted(a for a in self.stats if a):
            s = self.stats[agent_id]
            base = s.accepted + s.held
            cancel_ratio = _ratio(s.cancels, base) if base else None
            error_rate = _ratio(s.errors, s.events) if s.events else None
            if activity is not None:
                activity.write(
                    [
                        agent_id,
                        owners.get(agent_id, ""),
                        s.events,
                        s.submitted,
                        s.accepted,
                        s.held,
                        s.rejected,
                        s.amended,
                        s.fills,
                        s.cancels,
                        s.errors,
                        None if cancel_ratio is None else str(cancel_ratio),
                        None if error_rate is None else str(error_rate),
                    ]
                )
            if clock is not None and s.drift_records:
                clock.write(
                    [
                        agent_id,
                        s.drift_records,
                        s.drift_max,
                        s.drift_abs_sum // s.drift_records,
                        s.drift_beyond,
                        t.clock_tolerance_us,
                    ]
                )
            found: list[tuple[str, str, str, str]] = []
            if cancel_ratio is not None and cancel_ratio > t.cancel_ratio:
                why = f"{s.cancels} cancels for {base} orders"
                found.append(("cancel_ratio", str(cancel_ratio), str(t.cancel_ratio), why))
            if base and s.fills == 0:
                why = f"{base} orders and no fill in the period"
                found.append(("orders_without_fills", str(base), "0", why))
            if error_rate is not None and error_rate > t.error_rate:
                why = f"{s.errors} SYSTEM_ERROR of {s.events} records"
                found.append(("error_rate", str(error_rate), str(t.error_rate), why))
            if s.drift_beyond:
                why = f"{s.drift_beyond} of {s.drift_records} records beyond the RTS 25 tolerance"
                found.append(("clock_drift", str(s.drift_max), str(t.clock_tolerance_us), why))
            self.counts["anomalies"] += len(found)
            if anomalies is not None:
                for name, value, threshold, why in found:
                    anomalies.write([name, agent_id, value, threshold, None, None, why])

    def approvals(self, period: Period) -> None:
        spool = self.spool("approvals")
        if spool is None:
            return
        total = Decimal(0)
        decided = 0
        longest: Decimal | None = None
        qs = (
            ApprovalRequest.objects.filter(
                requested_at__gte=period.start, requested_at__lt=period.end
            )
            .select_related("requested_by_user", "requested_by_agent", "decided_by")
            .order_by("requested_at", "pk")
        )
        for a in qs.iterator(chunk_size=CHUNK):
            seconds = _seconds(a.decided_at - a.requested_at) if a.decided_at else None
            if seconds is not None and a.status in ("granted", "denied"):
                decided += 1
                total += seconds
                longest = seconds if longest is None else max(longest, seconds)
            requester = (
                a.requested_by_agent.agent_id
                if a.requested_by_agent
                else (a.requested_by_user.username if a.requested_by_user else "")
            )
            spool.write(
                [
                    a.pk,
                    a.kind,
                    a.subject_id,
                    requester,
                    _iso(a.requested_at),
                    a.status,
                    a.decided_by.username if a.decided_by else None,
                    _iso(a.decided_at),
                    None if seconds is None else str(seconds),
                    a.reason,
                ]
            )
        self.counts["approval_mean_decision_seconds"] = (
            str((total / decided).quantize(Decimal("0.001"))) if decided else None  # type: ignore[assignment]
        )
        self.counts["approval_max_decision_seconds"] = None if longest is None else str(longest)  # type: ignore[assignment]

    def alerts(self, period: Period) -> None:
        spool = self.spool("alerts")
        try:
            from surveillance.models import Alert
        except ImportError:  # alerts not built yet: the section stays empty
            return
        qs = (
            Alert.objects.filter(
                occurred_at_us__gte=period.start_us, occurred_at_us__lt=period.end_us
            )
            .select_related("closed_by")
            .order_by("occurred_at_us", "pk")
        )
        for alert in qs.iterator(chunk_size=CHUNK):
            self.counts["alerts"] += 1
            if alert.status != "closed":
                self.counts["alerts_open"] += 1
            if spool is not None:
                spool.write(
                    [
                        alert.pk,
                        alert.detector,
                        alert.severity,
                        alert.agent_id,
                        alert.market,
                        iso_us(alert.occurred_at_us),
                        alert.status,
                        alert.disposition or None,
                        alert.closed_by.username if alert.closed_by else None,
                        _iso(alert.closed_at),
                        alert.note,
                    ]
                )

    def gate_bypasses(self, period: Period, to_seq: int | None = None) -> None:
        """Executions and reports that contradict the gate (CONTRACT 12), as the
        ingest projection noted them: their own section (up to `to_seq` when given)."""
        spool = self.spool("gate_bypasses")
        qs = GateBypass.objects.filter(
            recorded_at_us__gte=period.start_us, recorded_at_us__lt=period.end_us
        )
        if to_seq is not None:
            qs = qs.filter(seq__lte=to_seq)
        qs = qs.select_related("agent").order_by("seq")
        for row in qs.iterator(chunk_size=CHUNK):
            self.counts["gate_bypasses"] += 1
            if spool is not None:
                spool.write(
                    [
                        row.seq,
                        iso_us(row.recorded_at_us),
                        row.agent.agent_id,
                        row.order_ref,
                        row.event_type,
                        row.market or None,
                        row.side or None,
                        _d(row.quantity),
                        _d(row.price),
                        ",".join(row.reasons),
                        row.order_seq,
                        row.detail,
                    ]
                )

    def positions(self, period: Period) -> None:
        spool = self.spool("positions")
        if spool is None:
            return
        flows: dict[tuple[str, str], list[Any]] = {}  # fills, bought, sold, notional
        fills = (
            Fill.objects.filter(
                recorded_at_us__gte=period.start_us, recorded_at_us__lt=period.end_us
            )
            .order_by("seq")
            .values_list("agent__agent_id", "market", "side", "quantity", "price")
        )
        for agent_id, market, side, quantity, price in fills.iterator(chunk_size=CHUNK):
            row = flows.setdefault((agent_id, market), [0, Decimal(0), Decimal(0), Decimal(0)])
            row[0] += 1
            row[1 if side == "buy" else 2] += quantity
            row[3] += quantity * price
        now = {
            (a, m): p
            for a, m, p in AgentMarketRisk.objects.values_list(
                "agent__agent_id", "market", "position"
            ).iterator()
        }
        keys = set(flows) | set(self.reported) | {k for k, p in now.items() if p}
        for agent_id, market in sorted(keys):
            count, bought, sold, notional = flows.get(
                (agent_id, market), [0, Decimal(0), Decimal(0), Decimal(0)]
            )
            reported, reported_at = self.reported.get((agent_id, market), (None, None))
            spool.write(
                [
                    agent_id,
                    market,
                    count,
                    _d(bought),
                    _d(sold),
                    _d(bought - sold),
                    _d(notional),
                    reported,
                    iso_us(reported_at),
                    _d(now.get((agent_id, market))),
                ]
            )

    def pre_trade_controls(self, period: Period, from_seq: int | None, to_seq: int | None) -> None:
        """The config versions in force during the period: the one in force at its
        start and every version recorded inside it."""
        spool = self.spool("pre_trade_controls")
        if spool is None:
            return
        qs = ComplianceConfigVersion.objects.order_by("version")
        if from_seq is None or to_seq is None:
            latest = qs.filter(created_at__lt=period.end).last()
            versions = [latest] if latest else []
        else:
            qs = qs.filter(seq__lte=to_seq)
            at_start = qs.filter(seq__lt=from_seq).last()
            versions = ([at_start] if at_start else []) + list(qs.filter(seq__gte=from_seq))
        for v in versions:
            spool.write([v.version, v.hash, v.seq, _iso(v.created_at)])


@dataclass(frozen=True)
class Pinned:
    """What fixes a provisional report, so that it regenerates byte for byte:
    the seq range it covered, the log size and the time of its first run.
    Sections read from projections that change later (approvals, alerts,
    positions) are left empty in it; the final report has them."""

    from_seq: int | None
    to_seq: int | None
    log_size: int
    generated_at_us: int


def collect(spec: ReportSpec, directory: Path, pinned: Pinned | None = None) -> ReportContent:
    """Everything a report shows: its header, its summary and one spool per section."""
    log = Log.objects.filter(name=DEFAULT_LOG).first() or Log.objects.create(name=DEFAULT_LOG)
    log_size = log.size if pinned is None else pinned.log_size
    thresholds = Thresholds.current()
    collector = _Collector(spec, directory, log, thresholds)
    if pinned is None:
        from_seq, to_seq = period_seq_range(log, spec.period, log_size)
    else:
        from_seq, to_seq = pinned.from_seq, pinned.to_seq
    if from_seq is not None and to_seq is not None:
        collector.walk(from_seq, to_seq)
    owners = dict(
        Agent.objects.filter(owner__isnull=False).values_list("agent_id", "owner__username")
    )
    collector.finish_agents(owners)
    if pinned is None:
        collector.approvals(spec.period)
        collector.alerts(spec.period)
        collector.positions(spec.period)
    # a provisional report is pinned to its seq range: later bypasses stay out
    collector.gate_bypasses(spec.period, None if pinned is None else to_seq)
    collector.pre_trade_controls(spec.period, from_seq, to_seq)
    for spool in collector.spools.values():
        spool.close()
    counts = collector.counts
    counts["from_seq"] = from_seq  # type: ignore[assignment]
    counts["to_seq"] = to_seq  # type: ignore[assignment]
    checkpoints = Checkpoint.objects.filter(log=log, tree_size__lte=log_size)
    if pinned is not None:
        checkpoints = checkpoints.filter(timestamp_us__lte=pinned.generated_at_us)
    checkpoint = checkpoints.order_by("-tree_size", "-timestamp_us").first()
    regulator = REGULATORS.get(spec.regulator) if spec.regulator else None
    header: dict[str, Any] = {
        "report_id": spec.report_id,
        "kind": spec.kind,
        "title": KIND_TITLES[spec.kind],
        "format": spec.format,
        "regulator": spec.regulator or None,
        "regulator_title": regulator.title if regulator else None,
        "authority": regulator.authority if regulator else None,
        "legal_basis": list(regulator.legal_basis) if regulator else [],
        "language": regulator.language if regulator else "en",
        "period": {
            "label": spec.period.label,
            "start": iso_us(spec.period.start_us),
            "end": iso_us(spec.period.end_us),
            "start_us": spec.period.start_us,
            "end_us": spec.period.end_us,
        },
        "generated_at": iso_us(to_us(timezone.now()) if pinned is None else pinned.generated_at_us),
        "firm": firm_fields(spec.regulator),
        "coverage": {
            "from_seq": from_seq,
            "to_seq": to_seq,
            "records": counts["records"],
            "log_size_at_generation": log_size,
            "log_origin": getattr(settings, "COMPLIANCE_LOG_ORIGIN", ""),
            "checkpoint": {
                "tree_size": checkpoint.tree_size,
                "root_hash": bytes(checkpoint.root_hash).hex(),
                "timestamp_us": checkpoint.timestamp_us,
            }
            if checkpoint
            else None,
        },
        "thresholds": thresholds.as_dict(),
        "notes": list(regulator.notes) if regulator else [],
        "sections": list(collector.wanted),
        "format_version": 1,
    }
    if pinned is not None:
        header["provisional"] = True
        header["notes"].append(
            "PROVISIONAL: the period had not ended; this report covers seq "
            f"{from_seq}..{to_seq} and regenerates byte for byte from that range. "
            "Approvals, alerts and positions are left out (they change after the "
            "fact); the final report has them."
        )
    summary = {name: counts[name] for name in SUMMARY_METRICS}
    return ReportContent(header, summary, [collector.spools[name] for name in collector.wanted])
