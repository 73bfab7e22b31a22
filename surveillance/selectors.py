"""Surveillance's reads: orders, positions, kill switches and alerts, filtered
by the caller's rights where a person asks. Queries only: nothing here writes,
locks or records (the gate's locked snapshot is services.snapshot's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

from accounts.models import Agent, Role, User
from accounts.roles import has_role, user_role
from accounts.selectors import agent_list_for_user, scope_to_agents
from audit.selectors import RecordFilter, record_list

from .models import AgentMarketRisk, Alert, KillSwitch, MarketRisk, Order


@dataclass
class PositionsView:
    agents: QuerySet[AgentMarketRisk]
    firm: QuerySet[MarketRisk] | None  # None: the caller does not see every agent


def positions_for_user(
    *, user: Any, agent: Agent | None = None, market: str | None = None
) -> PositionsView:
    """Each visible agent's position and resting orders per market (rows with
    nothing in them left out), and the firm's per market for a caller who
    sees every agent: the firm's totals would tell a trader about desks that
    are not theirs."""
    agents = AgentMarketRisk.objects.filter(agent__in=agent_list_for_user(user=user))
    if agent is not None:
        agents = agents.filter(agent=agent)
    firm: QuerySet[MarketRisk] | None = None
    if user_role(user) not in (None, Role.TRADER):
        firm = MarketRisk.objects.order_by("market")
    if market:
        agents = agents.filter(market=market)
        firm = firm.filter(market=market) if firm is not None else None
    agents = agents.exclude(position=0, open_buy=0, open_sell=0)
    if firm is not None:
        firm = firm.exclude(position=0, open_buy=0, open_sell=0)
    return PositionsView(agents.select_related("agent").order_by("agent__agent_id", "market"), firm)


# --- orders and kill switches ------------------------------------------------------


def order_get(*, agent: Agent, order_id: str) -> Order | None:
    return Order.objects.filter(agent=agent, order_id=order_id).first()


def orders_resting(q: Q | None = None) -> QuerySet[Order]:
    qs = Order.objects.filter(status__in=Order.RESTING)
    return qs.filter(q) if q is not None else qs


def cancel_orders_for(agent: Agent) -> list[str]:
    """The agent's resting orders a person asked to cancel (the gate reads the
    same in its snapshot; this is for answers given without one)."""
    return sorted(
        Order.objects.filter(
            agent=agent, cancel_requested_at_us__isnull=False, status__in=Order.RESTING
        ).values_list("order_id", flat=True)
    )


def active_kill_switches() -> set[tuple[str, str]]:
    return set(KillSwitch.objects.filter(active=True).values_list("scope", "target"))


def kill_switch_active() -> list[KillSwitch]:
    return list(KillSwitch.objects.filter(active=True).order_by("activated_at"))


# --- alerts --------------------------------------------------------------------------


def alert_list_for_user(
    *,
    user: Any,
    status: str | None = None,
    detector: str | None = None,
    severity: str | None = None,
    agent_id: str | None = None,
) -> QuerySet[Alert]:
    """Alerts the caller may read, in queue order (active first, most severe
    first, oldest first). Viewers and every role above them read every alert,
    a trader only their own agents' (accounts.selectors.scope_to_agents);
    anyone else (bots included) reads none."""
    qs = Alert.objects.select_related("assigned_to", "closed_by", "escalated_by")
    if not isinstance(user, User) or not has_role(user, Role.VIEWER):
        return qs.none()
    qs = scope_to_agents(qs, user=user)
    if status:
        qs = qs.filter(status=status)
    if detector:
        qs = qs.filter(detector=detector)
    if severity:
        qs = qs.filter(severity=severity)
    if agent_id:
        qs = qs.filter(agent_id=agent_id)
    return qs.order_by(*queue_ordering())


def alert_get_for_user(*, user: Any, alert_id: int) -> Alert | None:
    return alert_list_for_user(user=user).filter(pk=alert_id).first()


def queue_ordering() -> list[Any]:
    active_first = Case(
        When(status__in=Alert.ACTIVE, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    return [active_first.asc(), "-severity_rank", "created_at", "pk"]


def alert_history(*, alert: Alert) -> list[dict[str, Any]]:
    """The case's history from its records: the SURVEILLANCE_ALERT record that
    opened it and every ALERT_UPDATED record indexed under it, in log order,
    each as the record says it (actor, time, action, note)."""
    seqs = [alert.seq, *alert.log_entries.values_list("seq", flat=True)]
    records = record_list(filters=RecordFilter()).filter(seq__in=[s for s in seqs if s >= 0])
    history = []
    for record in records:
        body = record.as_dict()
        data = body.get("data") or {}
        history.append(
            {
                "seq": record.seq,
                "record_pk": record.pk,
                "recorded_at_us": record.recorded_at_us,
                "event_type": record.event_type,
                "actor": record.actor_id,
                "action": "created"
                if record.event_type == "SURVEILLANCE_ALERT"
                else data.get("action", ""),
                "from_status": data.get("from_status"),
                "status": data.get("status", "open"),
                "note": data.get("note", ""),
                "data": data,
                "purged": bool(body.get("purged")),
            }
        )
    return history


def alert_evidence(*, alert: Alert) -> list[dict[str, Any]]:
    """The records behind the alert as a timeline (log order): each with its
    time, type, agent and the order it concerns (order id, side, quantity,
    price, fill, reason as the envelope or decision says them), and the pk of
    that order's row where the gate knows it, so the page can link to it."""
    seqs = [int(s) for s in alert.evidence if isinstance(s, int)]
    rows = []
    for record in record_list(filters=RecordFilter()).filter(seq__in=seqs):
        body = record.as_dict()
        source = body.get("source") or {}
        payload = (source.get("envelope") or {}).get("payload") or {}
        data = body.get("data") or {}
        merged = {**data, **payload} if isinstance(payload, dict) else dict(data)
        rows.append(
            {
                "seq": record.seq,
                "record_pk": record.pk,
                "recorded_at_us": record.recorded_at_us,
                "event_type": record.event_type,
                "agent_id": record.agent_id or data.get("agent_id") or "",
                "order_id": merged.get("order_id", ""),
                "market": merged.get("market", ""),
                "side": merged.get("side", ""),
                "quantity": merged.get("quantity", ""),
                "price": merged.get("price", ""),
                "fill_id": merged.get("fill_id", ""),
                "decision": data.get("decision", ""),
                "reason": merged.get("reason", ""),
                "purged": bool(body.get("purged")),
                "order_pk": None,
            }
        )
    wanted = {(r["agent_id"], r["order_id"]) for r in rows if r["agent_id"] and r["order_id"]}
    if wanted:
        orders = Order.objects.filter(
            agent__agent_id__in={a for a, _ in wanted}, order_id__in={o for _, o in wanted}
        ).values_list("agent__agent_id", "order_id", "pk")
        pks = {(agent, order): pk for agent, order, pk in orders}
        for row in rows:
            row["order_pk"] = pks.get((row["agent_id"], row["order_id"]))
    return rows
