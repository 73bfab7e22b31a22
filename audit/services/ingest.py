"""Bot event ingestion: POST /api/v1/events/ (CONTRACT section 6).

All or nothing: every item is checked before anything is written, and a
batch is appended under one lock. Checks, in order, per item: envelope shape,
floats, agent, event type, key, signature, schema. CPU-heavy work (Ed25519,
JCS, schema) runs before the transaction; Ed25519 on every core
(audit.signatures).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import IntegrityError, transaction

from accounts.models import Agent
from compliance_client.jcs import CanonicalizationError, canonicalize, number_problem
from compliance_site.exceptions import Conflict, Invalid

from .. import store
from ..event_types import Channel
from ..signatures import BatchVerifier
from ..validation import ResolvedType, amount_problem, resolve, schema_errors, timestamp_problem
from .log import DEFAULT_LOG, Actor, Appended, PendingRecord, append, now_us

MAX_BATCH = 500
ENVELOPE_KEYS = {"agent_id", "event_id", "event_type", "occurred_at_us", "payload"}
ITEM_KEYS = ENVELOPE_KEYS | {"key_id", "signature"}
MAX_SAFE_INT = 2**53 - 1
BAD_SIGNATURE = "the Ed25519 signature does not verify over JCS(envelope)"


class FloatToken(str):
    """What a JSON float parses to: kept out of payloads, reported per item."""


def parse_float(text: str) -> FloatToken:
    return FloatToken(text)


@dataclass
class ItemError:
    index: int
    code: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "code": self.code, "detail": self.detail}


class BatchRejected(Invalid):
    """At least one item is invalid; nothing was stored. 400 with every bad item
    in `errors`."""

    def __init__(self, errors: list[ItemError]):
        super().__init__(
            "invalid_events", "No event was stored: fix the listed items and resend the batch."
        )
        self.errors = errors

    def body(self) -> dict[str, Any]:
        return {**super().body(), "errors": [e.as_dict() for e in self.errors]}


class EventIdConflict(Conflict):
    """An event_id was reused with different content (409)."""

    def __init__(self, index: int, event_id: str):
        super().__init__(
            "event_id_conflict",
            f"event_id {event_id!r} was already used for a different envelope",
            index=index,
            event_id=event_id,
        )
        self.index = index
        self.event_id = event_id


@dataclass
class CheckedItem:
    """An item that passed every check, ready to append."""

    index: int
    envelope: dict[str, Any]
    key_id: str
    signature: str
    resolved: ResolvedType
    envelope_json: bytes
    envelope_hash: bytes
    received_at_us: int
    extra_data: dict[str, Any] = field(default_factory=dict)

    @property
    def event_id(self) -> str:
        return str(self.envelope["event_id"])

    def source(self) -> dict[str, Any]:
        return {"envelope": self.envelope, "key_id": self.key_id, "signature": self.signature}

    def pending(self, agent_id: str, *, event_type: str | None = None) -> PendingRecord:
        """The record for this item. The gate records a refused order as
        ORDER_REJECTED: the record's type is the server's verdict, the signed
        envelope inside it still says what the bot asked for."""
        data = {
            "schema_version": self.resolved.version,
            "received_at_us": self.received_at_us,
            "clock_drift_us": self.received_at_us - int(self.envelope["occurred_at_us"]),
            **self.extra_data,
        }
        source_json = b"".join(
            (
                b'{"envelope":',
                self.envelope_json,
                b',"key_id":',
                canonicalize(self.key_id),
                b',"signature":',
                canonicalize(self.signature),
                b"}",
            )
        )
        return PendingRecord(
            event_type=event_type or self.envelope["event_type"],
            actor=Actor.agent(agent_id),
            # The server's own integers, within the timestamp window: no walk
            # for floats or big integers unless the caller added data.
            data_json=canonicalize(data, numbers_checked=not self.extra_data),
            source_json=source_json,
            agent_id=agent_id,
            event_id=self.event_id,
            envelope_hash=self.envelope_hash,
        )


@dataclass
class ItemResult:
    event_id: str
    seq: int
    leaf_hash: str
    status: str  # "created" | "duplicate"

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "seq": self.seq,
            "leaf_hash": self.leaf_hash,
            "status": self.status,
        }


def _number_problem(item: Any) -> str | None:
    """ "float" or "integer" (beyond +/-(2**53 - 1)) if the parsed item holds one.
    (The shape check has already made every envelope field but the payload a
    string or a safe integer, so the whole item can be walked.)"""
    return number_problem(item, FloatToken)


def _shape_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "each item must be a JSON object"
    missing = ITEM_KEYS - item.keys()
    if missing:
        return f"missing keys: {', '.join(sorted(missing))}"
    extra = item.keys() - ITEM_KEYS
    if extra:
        return f"unexpected keys: {', '.join(sorted(extra))}"
    for key in ("agent_id", "event_id", "event_type", "key_id", "signature"):
        if not isinstance(item[key], str) or not item[key] or len(item[key]) > 128:
            return f"{key} must be a non-empty string of at most 128 characters"
    occurred = item["occurred_at_us"]
    if (
        isinstance(occurred, bool)
        or not isinstance(occurred, int)
        or not 0 <= occurred <= MAX_SAFE_INT
    ):
        return "occurred_at_us must be an integer number of microseconds since the epoch"
    if not isinstance(item["payload"], dict):
        return "payload must be a JSON object"
    return None


def _decode_signature(signature: str) -> bytes | None:
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


def check_items(
    agent: Agent,
    items: Sequence[Any],
    *,
    allowed_channels: frozenset[str] = frozenset({Channel.BOT}),
) -> list[CheckedItem]:
    """Check every item; raise BatchRejected listing every bad one (one error
    per item: the first check it fails, in the order of the module docstring).

    Signatures are verified by a BatchVerifier, on helper threads while this
    one checks the next items; an item whose signature fails reports
    invalid_signature whatever its schema check said."""
    received_at_us = now_us()
    errors: dict[int, ItemError] = {}
    checked: dict[int, CheckedItem] = {}
    key_ids = {item.get("key_id") for item in items if isinstance(item, dict)}
    keys = agent.keys_by_id(k for k in key_ids if isinstance(k, str))
    public_keys: dict[str, Ed25519PublicKey] = {}
    verifier = BatchVerifier()
    resolved_types: dict[str, ResolvedType | None] = {}  # a batch is mostly one or two types

    for index, item in enumerate(items):

        def fail(code: str, detail: str, index: int = index) -> None:
            errors[index] = ItemError(index, code, detail)

        problem = _shape_problem(item)
        if problem is not None:
            fail("invalid_envelope", problem)
            continue
        number_problem = _number_problem(item)
        if number_problem == "float":
            fail(
                "float_not_allowed", "JSON floats are not allowed; send decimal numbers as strings"
            )
            continue
        if number_problem == "integer":
            fail(
                "schema_violation",
                "integers must lie within +/-(2**53 - 1); send larger numbers as strings",
            )
            continue
        stale = timestamp_problem(item["occurred_at_us"], received_at_us)
        if stale is not None:
            fail("timestamp_out_of_range", stale)
            continue
        if item["agent_id"] != agent.agent_id:
            fail(
                "agent_mismatch",
                f"envelope agent_id {item['agent_id']!r} is not the authenticated agent",
            )
            continue
        event_type = item["event_type"]
        if event_type in resolved_types:
            resolved = resolved_types[event_type]
        else:
            resolved = resolved_types[event_type] = resolve(event_type)
        if resolved is None:
            fail("unknown_event_type", f"event type {item['event_type']!r} is not registered")
            continue
        if resolved.channel not in allowed_channels:
            if resolved.channel == Channel.GATE:
                fail("gate_only_event_type", f"{resolved.name} goes through POST /api/v1/orders/")
            else:
                fail("server_only_event_type", f"{resolved.name} is written by the server only")
            continue
        key = keys.get(item["key_id"])
        if key is None:
            fail(
                "unknown_key",
                f"key {item['key_id']!r} is not registered for agent {agent.agent_id}",
            )
            continue
        if key.revoked_at_us is not None:
            fail("revoked_key", f"key {key.key_id!r} was revoked")
            continue
        envelope = {k: item[k] for k in ENVELOPE_KEYS}
        try:
            envelope_json = canonicalize(envelope, numbers_checked=True)
        except CanonicalizationError as exc:
            fail("invalid_envelope", f"cannot canonicalize envelope: {exc}")
            continue
        signature = _decode_signature(item["signature"])
        if signature is None:
            fail("invalid_signature", BAD_SIGNATURE)
            continue
        public = public_keys.get(key.key_id)
        if public is None:
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key.public_key))
            public_keys[key.key_id] = public
        verifier.add(index, public, signature, envelope_json)
        problem = schema_errors(resolved.validate, item["payload"])
        if problem is not None:
            fail("schema_violation", f"{resolved.name} v{resolved.version}: {problem}")
            continue
        amount = amount_problem(resolved.name, item["payload"])
        if amount is not None:
            fail(*amount)
            continue
        checked[index] = CheckedItem(
            index=index,
            envelope=envelope,
            key_id=item["key_id"],
            signature=item["signature"],
            resolved=resolved,
            envelope_json=envelope_json,
            envelope_hash=hashlib.sha256(envelope_json).digest(),
            received_at_us=received_at_us,
        )
    for index in verifier.invalid():
        errors[index] = ItemError(index, "invalid_signature", BAD_SIGNATURE)
    if errors:
        raise BatchRejected([errors[i] for i in sorted(errors)])
    return list(checked.values())


def split_duplicates(
    agent: Agent,
    checked: Sequence[CheckedItem],
    *,
    log_name: str = DEFAULT_LOG,
    lookup: bool = True,
) -> tuple[list[CheckedItem], dict[int, ItemResult]]:
    """Separate new items from resends. A resend of the same envelope answers with
    the original seq; the same event_id with other content is an EventIdConflict.
    Without `lookup` only repeats inside the batch are found (the stored ones
    then surface as an IntegrityError from the unique index)."""
    existing = (
        store.existing_records(agent.agent_id, [c.event_id for c in checked], log_name)
        if lookup
        else {}
    )
    fresh: list[CheckedItem] = []
    duplicates: dict[int, ItemResult] = {}
    seen_in_batch: dict[str, CheckedItem] = {}
    for item in checked:
        old = existing.get(item.event_id)
        if old is not None:
            seq, envelope_hash, leaf_hash = old
            if bytes(envelope_hash or b"") != item.envelope_hash:
                raise EventIdConflict(item.index, item.event_id)
            duplicates[item.index] = ItemResult(
                item.event_id, seq, bytes(leaf_hash).hex(), "duplicate"
            )
            continue
        first = seen_in_batch.get(item.event_id)
        if first is not None:
            if first.envelope_hash != item.envelope_hash:
                raise EventIdConflict(item.index, item.event_id)
            continue  # resolved to the first occurrence after the append
        seen_in_batch[item.event_id] = item
        fresh.append(item)
    return fresh, duplicates


ProjectionHook = Callable[[Agent, list[tuple[CheckedItem, Appended]]], None]
_projection_hooks: list[ProjectionHook] = []


def register_projection_hook(hook: ProjectionHook) -> None:
    """Apps to the right (surveillance) update their projections from reported
    events in the same transaction as the records, through this hook."""
    if hook not in _projection_hooks:
        _projection_hooks.append(hook)


def ingest_events(
    agent: Agent, items: Sequence[Any], *, log_name: str = DEFAULT_LOG
) -> list[ItemResult]:
    """Check, deduplicate and append a batch of signed bot events, all or nothing.

    Raises BatchRejected (400) or EventIdConflict (409); nothing is stored then."""
    checked = check_items(agent, items)
    # First without looking for stored event_ids: almost every batch is new, and
    # the unique index on (log, agent_id, event_id) refuses a resend anyway. On
    # that refusal (a resend, or a concurrent request that stored one of these
    # event_ids first) the batch is rolled back and retried with the lookup.
    for attempt in range(3):
        try:
            return _append_batch(agent, checked, log_name, lookup=attempt > 0)
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _append_batch(
    agent: Agent, checked: Sequence[CheckedItem], log_name: str, *, lookup: bool
) -> list[ItemResult]:
    with transaction.atomic():
        fresh, results = split_duplicates(agent, checked, log_name=log_name, lookup=lookup)
        records = append([c.pending(agent.agent_id) for c in fresh], log_name=log_name)
        created = list(zip(fresh, records, strict=True))
        for hook in _projection_hooks:
            hook(agent, created)
    by_event: dict[str, ItemResult] = {}
    for item, record in created:
        result = ItemResult(item.event_id, record.seq, bytes(record.leaf_hash).hex(), "created")
        results[item.index] = result
        by_event[item.event_id] = result
    ordered: list[ItemResult] = []
    for item in checked:
        found = results.get(item.index)
        if found is None:  # a repeat of an event_id earlier in the same batch
            first = by_event[item.event_id]
            found = ItemResult(first.event_id, first.seq, first.leaf_hash, "duplicate")
        ordered.append(found)
    return ordered
