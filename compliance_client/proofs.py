"""A bot proves its own events are in the log (RFC 9162 inclusion proof
against a checkpoint signed by the log key). Uses the offline verifier's
Merkle and signed-note code: the same checks an auditor runs."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import merkle
from .note import NoteError, verify_checkpoint

if TYPE_CHECKING:
    from .client import ComplianceClient


class ProofError(Exception):
    """The checkpoint or the inclusion proof does not verify."""


@dataclass(frozen=True)
class InclusionCheck:
    seq: int
    leaf_hash: str
    tree_size: int
    root_hash: str
    checkpoint_timestamp_us: int


def verify_event_inclusion(
    client: ComplianceClient, *, seq: int, leaf_hash: str, public_key: str | None = None
) -> InclusionCheck:
    key = client.log_public_key() if public_key is None else None
    key_name = str(key["key_name"]) if key else None
    raw_key_b64 = public_key if public_key is not None else str(key["public_key"]) if key else ""
    try:
        raw_key = base64.b64decode(raw_key_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ProofError(f"log public key is not base64: {exc}") from exc
    latest = client.latest_checkpoint()
    note = str(latest["note"])
    if key_name is None:
        # A pinned key: its name is the one the note's signature line carries.
        key_name = note.rsplit("\n\u2014 ", 1)[-1].split(" ", 1)[0]
    try:
        checkpoint = verify_checkpoint(note, key_name, raw_key)
    except NoteError as exc:
        raise ProofError(f"the latest checkpoint does not verify: {exc}") from exc
    if seq >= checkpoint.tree_size:
        raise ProofError(
            f"seq {seq} is not covered by the latest checkpoint yet (tree size "
            f"{checkpoint.tree_size}); try again after the next checkpoint"
        )
    proof = client.inclusion_proof(seq, checkpoint.tree_size)
    try:
        leaf = bytes.fromhex(leaf_hash)
        path = [bytes.fromhex(h) for h in proof["hashes"]]
    except (ValueError, TypeError) as exc:
        raise ProofError(f"malformed hash: {exc}") from exc
    if proof.get("leaf_hash") != leaf_hash:
        raise ProofError(
            f"the log holds leaf {proof.get('leaf_hash')} at seq {seq}, not the acknowledged "
            f"{leaf_hash}"
        )
    if not merkle.verify_inclusion(leaf, seq, checkpoint.tree_size, path, checkpoint.root_hash):
        raise ProofError(f"the inclusion proof for seq {seq} does not verify against the root")
    return InclusionCheck(
        seq=seq,
        leaf_hash=leaf_hash,
        tree_size=checkpoint.tree_size,
        root_hash=checkpoint.root_hash.hex(),
        checkpoint_timestamp_us=checkpoint.timestamp_us,
    )
