"""The retention purge: the one UPDATE the log's triggers allow.

A purged record keeps seq, event_type, recorded_at_us, its indexed columns and
both hashes; only `body` (the canonical text holding `source` and `data`) is
cleared and `purged` set. The leaf hash stays, so the chain, the stored Merkle
nodes, every checkpoint and every proof still verify (verification skips the
leaf recomputation for purged records and links them by their stored hash)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from ..models import Record
from .log import DEFAULT_LOG, Actor, AuditError, lock_head, record_event


@dataclass(frozen=True)
class PurgeResult:
    count: int
    from_seq: int | None
    to_seq: int | None
    seq: int | None  # the DATA_PURGED record, None when nothing was purged


def seq_ranges(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted seqs as inclusive [first, last] runs: [1, 2, 3, 7] -> [[1, 3], [7, 7]]."""
    out: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


def records_purge(
    *,
    seqs: Iterable[int],
    acting: Actor,
    detail: dict[str, Any] | None = None,
    log_name: str = DEFAULT_LOG,
) -> PurgeResult:
    """Clear the payload of the given records and record DATA_PURGED with the seq
    range, the exact runs of seqs purged and their count, in the caller's
    transaction.

    Deciding what may be purged (past retention, outside every legal hold) is
    the caller's job: only reporting.services.retention calls this. Records
    already purged are skipped, so a repeated call has one effect and writes
    no second DATA_PURGED."""
    if not transaction.get_connection().in_atomic_block:
        raise AuditError("records_purge must run inside the caller's transaction")
    wanted = sorted(set(seqs))
    if not wanted:
        return PurgeResult(0, None, None, None)
    head = lock_head(log_name)  # purges and appends of this log serialize
    todo = list(
        Record.objects.filter(log_id=head.pk, seq__in=wanted, purged=False)
        .order_by("seq")
        .values_list("seq", flat=True)
    )
    if not todo:
        return PurgeResult(0, None, None, None)
    count = Record.objects.filter(log_id=head.pk, seq__in=todo, purged=False).update(
        body=None, purged=True
    )
    if count != len(todo):
        raise AuditError(f"purge expected to clear {len(todo)} records but cleared {count}")
    record = record_event(
        "DATA_PURGED",
        actor=acting,
        data={
            **(detail or {}),
            "from_seq": todo[0],
            "to_seq": todo[-1],
            "count": count,
            "ranges": seq_ranges(todo),
        },
        log_name=log_name,
    )
    return PurgeResult(count, todo[0], todo[-1], record.seq)
