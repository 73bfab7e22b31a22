"""Verification of the stored log: every leaf recomputed from the stored
canonical record, the chain, seq contiguity, the head. Names the first bad seq.

Run as `manage.py verify_audit`, `POST /api/v1/log/verify/` and a nightly task
whose result is itself recorded (AUDIT_VERIFIED)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import transaction

from ..models import Log, Record
from .log import DEFAULT_LOG, Actor, record_event

CHUNK = 5000


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


def _check_body(seq: int, body: str, event_type: str, recorded_at_us: int) -> str | None:
    """The indexed columns must agree with the hashed record they were copied from."""
    try:
        record = json.loads(body)
    except ValueError:
        return "stored record is not valid JSON"
    if not isinstance(record, dict) or set(record) != {
        "seq",
        "recorded_at_us",
        "event_type",
        "actor",
        "source",
        "data",
    }:
        return "stored record does not have exactly the six record keys"
    if record["seq"] != seq:
        return f"record body says seq {record['seq']} but is stored at seq {seq}"
    if record["event_type"] != event_type or record["recorded_at_us"] != recorded_at_us:
        return "indexed columns disagree with the hashed record"
    return None


def verify_log(*, log_name: str = DEFAULT_LOG) -> VerifyResult:
    """Recompute the whole chain. Reads in seq order by keyset pagination so
    memory stays flat whatever the log's size."""
    head = Log.objects.filter(name=log_name).first()
    if head is None:
        return VerifyResult(True, 0, None, "the log is empty")
    sha256 = hashlib.sha256
    prev = bytes(32)
    expected = 0
    while True:
        rows = list(
            Record.objects.filter(log=head, seq__gte=expected)
            .order_by("seq")
            .values_list("seq", "body", "leaf_hash", "chain_hash", "purged", "event_type", "recorded_at_us")[
                :CHUNK
            ]
        )
        if not rows:
            break
        for seq, body, leaf_hash, chain_hash, purged, event_type, recorded_at_us in rows:
            if seq != expected:
                return VerifyResult(False, expected, expected, f"record {expected} is missing")
            leaf = bytes(leaf_hash)
            if not purged:
                if body is None:
                    return VerifyResult(False, expected, seq, "record has no body but is not purged")
                if sha256(b"\x00" + body.encode("utf-8")).digest() != leaf:
                    return VerifyResult(False, expected, seq, "leaf hash does not match the stored record")
                problem = _check_body(seq, body, event_type, recorded_at_us)
                if problem:
                    return VerifyResult(False, expected, seq, problem)
            prev = sha256(prev + leaf).digest()
            if prev != bytes(chain_hash):
                return VerifyResult(False, expected, seq, "chain hash does not link to the previous record")
            expected += 1
    head.refresh_from_db()
    if expected != head.size:
        return VerifyResult(
            False, expected, expected, f"log head says {head.size} records but {expected} are stored"
        )
    if bytes(head.chain_hash) != prev:
        return VerifyResult(False, expected, max(expected - 1, 0), "log head chain hash differs from the last record")
    return VerifyResult(True, expected, None, f"{expected} records verified")


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
