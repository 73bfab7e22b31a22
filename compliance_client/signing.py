"""Signing bot envelopes (CONTRACT section 5). No Django."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from .jcs import MAX_SAFE_INTEGER, canonicalize


class _Entropy:
    """os.urandom read 4 KiB at a time (one system call per 409 ids instead
    of one per id); refilled after a fork, so a child never repeats its
    parent's bytes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        self._pid = -1

    def take(self, size: int) -> bytes:
        with self._lock:
            if self._pid != os.getpid() or self._offset + size > len(self._buffer):
                self._buffer, self._offset, self._pid = os.urandom(4096), 0, os.getpid()
            start = self._offset
            self._offset += size
            return self._buffer[start : self._offset]


_entropy = _Entropy()


def uuid7() -> str:
    """A UUIDv7 (time-ordered), the recommended event_id."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(_entropy.take(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass
class Signer:
    """An agent's Ed25519 key. key_id must match what the server assigned
    (the first 16 hex digits of SHA-256 of the raw public key)."""

    agent_id: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        # Computed once: every signed item carries the key_id (6 us each otherwise).
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self._public_raw = raw
        self._key_id = hashlib.sha256(raw).hexdigest()[:16]

    @classmethod
    def generate(cls, agent_id: str) -> Signer:
        return cls(agent_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_key_file(cls, agent_id: str, path: str | os.PathLike[str]) -> Signer:
        """Load a key written by `save_private_key` (or `python -m
        compliance_client keygen`): PKCS#8 PEM, unencrypted."""
        with open(path, "rb") as fh:
            key = load_pem_private_key(fh.read(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path}: not an Ed25519 private key")
        return cls(agent_id, key)

    def save_private_key(self, path: str | os.PathLike[str]) -> None:
        """Write the key as PKCS#8 PEM, readable by its owner only (mode 0600).
        Refuses to overwrite an existing file: losing a registered key means
        rotating it on the server."""
        pem = self.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())

    @property
    def public_key_raw(self) -> bytes:
        return self._public_raw

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self._public_raw).decode()

    @property
    def key_id(self) -> str:
        return self._key_id

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
            "key_id": self._key_id,
            "signature": base64.b64encode(signature).decode(),
        }

    def item(self, event_type: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return self.sign(self.envelope(event_type, payload, **kwargs))

    def wire(self, event_type: str, payload: dict[str, Any], **kwargs: Any) -> WireItem:
        """The signed item as the JSON text that goes on the wire: the
        canonical envelope with key_id and signature appended, so the bytes
        signed are encoded once (the outbox stores this text)."""
        envelope = self.envelope(event_type, payload, **kwargs)
        # A flat payload of strings (fills, cancels) holds no float and no big
        # integer: skip canonicalize's walk for them (a fifth of the CPU).
        occurred = envelope["occurred_at_us"]
        checked = (
            type(occurred) is int
            and 0 <= occurred <= MAX_SAFE_INTEGER
            and all(type(v) is str for v in payload.values())
        )
        data = canonicalize(envelope, numbers_checked=checked)
        signature = base64.b64encode(self.private_key.sign(data)).decode()
        text = f'{data[:-1].decode()},"key_id":"{self._key_id}","signature":"{signature}"}}'
        return WireItem(envelope["event_id"], event_type, text)


class WireItem(NamedTuple):
    event_id: str
    event_type: str
    text: str
