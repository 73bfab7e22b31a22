"""Signed checkpoints (C2SP tlog-checkpoint notes) over the log.

A checkpoint is written whenever the tree grew, and at least every heartbeat
interval even when it did not, so an auditor can tell a quiet log from a
frozen one. Timestamps strictly increase; we refuse to sign otherwise."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F

from compliance_client.note import Checkpoint as NoteCheckpoint
from compliance_client.note import sign_checkpoint
from compliance_site.exceptions import Conflict

from .. import log_key
from ..models import Checkpoint, Log
from .log import DEFAULT_LOG, now_us
from .tree import current_root


class CheckpointError(Conflict):
    """The log refuses to sign a checkpoint now (409)."""

    def __init__(self, detail: str):
        super().__init__("checkpoint_refused", detail)


CheckpointHook = Callable[[Checkpoint], None]
_after_checkpoint_hooks: list[CheckpointHook] = []


def register_checkpoint_hook(hook: CheckpointHook) -> None:
    """Apps to the right (webhooks) are told of each new checkpoint inside its transaction."""
    if hook not in _after_checkpoint_hooks:
        _after_checkpoint_hooks.append(hook)


@transaction.atomic
def checkpoint_create(*, log_name: str = DEFAULT_LOG, force: bool = False) -> Checkpoint | None:
    """Sign the current tree. Without `force`, skip when the tree has not grown
    and the last checkpoint is younger than the heartbeat interval."""
    head = Log.objects.select_for_update().get(name=log_name)
    last = Checkpoint.objects.filter(log=head).order_by("-timestamp_us").first()
    timestamp_us = now_us()
    heartbeat_us = settings.COMPLIANCE_CHECKPOINT_HEARTBEAT_SECS * 1_000_000
    if (
        not force
        and last is not None
        and last.tree_size == head.size
        and timestamp_us - last.timestamp_us < heartbeat_us
    ):
        return None
    if last is not None and timestamp_us <= last.timestamp_us:
        raise CheckpointError(
            f"refusing to sign: clock at {timestamp_us} is not after "
            f"the last checkpoint {last.timestamp_us}"
        )
    if last is not None and head.size < last.tree_size:
        raise CheckpointError(
            f"refusing to sign: log size {head.size} is below checkpoint {last.tree_size}"
        )
    root = current_root(head)
    note = sign_checkpoint(
        NoteCheckpoint(settings.COMPLIANCE_LOG_ORIGIN, head.size, root, timestamp_us),
        log_key.key_name(),
        log_key.private_key(),
    )
    checkpoint = Checkpoint.objects.create(
        log=head,
        tree_size=head.size,
        root_hash=root,
        timestamp_us=timestamp_us,
        note=note,
        prev_tree_size=last.tree_size if last is not None else -1,
        prev_root_hash=bytes(last.root_hash) if last is not None else b"",
    )
    Log.objects.filter(pk=head.pk).update(checkpoint_count=F("checkpoint_count") + 1)
    for hook in _after_checkpoint_hooks:
        hook(checkpoint)
    return checkpoint
