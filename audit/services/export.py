"""Evidence bundles (CONTRACT section 9), written with compliance_client.bundle so
the server and the offline verifier share one definition of the format.

Streams: records are read by keyset pagination and written straight into the
zip, so memory stays flat whatever the log's size."""

from __future__ import annotations

import base64
import hashlib
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from itertools import pairwise
from typing import IO, Any

from django.core.files import File
from django.core.files.storage import default_storage
from django.db.models import Q
from django.utils import timezone

from accounts.models import AgentKey, User
from compliance_client import merkle
from compliance_client.bundle import BundleWriter, consistency_entry
from compliance_site.dispatch import publish_on_commit
from compliance_site.exceptions import Invalid

from .. import log_key
from ..models import Checkpoint, Log, LogExport, Record
from .checkpoints import checkpoint_create
from .log import DEFAULT_LOG
from .tree import fetcher
from .witnesses import note_with_cosignatures

CHUNK = 5000
STALE_RUNNING = timedelta(minutes=30)


class ExportError(Invalid):
    """An evidence bundle that cannot be made as asked (400)."""

    def __init__(self, detail: str):
        super().__init__("invalid_export_range", detail)


@dataclass
class ExportInfo:
    records: int
    checkpoints: int
    tree_size: int


def _keys_doc() -> dict[str, Any]:
    return {
        "log": {
            "key_name": log_key.key_name(),
            "algorithm": "ed25519",
            "public_key": base64.b64encode(log_key.public_key_raw()).decode(),
        },
        "agents": [
            {
                "agent_id": agent_id,
                "key_id": key_id,
                "public_key": public_key,
                "created_at_us": created,
                "revoked_at_us": revoked,
            }
            for agent_id, key_id, public_key, created, revoked in AgentKey.objects.order_by(
                "agent__agent_id", "created_at_us", "pk"
            ).values_list(
                "agent__agent_id", "key_id", "public_key", "created_at_us", "revoked_at_us"
            )
        ],
    }


def check_range(*, from_seq: int | None, to_seq: int | None, log_name: str = DEFAULT_LOG) -> None:
    """Refuse impossible ranges before anything is queued (400)."""
    size = Log.objects.filter(name=log_name).values_list("size", flat=True).first() or 0
    if (from_seq is not None and from_seq < 0) or (to_seq is not None and to_seq < 0):
        raise ExportError("from_seq and to_seq must be >= 0")
    if to_seq is not None and to_seq >= size:
        raise ExportError(f"to_seq {to_seq} is beyond the log (size {size})")
    if from_seq is not None and to_seq is not None and from_seq > to_seq:
        raise ExportError("from_seq must not exceed to_seq")
    if (
        to_seq is not None
        and not Checkpoint.objects.filter(log__name=log_name, tree_size__lte=to_seq + 1).exists()
    ):
        raise ExportError(f"no checkpoint covers a tree of at most {to_seq + 1} records yet")


def export_size(*, from_seq: int | None, to_seq: int | None, log_name: str) -> int:
    """The number of records an export covers, checking the range first. Without
    `to_seq`, a fresh checkpoint is signed so every exported record is under one."""
    check_range(from_seq=from_seq, to_seq=to_seq, log_name=log_name)
    if to_seq is None:
        latest = checkpoint_create(log_name=log_name, force=True)
        assert latest is not None
        return latest.tree_size
    return to_seq + 1


def write_bundle(
    out: IO[bytes],
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    log_name: str = DEFAULT_LOG,
) -> ExportInfo:
    """Write the bundle to `out`. Without `to_seq`, signs a fresh checkpoint first
    so that every exported record is covered by a signature."""
    size = export_size(from_seq=from_seq, to_seq=to_seq, log_name=log_name)
    log = Log.objects.get(name=log_name)
    start = from_seq or 0
    # Each note carries its witnesses' cosignatures (C2SP: more signature lines).
    checkpoints = [
        (cp.tree_size, note_with_cosignatures(cp))
        for cp in Checkpoint.objects.filter(log=log, tree_size__lte=size)
        .order_by("timestamp_us")
        .prefetch_related("cosignatures")
    ]
    fetch = fetcher(log_name)
    proofs = [
        consistency_entry(a, b, merkle.consistency_proof(a, b, fetch))
        for (a, _), (b, _) in pairwise(checkpoints)
    ]
    writer = BundleWriter(out)
    seq = 0
    while seq < size:
        rows = Record.objects.filter(
            log=log, seq__gte=seq, seq__lt=min(size, seq + CHUNK)
        ).order_by("seq")
        if seq + CHUNK <= start:
            rows = rows.only("seq", "leaf_hash", "chain_hash")
        for record in rows:
            if record.seq < start:
                writer.add_record_line(
                    {
                        "seq": record.seq,
                        "leaf_hash": bytes(record.leaf_hash).hex(),
                        "chain_hash": bytes(record.chain_hash).hex(),
                        "omitted": True,
                    }
                )
            else:
                writer.add_record_line(record.as_dict())
            seq += 1
        if seq < size and not rows.exists():
            raise ExportError(f"record {seq} is missing from the log")
    writer.set_checkpoints([note for _, note in checkpoints])
    writer.set_consistency(proofs)
    writer.set_keys(_keys_doc())
    writer.close()
    return ExportInfo(records=size, checkpoints=len(checkpoints), tree_size=size)


