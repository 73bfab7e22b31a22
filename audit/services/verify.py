"""Verification of the stored log, naming the first bad seq.

Checks, in one pass in seq order: every leaf recomputed from the stored
canonical record; the indexed columns against the record; the chain; seq
contiguity; every bot signature against the key registry (a key revoked after
an event still verifies it); the Merkle tree (every stored node, and the root
at every checkpoint's size); every checkpoint's signature with the log key;
and the head. Run as `manage.py verify_audit`, `POST /api/v1/log/verify/` and
a nightly task whose result is itself recorded (AUDIT_VERIFIED). The API's
verification is a job (LogVerification), run by a worker."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import AgentKey, User
from compliance_client import merkle
from compliance_client.jcs import canonicalize
from compliance_client.note import (
    NoteError,
    checkpoint_body,
    verify_checkpoint,
    verify_cosignature_line,
)
from compliance_site.dispatch import publish_on_commit
from compliance_site.exceptions import Forbidden

from .. import log_key
from ..models import Checkpoint, Cosignature, Log, LogVerification, MerkleNode, Record
from .log import DEFAULT_LOG, TILE_LEVELS, Actor, record_event

CHUNK = 5000
RECORD_KEYS = {"seq", "recorded_at_us", "event_type", "actor", "source", "data"}


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "detail": self.detail,
        }


class _Bad(Exception):
    def __init__(self, seq: int | None, detail: str):
        super().__init__(detail)
        self.seq = seq
        self.detail = detail


@dataclass
class _Key:
    public: Ed25519PublicKey
    created_at_us: int
    revoked_at_us: int | None


def _key_registry() -> dict[tuple[str, str], _Key]:
    return {
        (agent_id, key_id): _Key(
            Ed25519PublicKey.from_public_bytes(base64.b64decode(pub)), created, revoked
        )
        for agent_id, key_id, pub, created, revoked in AgentKey.objects.values_list(
            "agent__agent_id", "key_id", "public_key", "created_at_us", "revoked_at_us"
        )
    }


def _check_record(
    seq: int,
    body: str,
    event_type: str,
    recorded_at_us: int,
    keys: dict[tuple[str, str], _Key] | None,
) -> None:
    try:
        record = json.loads(body)
    except ValueError as exc:
        raise _Bad(seq, "stored record is not valid JSON") from exc
    if not isinstance(record, dict) or set(record) != RECORD_KEYS:
        raise _Bad(seq, "stored record does not have exactly the six record keys")
    if record["seq"] != seq:
        raise _Bad(seq, f"record body says seq {record['seq']} but is stored at seq {seq}")
    if record["event_type"] != event_type or record["recorded_at_us"] != recorded_at_us:
        raise _Bad(seq, "indexed columns disagree with the hashed record")
    source = record["source"]
    if source is not None and keys is not None:
        _check_signature(seq, record, source, keys)


def _check_signature(
    seq: int, record: dict[str, Any], source: Any, keys: dict[tuple[str, str], _Key]
) -> None:
    try:
        envelope = source["envelope"]
        agent_id = envelope["agent_id"]
        key = keys.get((agent_id, source["key_id"]))
        signature = base64.b64decode(source["signature"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise _Bad(seq, "bot source is malformed") from exc
    if record["actor"] != {"type": "agent", "id": agent_id}:
        raise _Bad(seq, "record actor is not the agent that signed the envelope")
    if key is None:
        raise _Bad(
            seq, f"signing key {source['key_id']!r} of {agent_id} is not in the key registry"
        )
    if record["recorded_at_us"] < key.created_at_us or (
        key.revoked_at_us is not None and record["recorded_at_us"] >= key.revoked_at_us
    ):
        raise _Bad(seq, f"record was accepted outside the validity of key {source['key_id']!r}")
    try:
        key.public.verify(signature, canonicalize(envelope))
    except (InvalidSignature, ValueError) as exc:
        raise _Bad(seq, "bot signature does not verify") from exc


def _checkpoints(head: Log, problems: list[_Bad]) -> list[tuple[int, bytes, Checkpoint]]:
    """Every checkpoint, its signature checked; (tree_size, root, row) by size.
    Checkpoints form their own chain (each names the size and root of the one
    before it) and the head counts them, so a deleted one is found. Problems go
    to `problems` rather than stopping the walk: the first bad seq reported is
    the lowest that any check finds."""
    public = log_key.public_key_raw()
    name = log_key.key_name()
    out = []
    last_ts = -1
    last_size = 0
    previous: Checkpoint | None = None
    rows = list(Checkpoint.objects.filter(log=head).order_by("timestamp_us"))
    for cp in rows:
        try:
            parsed = verify_checkpoint(cp.note, name, public, origin=settings.COMPLIANCE_LOG_ORIGIN)
        except NoteError as exc:
            problems.append(_Bad(None, f"checkpoint at tree size {cp.tree_size}: {exc}"))
            continue
        if (parsed.tree_size, parsed.root_hash, parsed.timestamp_us) != (
            cp.tree_size,
            bytes(cp.root_hash),
            cp.timestamp_us,
        ):
            problems.append(
                _Bad(
                    None,
                    f"checkpoint at tree size {cp.tree_size}: "
                    "stored columns differ from the signed note",
                )
            )
            continue
        if parsed.timestamp_us <= last_ts or parsed.tree_size < last_size:
            problems.append(
                _Bad(None, f"checkpoint at tree size {cp.tree_size} goes back in time or size")
            )
        if parsed.tree_size > head.size:
            problems.append(
                _Bad(
                    head.size,
                    f"checkpoint covers {parsed.tree_size} records but the log has {head.size}",
                )
            )
        gap = _chain_gap(previous, cp, head)
        if gap is not None:
            problems.append(gap)
        previous = cp
        last_ts, last_size = parsed.timestamp_us, parsed.tree_size
        out.append((parsed.tree_size, parsed.root_hash, cp))
    if len(rows) < head.checkpoint_count:
        last = rows[-1].tree_size if rows else 0
        problems.append(
            _Bad(
                min(last, max(head.size - 1, 0)),
                f"the head counts {head.checkpoint_count} checkpoints but {len(rows)} are "
                f"stored: a checkpoint after tree size {last} was deleted",
            )
        )
    return out


def _check_cosignatures(head: Log) -> None:
    """Every stored witness cosignature still verifies over its checkpoint with
    the witness's registered key (C2SP tlog-cosignature/v1)."""
    rows = Cosignature.objects.filter(checkpoint__log=head).select_related("checkpoint", "witness")
    for cosig in rows.order_by("pk").iterator(chunk_size=500):
        try:
            verify_cosignature_line(
                checkpoint_body(cosig.checkpoint.note),
                cosig.line,
                cosig.witness.name,
                bytes(cosig.witness.public_key),
            )
        except NoteError as exc:
            raise _Bad(
                None, f"cosignature at tree size {cosig.checkpoint.tree_size}: {exc}"
            ) from exc


