"""Reads of the log. The API reads through the *_for_user selectors (object scope:
accounts.selectors.scope_to_agents); the unscoped ones serve services and jobs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from accounts.selectors import scope_to_agents, sees_whole_firm

from .models import Log, LogExport, Record
from .services.log import DEFAULT_LOG


@dataclass
class RecordFilter:
    event_type: str | None = None
    agent_id: str | None = None
    from_seq: int | None = None
    to_seq: int | None = None
    start_us: int | None = None
    end_us: int | None = None


def record_list(*, filters: RecordFilter, log_name: str = DEFAULT_LOG) -> QuerySet[Record]:
    qs = Record.objects.filter(log__name=log_name).order_by("seq")
    if filters.event_type:
        qs = qs.filter(event_type=filters.event_type)
    if filters.agent_id:
        qs = qs.filter(agent_id=filters.agent_id)
    if filters.from_seq is not None:
        qs = qs.filter(seq__gte=filters.from_seq)
    if filters.to_seq is not None:
        qs = qs.filter(seq__lte=filters.to_seq)
    if filters.start_us is not None:
        qs = qs.filter(recorded_at_us__gte=filters.start_us)
    if filters.end_us is not None:
        qs = qs.filter(recorded_at_us__lt=filters.end_us)
    return qs


def record_get(*, seq: int, log_name: str = DEFAULT_LOG) -> Record | None:
    return Record.objects.filter(log__name=log_name, seq=seq).first()


def record_list_for_user(
    *, user: Any, filters: RecordFilter, log_name: str = DEFAULT_LOG
) -> QuerySet[Record]:
    """The records `user` may read (a trader: their own agents' only)."""
    return scope_to_agents(record_list(filters=filters, log_name=log_name), user=user)


def record_get_for_user(*, user: Any, seq: int, log_name: str = DEFAULT_LOG) -> Record | None:
    qs = Record.objects.filter(log__name=log_name, seq=seq)
    return scope_to_agents(qs, user=user).first()


def export_list_for_user(*, user: Any) -> QuerySet[LogExport]:
    """Evidence bundles hold every desk's records: whoever sees the whole firm
    (accounts.selectors.sees_whole_firm) reads them, a trader none."""
    if not sees_whole_firm(user=user):
        return LogExport.objects.none()
    return LogExport.objects.order_by("-created_at")


def record_is_agents(*, seq: int, agent_id: str, log_name: str = DEFAULT_LOG) -> bool:
    """Is the record at `seq` one the agent reported? (A bot may fetch proofs
    for its own records only.)"""
    return Record.objects.filter(log__name=log_name, seq=seq, agent_id=agent_id).exists()


def log_head(*, log_name: str = DEFAULT_LOG) -> Log:
    return Log.objects.get(name=log_name)
