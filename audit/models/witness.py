"""Witnesses (C2SP tlog-witness) and their cosignatures on checkpoints.

Re-exported by audit.models. A cosignature is a signed
statement by a party outside the firm that a checkpoint extends every one it
saw before; it authenticates itself (Ed25519 over the checkpoint body), so
it is stored as the exact signature line the witness produced."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import User

__all__ = ["Cosignature", "Witness"]


class Witness(models.Model):
    """A registered witness key: its C2SP key name and raw Ed25519 public key.
    Revoked witnesses stay listed (their old cosignatures still verify) but
    no longer count towards the quorum nor may add cosignatures."""

    name = models.CharField(max_length=200, unique=True)
    public_key = models.BinaryField(max_length=32)
    description = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"witness {self.name}"


class Cosignature(models.Model):
    """One witness's cosignature/v1 on one checkpoint (at most one each)."""

    checkpoint = models.ForeignKey(
        "audit.Checkpoint", on_delete=models.PROTECT, related_name="cosignatures"
    )
    witness = models.ForeignKey(Witness, on_delete=models.PROTECT, related_name="cosignatures")
    timestamp = models.BigIntegerField(help_text="the cosignature's own time, POSIX seconds")
    line = models.TextField(help_text="the signed-note signature line, newline included")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["checkpoint", "witness"], name="cosignature_unique_per_witness"
            )
        ]

    def __str__(self) -> str:
        return f"cosignature by {self.witness_id} on checkpoint {self.checkpoint_id}"
