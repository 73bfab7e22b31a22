"""Verification of the stored log, naming the first bad seq.

Checks, in one pass in seq order: every leaf recomputed from the stored
canonical record; the indexed columns against the record; the chain; seq
contiguity; every bot signature against the key registry (a key revoked after
an event still verifies it); the Merkle tree (every stored node, and the root
at every checkpoint's size); every checkpoint's signature with the log key;
and the head. Run as `manage.py verify_audit`, `POST /api/v1/log/verify/` and
a nightly task whose result is itself recorded (AUDIT_VERIFIED)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.conf import settings
from django.db import transaction

from accounts.models import AgentKey
from compliance_client import merkle
from compliance_client.jcs import canonicalize
from compliance_client.note import (
    NoteError,
    checkpoint_body,
    verify_checkpoint,
    verify_cosignature_line,
)

from .. import log_key
from ..models import Checkpoint, Cosignature, Log, MerkleNode, Record
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


def _checkpoints(head: Log) -> list[tuple[int, bytes, Checkpoint]]:
    """Every checkpoint, its signature checked; (tree_size, root, row) by size."""
    public = log_key.public_key_raw()
    name = log_key.key_name()
    out = []
    last_ts = -1
    last_size = 0
    for cp in Checkpoint.objects.filter(log=head).order_by("timestamp_us"):
        try:
            parsed = verify_checkpoint(cp.note, name, public, origin=settings.COMPLIANCE_LOG_ORIGIN)
        except NoteError as exc:
            raise _Bad(None, f"checkpoint at tree size {cp.tree_size}: {exc}") from exc
        if (parsed.tree_size, parsed.root_hash, parsed.timestamp_us) != (
            cp.tree_size,
            bytes(cp.root_hash),
            cp.timestamp_us,
        ):
            raise _Bad(
                None,
                f"checkpoint at tree size {cp.tree_size}: "
                "stored columns differ from the signed note",
            )
        if parsed.timestamp_us <= last_ts or parsed.tree_size < last_size:
            raise _Bad(None, f"checkpoint at tree size {cp.tree_size} goes back in time or size")
        if parsed.tree_size > head.size:
            raise _Bad(
                head.size,
                f"checkpoint covers {parsed.tree_size} records but the log has {head.size}",
            )
        last_ts, last_size = parsed.timestamp_us, parsed.tree_size
        out.append((parsed.tree_size, parsed.root_hash, cp))
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


def verify_log(*, log_name: str = DEFAULT_LOG, check_signatures: bool = True) -> VerifyResult:
    """Verify everything; memory stays flat (keyset pagination, chunked)."""
    head = Log.objects.filter(name=log_name).first()
    if head is None:
        return VerifyResult(True, 0, None, "the log is empty")
    checked = 0
    try:
        checkpoints = _checkpoints(head)
        _check_cosignatures(head)
        checked = _walk(head, checkpoints, _key_registry() if check_signatures else None)
    except _Bad as bad:
        return VerifyResult(False, checked if bad.seq is None else bad.seq, bad.seq, bad.detail)
    return VerifyResult(
        True, checked, None, f"{checked} records and {len(checkpoints)} checkpoints verified"
    )


def _walk(head: Log, checkpoints: list[tuple[int, bytes, Checkpoint]], keys: dict | None) -> int:
    sha256 = hashlib.sha256
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
                if sha256(b"\x00" + body.encode("utf-8")).digest() != leaf:
                    raise _Bad(seq, "leaf hash does not match the stored record")
                _check_record(seq, body, event_type, recorded_at_us, keys)
            prev = sha256(prev + leaf).digest()
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
    result = verify_log(log_name=log_name)
    with transaction.atomic():
        record_event(
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
    return result
