"""Reads of the log, permission-checked by the API layer (viewer and above read all)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet

from .models import Log, Record
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


def record_is_agents(*, seq: int, agent_id: str, log_name: str = DEFAULT_LOG) -> bool:
    """Is the record at `seq` one the agent reported? (A bot may fetch proofs
    for its own records only.)"""
    return Record.objects.filter(log__name=log_name, seq=seq, agent_id=agent_id).exists()


def log_head(*, log_name: str = DEFAULT_LOG) -> Log:
    return Log.objects.get(name=log_name)
