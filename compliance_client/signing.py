"""Signing bot envelopes (CONTRACT section 5). No Django."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .jcs import canonicalize


def uuid7() -> str:
    """A UUIDv7 (time-ordered), the recommended event_id."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


@dataclass
class Signer:
    """An agent's Ed25519 key. key_id must match what the server assigned
    (the first 16 hex digits of SHA-256 of the raw public key)."""

    agent_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, agent_id: str) -> Signer:
        return cls(agent_id, Ed25519PrivateKey.generate())

    @property
    def public_key_raw(self) -> bytes:
        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key_raw).decode()

    @property
    def key_id(self) -> str:
        return hashlib.sha256(self.public_key_raw).hexdigest()[:16]

    def envelope(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        event_id: str | None = None,
        occurred_at_us: int | None = None,
    ) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "event_id": event_id or uuid7(),
            "event_type": event_type,
            "occurred_at_us": occurred_at_us
            if occurred_at_us is not None
            else time.time_ns() // 1000,
            "payload": payload,
        }

    def sign(self, envelope: dict[str, Any]) -> dict[str, Any]:
        """The wire item: the envelope plus key_id and signature (not signed themselves)."""
        signature = self.private_key.sign(canonicalize(envelope))
        return {
            **envelope,
            "key_id": self.key_id,
            "signature": base64.b64encode(signature).decode(),
        }

    def item(self, event_type: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.sign(self.envelope(event_type, payload, **kwargs))
