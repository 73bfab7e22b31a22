"""The append-only log: its head, its records, stored Merkle nodes, checkpoints."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import models


class Log(models.Model):
    """The head of one append-only log. Every append locks this row, so seq
    assignment, the chain hash and the Merkle frontier advance one writer at a time."""

    name = models.SlugField(max_length=64, unique=True)
    size = models.BigIntegerField(default=0)
    chain_hash = models.BinaryField(max_length=32, default=bytes(32))
    # Compact range of the Merkle tree: roots of the perfect subtrees for the set
    # bits of `size`, largest first, hex.
    frontier = models.JSONField(default=list)
    last_recorded_at_us = models.BigIntegerField(default=0)
    # How many checkpoints were signed over this log: a deleted checkpoint row
    # (the newest included) leaves the stored ones short of this count.
    checkpoint_count = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} (size {self.size})"


# The largest seq (and tree size) a query may name: PostgreSQL's bigint. Inputs
# past it are refused as invalid (400) instead of failing in the database.
MAX_SEQ = 2**63 - 1


class Record(models.Model):
    """One record: exactly the six hashed keys of CONTRACT section 9, stored as
    their RFC 8785 canonical text in `body`, plus indexed copies of the fields
    the API filters on. Triggers refuse UPDATE and DELETE; the only permitted
    change is the retention purge (body cleared, purged set, nothing else)."""

    # No index of its own: UNIQUE(log, seq) leads with log_id (one index less
    # to maintain on every append).
    log = models.ForeignKey(Log, on_delete=models.PROTECT, related_name="records", db_index=False)
    seq = models.BigIntegerField()
    recorded_at_us = models.BigIntegerField()
    event_type = models.CharField(max_length=64)
    actor_type = models.CharField(max_length=8)
    actor_id = models.CharField(max_length=150)
    # NULL, not "", for server events: (log, agent_id, event_id) is unique only
    # where event_id is set, and NULLs never collide.
    agent_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    event_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    envelope_hash = models.BinaryField(max_length=32, null=True)
    body = models.TextField(null=True)  # noqa: DJ001 - NULL once purged, never ""
    leaf_hash = models.BinaryField(max_length=32)
    chain_hash = models.BinaryField(max_length=32)
    purged = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["log", "seq"], name="record_unique_log_seq"),
            models.UniqueConstraint(
                fields=["log", "agent_id", "event_id"],
                condition=models.Q(event_id__isnull=False),
                name="record_unique_agent_event_id",
            ),
        ]
        indexes = [
            models.Index(fields=["log", "event_type", "seq"], name="record_type_seq"),
            models.Index(fields=["log", "agent_id", "seq"], name="record_agent_seq"),
            models.Index(fields=["log", "recorded_at_us"], name="record_time"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type}"

    def as_dict(self) -> dict[str, Any]:
        """The record as the API and the evidence bundle show it."""
        if self.purged or self.body is None:
            return {
                "seq": self.seq,
                "event_type": self.event_type,
                "recorded_at_us": self.recorded_at_us,
                "purged": True,
                "leaf_hash": bytes(self.leaf_hash).hex(),
                "chain_hash": bytes(self.chain_hash).hex(),
            }
        out: dict[str, Any] = json.loads(self.body)
        out["leaf_hash"] = bytes(self.leaf_hash).hex()
        out["chain_hash"] = bytes(self.chain_hash).hex()
        return out


class MerkleNode(models.Model):
    """Hash of a perfect Merkle subtree, stored when it completes. Only levels
    that are multiples of 8 are kept (one node per 256 below it, C2SP
    tlog-tiles style); anything in between is computed from at most 256 stored
    hashes, so a proof costs O(log n) range reads at any log size."""

    log = models.ForeignKey(Log, on_delete=models.PROTECT, db_index=False)  # unique below
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["log", "level", "index"], name="merklenode_unique_position"
            )
        ]

    def __str__(self) -> str:
        return f"node L{self.level}#{self.index}"


class EventType(models.Model):
    """A registered custom event type with its JSON Schema, versioned. The core
    types live in code (audit.event_types); this table holds the firm's own."""

    name = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    schema = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="eventtype_unique_version")
        ]

    def __str__(self) -> str:
        return f"{self.name} v{self.version}"


class Checkpoint(models.Model):
    """A signed statement of the tree at a size (C2SP tlog-checkpoint note)."""

    log = models.ForeignKey(Log, on_delete=models.PROTECT, related_name="checkpoints")
    tree_size = models.BigIntegerField()
    root_hash = models.BinaryField(max_length=32)
    timestamp_us = models.BigIntegerField()
    note = models.TextField()
    # The checkpoint before this one (-1 and empty for the first): checkpoints form
    # their own chain, so a deleted one is found between its neighbours. Null on
    # checkpoints signed before the chain existed.
    prev_tree_size = models.BigIntegerField(null=True)
    prev_root_hash = models.BinaryField(max_length=32, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["log", "timestamp_us"], name="checkpoint_unique_timestamp"
            )
        ]
        indexes = [models.Index(fields=["log", "tree_size"], name="checkpoint_size")]

    def __str__(self) -> str:
        return f"checkpoint {self.tree_size} @ {self.timestamp_us}"


class LogExport(models.Model):
    """An evidence bundle requested by a person, produced by a Celery task."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    class Format(models.TextChoices):
        BUNDLE = "bundle", "Evidence bundle"
        VCP = "vcp", "VCP v1.1-compatible archive"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, related_name="+"
    )
    format = models.CharField(max_length=8, choices=Format.choices, default=Format.BUNDLE)
    from_seq = models.BigIntegerField(null=True, blank=True)
    to_seq = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    file_name = models.CharField(max_length=255, blank=True, default="")
    sha256 = models.CharField(max_length=64, blank=True, default="")
    size_bytes = models.BigIntegerField(null=True)
    records = models.BigIntegerField(null=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"export {self.id} ({self.status})"


class LogVerification(models.Model):
    """A verification of the whole log asked for through the API, run by a
    worker (a large log takes longer than any request may); the outcome is also
    recorded in the log as AUDIT_VERIFIED (`seq`)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, null=True, related_name="+"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    ok = models.BooleanField(null=True)
    checked = models.BigIntegerField(null=True)
    first_bad_seq = models.BigIntegerField(null=True)
    detail = models.TextField(blank=True, default="")
    seq = models.BigIntegerField(null=True, help_text="the AUDIT_VERIFIED record")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"verification {self.id} ({self.status})"