def export_request(
    *, acting_user: User, from_seq: int | None, to_seq: int | None, fmt: str = "bundle"
) -> LogExport:
    """Queue an export (viewers and up: auditors request the bundles they
    download); the task runs after commit."""
    check_range(from_seq=from_seq, to_seq=to_seq)
    if fmt not in LogExport.Format.values:
        raise ExportError(f"format must be one of {', '.join(LogExport.Format.values)}")
    export = LogExport.objects.create(
        requested_by=acting_user, from_seq=from_seq, to_seq=to_seq, format=fmt
    )
    publish_on_commit("audit.tasks.log_export_task", str(export.pk))
    return export


def export_run(*, export_id: str) -> LogExport | None:
    """Claim and produce one export. Idempotent: a finished export is left alone,
    one claimed by a worker that died is taken over after STALE_RUNNING."""
    now = timezone.now()
    claimed = LogExport.objects.filter(
        Q(status=LogExport.Status.PENDING)
        | Q(status=LogExport.Status.RUNNING, started_at__lt=now - STALE_RUNNING),
        pk=export_id,
    ).update(status=LogExport.Status.RUNNING, started_at=now)
    if not claimed:
        return LogExport.objects.filter(pk=export_id).first()
    export = LogExport.objects.get(pk=export_id)
    try:
        with tempfile.TemporaryFile() as tmp:
            writer = write_bundle
            if export.format == LogExport.Format.VCP:
                from .vcp import write_vcp_archive as writer
            info = writer(tmp, from_seq=export.from_seq, to_seq=export.to_seq)
            size = tmp.tell()
            tmp.seek(0)
            digest = hashlib.sha256()
            for block in iter(lambda: tmp.read(1 << 20), b""):
                digest.update(block)
            tmp.seek(0)
            prefix = "vcp" if export.format == LogExport.Format.VCP else "evidence"
            name = default_storage.save(f"exports/{prefix}-{export.pk}.zip", File(tmp))
    except Exception as exc:
        LogExport.objects.filter(pk=export.pk).update(
            status=LogExport.Status.FAILED, error=str(exc)[:2000], finished_at=timezone.now()
        )
        raise
    LogExport.objects.filter(pk=export.pk).update(
        status=LogExport.Status.DONE,
        file_name=name,
        sha256=digest.hexdigest(),
        size_bytes=size,
        records=info.records,
        finished_at=timezone.now(),
    )
    return LogExport.objects.get(pk=export.pk)


def exports_stale() -> list[str]:
    """Pending for a minute or more (the wake-up was lost) or claimed by a worker
    that died: for the sweep."""
    now = timezone.now()
    return [
        str(pk)
        for pk in LogExport.objects.filter(
            Q(status=LogExport.Status.PENDING, created_at__lt=now - timedelta(minutes=1))
            | Q(status=LogExport.Status.RUNNING, started_at__lt=now - STALE_RUNNING)
        ).values_list("pk", flat=True)[:100]
    ]


def export_as_dict(export: LogExport, download_url: str | None) -> dict[str, Any]:
    return {
        "id": str(export.pk),
        "format": export.format,
        "status": export.status,
        "sha256": export.sha256 or None,
        "download_url": download_url if export.status == LogExport.Status.DONE else None,
        "from_seq": export.from_seq,
        "to_seq": export.to_seq,
        "records": export.records,
        "size_bytes": export.size_bytes,
        "error": export.error or None,
        "created_at": export.created_at.isoformat(),
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
    }


__all__ = ["ExportError", "export_as_dict", "export_request", "export_run", "write_bundle"]