def _chain_gap(previous: Checkpoint | None, cp: Checkpoint, head: Log) -> _Bad | None:
    """A checkpoint missing right before `cp`, as a problem at the first record
    after the last checkpoint still stored (whose coverage the deleted one held)."""
    if cp.prev_tree_size is None:  # signed before the chain existed
        return None
    if previous is None:
        expected: tuple[int, bytes] = (-1, b"")
    else:
        expected = (previous.tree_size, bytes(previous.root_hash))
    if (cp.prev_tree_size, bytes(cp.prev_root_hash or b"")) == expected:
        return None
    since = 0 if previous is None else previous.tree_size
    return _Bad(
        min(since, max(head.size - 1, 0)),
        f"checkpoint at tree size {cp.tree_size} follows one at tree size "
        f"{cp.prev_tree_size} that is not stored: a checkpoint was deleted",
    )


def verify_log(*, log_name: str = DEFAULT_LOG, check_signatures: bool = True) -> VerifyResult:
    """Verify everything; memory stays flat (keyset pagination, chunked). Every
    check runs; the answer names the lowest bad seq any of them found."""
    head = Log.objects.filter(name=log_name).first()
    if head is None:
        return VerifyResult(True, 0, None, "the log is empty")
    problems: list[_Bad] = []
    checked = 0
    checkpoints = _checkpoints(head, problems)
    try:
        _check_cosignatures(head)
        checked = _walk(head, checkpoints, _key_registry() if check_signatures else None)
    except _Bad as bad:
        problems.append(bad)
    if problems:
        # The lowest seq wins; a problem with no seq (a bad signature on a
        # checkpoint) only when no record-level problem was found.
        first = min(problems, key=lambda p: (p.seq is None, p.seq or 0))
        at = first.seq
        return VerifyResult(False, checked if at is None else at, at, first.detail)
    return VerifyResult(
        True, checked, None, f"{checked} records and {len(checkpoints)} checkpoints verified"
    )


