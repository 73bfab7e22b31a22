"""Fixtures for the Django-free client tests.

Run with ``-p no:django --confcutdir=tests/client`` (the repository's root
conftest imports Django). ``FakeLog`` plays the server: it appends records
exactly as CONTRACT.md section 9 defines them, signs bot envelopes (section 5)
and checkpoints, and writes bundles with the real ``BundleWriter``, so the
tests exercise the same path the server uses.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from compliance_client import merkle
from compliance_client.bundle import (
    MANIFEST,
    ZERO_HASH,
    BundleWriter,
    chain_next,
    consistency_entry,
    format_manifest,
    record_leaf_hash,
)
from compliance_client.jcs import canonicalize
from compliance_client.note import Checkpoint, sign_checkpoint

ORIGIN = "compliance.example/log/default"
KEY_NAME = "compliance.example/log"
T0 = 1_763_700_000_000_000


def deterministic_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(label.encode()).digest())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class AgentKeyInfo:
    agent_id: str
    key_id: str
    private: Ed25519PrivateKey
    created_at_us: int
    revoked_at_us: int | None = None


@dataclass
class FakeLog:
    """An in-memory log that produces records, checkpoints and bundles."""

    log_key: Ed25519PrivateKey = field(default_factory=lambda: deterministic_key("log"))
    key_name: str = KEY_NAME
    origin: str = ORIGIN
    now: int = T0
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    agent_keys: dict[tuple[str, str], AgentKeyInfo] = field(default_factory=dict)
    _chain: bytes = ZERO_HASH

    def tick(self) -> int:
        self.now += 1000
        return self.now

    # keys -------------------------------------------------------------
    def add_agent_key(self, agent_id: str, key_id: str | None = None) -> AgentKeyInfo:
        key_id = key_id or f"{agent_id}-k{len(self.agent_keys)}"
        info = AgentKeyInfo(
            agent_id, key_id, deterministic_key(f"{agent_id}/{key_id}"), self.tick()
        )
        self.agent_keys[(agent_id, key_id)] = info
        return info

    def revoke(self, agent_id: str, key_id: str) -> None:
        self.agent_keys[(agent_id, key_id)].revoked_at_us = self.tick()

    def keys_doc(self, log_public: bytes | None = None) -> dict[str, Any]:
        public = log_public or self.log_key.public_key().public_bytes_raw()
        return {
            "log": {"key_name": self.key_name, "algorithm": "ed25519", "public_key": b64(public)},
            "agents": [
                {
                    "agent_id": k.agent_id,
                    "key_id": k.key_id,
                    "public_key": b64(k.private.public_key().public_bytes_raw()),
                    "created_at_us": k.created_at_us,
                    "revoked_at_us": k.revoked_at_us,
                }
                for k in self.agent_keys.values()
            ],
        }

    # records ----------------------------------------------------------
    def _append(self, event_type: str, actor: dict[str, Any], source: Any, data: Any) -> dict:
        record = {
            "seq": len(self.records),
            "recorded_at_us": self.tick(),
            "event_type": event_type,
            "actor": actor,
            "source": source,
            "data": data,
        }
        leaf = record_leaf_hash(record)
        self._chain = chain_next(self._chain, leaf)
        record["leaf_hash"] = leaf.hex()
        record["chain_hash"] = self._chain.hex()
        self.records.append(record)
        return record

    def signed_envelope(
        self, key: AgentKeyInfo, event_type: str, payload: dict[str, Any]
    ) -> dict[str, Any]:
        envelope = {
            "agent_id": key.agent_id,
            "event_id": str(uuid.UUID(int=len(self.records) + 1, version=4)),
            "event_type": event_type,
            "occurred_at_us": self.now,
            "payload": payload,
        }
        signature = key.private.sign(canonicalize(envelope))
        return {"envelope": envelope, "key_id": key.key_id, "signature": b64(signature)}

    def bot_event(
        self,
        key: AgentKeyInfo,
        event_type: str = "ORDER_FILLED",
        payload: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        n = len(self.records)
        payload = payload or {
            "order_id": f"o-{n}",
            "fill_id": f"f-{n}",
            "quantity": str(n % 7 + 1),
            "price": f"{100 + n % 13}.5",
        }
        source = self.signed_envelope(key, event_type, payload)
        return self._append(
            event_type, {"type": "agent", "id": key.agent_id}, source, {"status": "filled"}
        )

    def server_event(self, event_type: str = "CONFIG_CHANGED", data: Any = None) -> dict:
        return self._append(
            event_type, {"type": "user", "id": "alice"}, None, data or {"version": 3}
        )

    def purge(self, seq: int) -> None:
        r = self.records[seq]
        self.records[seq] = {
            "seq": seq,
            "event_type": r["event_type"],
            "recorded_at_us": r["recorded_at_us"],
            "purged": True,
            "leaf_hash": r["leaf_hash"],
            "chain_hash": r["chain_hash"],
        }

    def checkpoint(self, size: int | None = None) -> str:
        size = len(self.records) if size is None else size
        root = merkle.root_from_leaf_hashes(self.leaves()[:size])
        note = sign_checkpoint(
            Checkpoint(self.origin, size, root, self.tick()), self.key_name, self.log_key
        )
        self.notes.append(note)
        return note

    # proofs and bundles ------------------------------------------------
    def leaves(self) -> list[bytes]:
        return [bytes.fromhex(r["leaf_hash"]) for r in self.records]

    def fetch(self) -> merkle.NodeFetcher:
        leaves = self.leaves()

        def fetch(nodes: list[merkle.Node]) -> dict[merkle.Node, bytes]:
            return {
                (lv, ix): merkle.root_from_leaf_hashes(leaves[ix << lv : (ix + 1) << lv])
                for lv, ix in nodes
            }

        return fetch

    def consistency(self, notes: list[str]) -> list[dict[str, Any]]:
        sizes = [int(n.split("\n")[1]) for n in notes]
        fetch = self.fetch()
        return [
            # a shrinking pair has no proof; tests use it to build bad bundles
            consistency_entry(a, b, merkle.consistency_proof(a, b, fetch) if a <= b else [])
            for a, b in itertools.pairwise(sizes)
        ]

    def write(
        self,
        path: Path,
        *,
        from_seq: int = 0,
        records: list[dict[str, Any]] | None = None,
        notes: list[str] | None = None,
        keys: dict[str, Any] | None = None,
    ) -> Path:
        records = self.records if records is None else records
        notes = self.notes if notes is None else notes
        with path.open("wb") as fh, BundleWriter(fh) as writer:
            for r in records:
                if r["seq"] < from_seq:
                    r = {k: r[k] for k in ("seq", "leaf_hash", "chain_hash")} | {"omitted": True}
                writer.add_record_line(r)
            writer.set_checkpoints(notes)
            writer.set_consistency(self.consistency(notes))
            writer.set_keys(keys or self.keys_doc())
        return path


def standard_log(n: int = 60, *, checkpoints: tuple[int, ...] = (10, 33, 60)) -> FakeLog:
    """A log with two bots (one key rotated), server events and checkpoints."""
    log = FakeLog()
    k1 = log.add_agent_key("bot-1")
    k2 = log.add_agent_key("bot-2")
    for i in range(n):
        if i == n // 2:
            log.revoke("bot-1", k1.key_id)
            k1 = log.add_agent_key("bot-1")
        if i % 5 == 4:
            log.server_event(data={"version": i, "reason": "tuning"})
        else:
            log.bot_event(k1 if i % 2 else k2)
        if i + 1 in checkpoints:
            log.checkpoint()
    return log


def rewrite_members(
    path: Path,
    out: Path,
    changes: dict[str, Callable[[bytes], bytes]],
    *,
    fix_manifest: bool = True,
) -> Path:
    """Copy a bundle, transforming members; recompute the manifest like an
    attacker would (so the test reaches the deeper check) unless told not to."""
    with zipfile.ZipFile(path) as zin:
        members = {info.filename: zin.read(info.filename) for info in zin.infolist()}
    for name, fn in changes.items():
        members[name] = fn(members[name])
    if fix_manifest and MANIFEST not in changes:
        digests = {
            name: hashlib.sha256(data).hexdigest()
            for name, data in members.items()
            if name != MANIFEST
        }
        members[MANIFEST] = format_manifest(digests).encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zout:  # stored: fast, still valid
        for name, data in members.items():
            zout.writestr(name, data)
    out.write_bytes(buf.getvalue())
    return out


def map_records(fn: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]):
    """A records.jsonl transform operating on parsed records, re-serialized canonically."""

    def transform(data: bytes) -> bytes:
        records = [json.loads(line) for line in data.splitlines()]
        return b"".join(canonicalize(r) + b"\n" for r in fn(records))

    return transform


def rehash(records: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    """Recompute leaf and chain hashes from ``start`` on, as a forger would."""
    chain = bytes.fromhex(records[start - 1]["chain_hash"]) if start else ZERO_HASH
    for r in records[start:]:
        if not r.get("purged") and not r.get("omitted"):
            r["leaf_hash"] = record_leaf_hash(r).hex()
        chain = chain_next(chain, bytes.fromhex(r["leaf_hash"]))
        r["chain_hash"] = chain.hex()
    return records


@pytest.fixture
def fake_log() -> FakeLog:
    return standard_log()


@pytest.fixture
def register_bot(request: pytest.FixtureRequest) -> Callable[[str], tuple[Any, str]]:
    """For the SDK tests against a live server (these need Django, imported
    only when asked): register an agent owned by bob, registered by rita;
    returns its Signer and API key."""

    def register(agent_id: str) -> tuple[Any, str]:
        from audit.services.agents import agent_register
        from compliance_client.signing import Signer

        people = request.getfixturevalue("people")
        signer = Signer.generate(agent_id)
        _, _, api_key = agent_register(
            agent_id=agent_id,
            name=f"SDK {agent_id}",
            public_key=signer.public_key_b64,
            owner=people["bob"],
            acting_user=people["rita"],
        )
        return signer, api_key

    return register
