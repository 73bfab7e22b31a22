"""Signing bot envelopes (CONTRACT section 5). No Django."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from base64 import b64encode
from collections.abc import Sequence
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

from .jcs import MAX_SAFE_INTEGER, canonicalize, encode_sorted, encode_string


class _Entropy:
    """os.urandom read 2 KiB at a time as hex digits (one system call per 215
    ids instead of one per id); refilled after a fork, so a child never
    repeats its parent's digits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._digits = ""
        self._offset = 0
        self._pid = -1

    def hex(self, count: int) -> str:
        """`count` random hex digits (4 random bits each)."""
        with self._lock:
            start = self._offset
            if self._pid != os.getpid() or start + count > len(self._digits):
                self._digits, start, self._pid = os.urandom(2048).hex(), 0, os.getpid()
            self._offset = start + count
            return self._digits[start : start + count]


_entropy = _Entropy()
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def uuid7() -> str:
    """A UUIDv7 (RFC 9562: time-ordered), the recommended event_id: 48 bits
    of Unix milliseconds, version 7, 12 random bits, variant 10, 62 random bits."""
    ms = f"{(time.time_ns() // 1_000_000) & 0xFFFF_FFFF_FFFF:012x}"
    r = _entropy.hex(19)
    return f"{ms[:8]}-{ms[8:]}-7{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:]}"


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
        self._sign = self.private_key.sign
        # The canonical envelope's first member, the same for every event.
        self._head = '{"agent_id":' + canonicalize(self.agent_id).decode() + ',"event_id":'
        self._tail = ',"key_id":"' + self._key_id + '","signature":"'

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

    def wire(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        event_id: str | None = None,
        occurred_at_us: int | None = None,
    ) -> WireItem:
        """The signed item as the JSON text that goes on the wire: the
        canonical envelope with key_id and signature appended, so the bytes
        signed are encoded once (the outbox stores this text)."""
        return self.seal(
            [self.prepare(event_type, payload, event_id=event_id, occurred_at_us=occurred_at_us)]
        )[0]

    def prepare(
        self,
        event_type: str,
        payload: dict[str, Any],
        *,
        event_id: str | None = None,
        occurred_at_us: int | None = None,
    ) -> Prepared:
        """The envelope as canonical JSON text, not yet signed (`seal` signs).
        Raises CanonicalizationError for what JSON cannot carry (a NaN, say)."""
        fresh = not event_id  # None or "": one is made here, as envelope() does
        if not event_id:
            event_id = uuid7()
        if occurred_at_us is None:
            occurred_at_us = time.time_ns() // 1000
        text = self._flat_envelope(event_type, payload, event_id, occurred_at_us)
        if text is None:
            envelope = self.envelope(
                event_type, payload, event_id=event_id, occurred_at_us=occurred_at_us
            )
            text = canonicalize(envelope).decode()
        return Prepared(event_id, event_type, text, fresh)

    def seal(self, prepared: Sequence[Prepared]) -> list[WireItem]:
        """Sign prepared envelopes, one after the other: OpenSSL's tables stay
        in the CPU's cache (a tenth less time per signature than signing each
        between other work)."""
        sign, tail = self._sign, self._tail
        signatures = [b64encode(sign(p.text.encode())).decode() for p in prepared]
        return [
            WireItem(p.event_id, p.event_type, f'{p.text[:-1]}{tail}{sig}"}}', p.fresh)
            for p, sig in zip(prepared, signatures, strict=True)
        ]

    def _flat_envelope(
        self, event_type: Any, payload: Any, event_id: Any, occurred_at_us: Any
    ) -> str | None:
        """JCS(envelope) built from its parts when that is certainly the same
        text: the keys are in canonical order already, the payload is flat
        strings (fills, cancels: no float, no big integer to look for), and
        ASCII (no character where JCS's UTF-16 key order could differ). None
        otherwise, and canonicalize() decides."""
        if not (
            type(event_id) is str
            and type(event_type) is str
            and type(occurred_at_us) is int
            and 0 <= occurred_at_us <= MAX_SAFE_INTEGER
            and type(payload) is dict
            and all(type(k) is str and type(v) is str for k, v in payload.items())
        ):
            return None
        text = (
            f"{self._head}{encode_string(event_id)},"
            f'"event_type":{encode_string(event_type)},'
            f'"occurred_at_us":{occurred_at_us},'
            f'"payload":{encode_sorted(payload)}}}'
        )
        return text if text.isascii() else None


class Prepared(NamedTuple):
    """An envelope as canonical JSON, to be signed by Signer.seal."""

    event_id: str
    event_type: str
    text: str
    fresh: bool  # the event_id was made here (a UUIDv7): no earlier event has it


class WireItem(NamedTuple):
    event_id: str
    event_type: str
    text: str
    fresh: bool = False  # as in Prepared: the outbox need not look for the id