def _walk(
    head: Log,
    checkpoints: list[tuple[int, bytes, Checkpoint]],
    keys: dict[tuple[str, str], _Key] | None,
) -> int:
    hash_leaf, chain_next = merkle.hash_leaf, merkle.chain_next
    prev = bytes(32)
    expected = 0
    frontier: list[bytes] = []
    pending_checkpoints = sorted(checkpoints, key=lambda c: c[0])
    cp_index = 0

    def check_roots_at(size: int) -> None:
        nonlocal cp_index
        while cp_index < len(pending_checkpoints) and pending_checkpoints[cp_index][0] == size:
            cp_size, root, _cp = pending_checkpoints[cp_index]
            if merkle.frontier_root(frontier) != root:
                raise _Bad(
                    max(cp_size - 1, 0),
                    f"Merkle root of the first {cp_size} records differs from the signed "
                    "checkpoint: "
                    "history before it was rewritten",
                )
            cp_index += 1

    check_roots_at(0)
    while True:
        rows = list(
            Record.objects.filter(log=head, seq__gte=expected)
            .order_by("seq")
            .values_list(
                "seq", "body", "leaf_hash", "chain_hash", "purged", "event_type", "recorded_at_us"
            )[:CHUNK]
        )
        if not rows:
            break
        completed: list[tuple[int, int, bytes, int]] = []
        for seq, body, leaf_hash, chain_hash, purged, event_type, recorded_at_us in rows:
            if seq != expected:
                raise _Bad(expected, f"record {expected} is missing")
            leaf = bytes(leaf_hash)
            if not purged:
                if body is None:
                    raise _Bad(seq, "record has no body but is not purged")
                if hash_leaf(body.encode("utf-8")) != leaf:
                    raise _Bad(seq, "leaf hash does not match the stored record")
                _check_record(seq, body, event_type, recorded_at_us, keys)
            prev = chain_next(prev, leaf)
            if prev != bytes(chain_hash):
                raise _Bad(seq, "chain hash does not link to the previous record")
            frontier, done = merkle.frontier_append(frontier, seq, leaf)
            completed.extend((lvl, idx, h, seq) for lvl, idx, h in done if lvl % TILE_LEVELS == 0)
            expected += 1
            check_roots_at(expected)
        _check_nodes(head, completed)
    if expected != head.size:
        raise _Bad(expected, f"log head says {head.size} records but {expected} are stored")
    if bytes(head.chain_hash) != prev:
        raise _Bad(max(expected - 1, 0), "log head chain hash differs from the last record")
    if [bytes.fromhex(h) for h in head.frontier] != frontier:
        raise _Bad(max(expected - 1, 0), "log head Merkle frontier differs from the records")
    if cp_index != len(pending_checkpoints):
        size = pending_checkpoints[cp_index][0]
        raise _Bad(expected, f"checkpoint covers {size} records but only {expected} are stored")
    return expected


def _check_nodes(head: Log, completed: list[tuple[int, int, bytes, int]]) -> None:
    if not completed:
        return
    stored = {
        (lvl, idx): bytes(h)
        for lvl, idx, h in MerkleNode.objects.filter(
            log=head, level__in={c[0] for c in completed}, index__in={c[1] for c in completed}
        ).values_list("level", "index", "hash")
    }
    for level, index, h, seq in completed:
        if stored.get((level, index)) != h:
            raise _Bad(seq, f"stored Merkle node L{level}#{index} differs from the records")


def verify_and_record(*, actor: Actor, log_name: str = DEFAULT_LOG) -> VerifyResult:
    """Verify, then record the outcome as AUDIT_VERIFIED (itself part of the log)."""
    return _verify_and_record(actor=actor, log_name=log_name)[0]


def _verify_and_record(*, actor: Actor, log_name: str) -> tuple[VerifyResult, int]:
    result = verify_log(log_name=log_name)
    with transaction.atomic():
        record = record_event(
            "AUDIT_VERIFIED",
            actor=actor,
            data={
                "ok": result.ok,
                "checked": result.checked,
                "first_bad_seq": result.first_bad_seq,
                "detail": result.detail,
            },
            log_name=log_name,
        )
    return result, record.seq


# --- verification as a job (POST /api/v1/log/verify/, CONTRACT section 12) -----------

STALE_RUNNING = timedelta(hours=6)


def verification_request(*, acting_user: User) -> LogVerification:
    """Queue a verification of the whole log (compliance officers and above).
    A large log takes minutes, longer than any request may: a worker runs it
    and records AUDIT_VERIFIED; the caller polls the row."""
    if not acting_user.has_perm("accounts.verify_log"):
        raise Forbidden(
            "forbidden", "verifying the log needs the compliance_officer role or higher"
        )
    with transaction.atomic():
        verification = LogVerification.objects.create(requested_by=acting_user)
        publish_on_commit("audit.tasks.log_verify_task", str(verification.pk))
    return verification


def verification_run(*, verification_id: str) -> LogVerification | None:
    """Claim one queued verification (or one whose worker died long ago), run it,
    record it. Idempotent: a finished one is left alone, a claimed one is not
    run twice at once."""
    now = timezone.now()
    claimed = LogVerification.objects.filter(
        Q(status=LogVerification.Status.QUEUED)
        | Q(status=LogVerification.Status.RUNNING, started_at__lt=now - STALE_RUNNING),
        pk=verification_id,
    ).update(status=LogVerification.Status.RUNNING, started_at=now)
    if not claimed:
        return LogVerification.objects.filter(pk=verification_id).first()
    job = LogVerification.objects.select_related("requested_by").get(pk=verification_id)
    actor = (
        Actor.for_user(job.requested_by) if job.requested_by is not None else Actor.system("verify")
    )
    try:
        result, seq = _verify_and_record(actor=actor, log_name=DEFAULT_LOG)
    except Exception as exc:
        LogVerification.objects.filter(pk=job.pk).update(
            status=LogVerification.Status.FAILED,
            detail=str(exc)[:2000],
            finished_at=timezone.now(),
        )
        raise
    LogVerification.objects.filter(pk=job.pk).update(
        status=LogVerification.Status.DONE,
        ok=result.ok,
        checked=result.checked,
        first_bad_seq=result.first_bad_seq,
        detail=result.detail,
        seq=seq,
        finished_at=timezone.now(),
    )
    return LogVerification.objects.get(pk=job.pk)


def verifications_stale() -> list[str]:
    """Queued for a minute or more (the wake-up was lost: broker down, web
    process killed) or claimed by a worker that died: for the sweep."""
    now = timezone.now()
    return [
        str(pk)
        for pk in LogVerification.objects.filter(
            Q(status=LogVerification.Status.QUEUED, created_at__lt=now - timedelta(minutes=1))
            | Q(status=LogVerification.Status.RUNNING, started_at__lt=now - STALE_RUNNING)
        ).values_list("pk", flat=True)[:100]
    ]


def verification_as_dict(job: LogVerification) -> dict[str, Any]:
    return {
        "id": str(job.pk),
        "status": job.status,
        "ok": job.ok,
        "checked": job.checked,
        "first_bad_seq": job.first_bad_seq,
        "detail": job.detail,
        "seq": job.seq,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
