"""C2SP signed notes carrying a C2SP tlog-checkpoint, signed with Ed25519.

A checkpoint is the log's signed statement "the tree of ``tree_size`` leaves
has this root, at this time". It is the only thing an auditor needs to keep
outside the operator's reach, so it uses the formats every transparency-log
tool already reads (https://c2sp.org/signed-note, https://c2sp.org/tlog-checkpoint)::

    <origin>\\n<tree_size>\\n<base64 root>\\ntimestamp <timestamp_us>\\n
    \\n
    — <key_name> <base64(key_hash[:4] || ed25519 signature)>\\n

``key_hash = SHA-256(key_name || "\\n" || 0x01 || raw public key)``; the
signature covers the body, i.e. the text up to and including the newline before
the blank line.

Parsing is deliberately strict (the lesson of immudb GHSA-672p, where lenient
parsing let a proof mean two things): one spelling per value (canonical padded
base64, decimal without sign or leading zeros), no control characters, no
trailing bytes, no duplicate signatures from the verifying key. Anything else
is a ``NoteError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "Cosignature",
    "NoteError",
    "checkpoint_body",
    "cosign_checkpoint",
    "cosignature_key_id",
    "cosigned_message",
    "format_checkpoint_body",
    "key_hash",
    "parse_checkpoint_body",
    "parse_cosignature_line",
    "parse_witness_vkey",
    "sign_checkpoint",
    "signature_lines",
    "verifier_key",
    "verify_checkpoint",
    "verify_cosignature_line",
    "witness_cosignatures",
    "witness_vkey",
]

SIGNATURE_PREFIX = "\u2014 "  # em dash, space
ED25519_ALGORITHM = 0x01  # the signed-note signature type byte for Ed25519
MAX_SIGNATURES = 16  # other parties (witnesses) may cosign; bound the work
MAX_NOTE_BYTES = 64 * 1024
HASH_SIZE = 32

_DECIMAL = re.compile(r"0|[1-9][0-9]{0,18}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


class NoteError(ValueError):
    """The note is malformed, not signed by the expected key, or forged."""


@dataclass(frozen=True)
class Checkpoint:
    """The tree state a checkpoint commits to."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp_us: int


def key_hash(key_name: str, public_key: bytes) -> bytes:
    """SHA-256(key_name || "\\n" || 0x01 || public_key), the signed-note key ID
    (only its first 4 bytes travel in the note)."""
    return hashlib.sha256(
        key_name.encode("utf-8") + b"\n" + bytes([ED25519_ALGORITHM]) + public_key
    ).digest()


def verifier_key(key_name: str, public_key: bytes) -> str:
    """The C2SP verifier key string ``name+hash+base64(0x01||key)`` for this log
    key, which other tooling (e.g. golang.org/x/mod/sumdb/note) accepts."""
    _check_key_name(key_name)
    return "{}+{}+{}".format(
        key_name,
        key_hash(key_name, public_key)[:4].hex(),
        base64.b64encode(bytes([ED25519_ALGORITHM]) + public_key).decode("ascii"),
    )


def _check_key_name(key_name: str) -> None:
    if not isinstance(key_name, str) or not key_name:
        raise NoteError("key name must be a non-empty string")
    if any(c.isspace() or c == "+" for c in key_name) or _CONTROL.search(key_name):
        raise NoteError(f"key name {key_name!r} contains whitespace, '+' or a control character")


def _check_origin(origin: str) -> None:
    if not isinstance(origin, str) or not origin:
        raise NoteError("origin must be a non-empty string")
    if "\n" in origin or _CONTROL.search(origin):
        raise NoteError("origin contains a newline or a control character")
    if origin != origin.strip():
        raise NoteError("origin has leading or trailing whitespace")


def _check_uint(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 63:
        raise NoteError(f"{name} must be an integer in [0, 2**63), got {value!r}")


def format_checkpoint_body(cp: Checkpoint) -> str:
    """The signed text of a checkpoint, ending with its final newline."""
    _check_origin(cp.origin)
    _check_uint("tree_size", cp.tree_size)
    _check_uint("timestamp_us", cp.timestamp_us)
    if not isinstance(cp.root_hash, bytes) or len(cp.root_hash) != HASH_SIZE:
        raise NoteError("root hash must be 32 bytes")
    root = base64.b64encode(cp.root_hash).decode("ascii")
    return f"{cp.origin}\n{cp.tree_size}\n{root}\ntimestamp {cp.timestamp_us}\n"


def sign_checkpoint(cp: Checkpoint, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """The full signed note for ``cp``."""
    _check_key_name(key_name)
    body = format_checkpoint_body(cp)
    public = private_key.public_key().public_bytes_raw()
    signature = private_key.sign(body.encode("utf-8"))
    blob = base64.b64encode(key_hash(key_name, public)[:4] + signature).decode("ascii")
    return f"{body}\n{SIGNATURE_PREFIX}{key_name} {blob}\n"


def _b64_strict(text: str, what: str) -> bytes:
    """Standard padded base64 with exactly one accepted spelling."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise NoteError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError(f"{what} is not canonical base64")
    return raw


def _parse_uint(text: str, what: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise NoteError(f"{what} {text!r} is not a canonical non-negative decimal")
    value = int(text)
    if value >= 1 << 63:
        raise NoteError(f"{what} is out of range")
    return value


def parse_checkpoint_body(body: str) -> Checkpoint:
    """Parse the (already authenticated) signed text of a checkpoint.

    Exactly four lines: origin, size, root, ``timestamp N``. C2SP allows
    extension lines after the root; our contract has exactly one, so any other
    is refused rather than silently ignored.
    """
    if not body.endswith("\n"):
        raise NoteError("checkpoint body must end with a newline")
    lines = body[:-1].split("\n")
    if len(lines) != 4:
        raise NoteError(f"checkpoint body must have 4 lines, found {len(lines)}")
    origin, size_line, root_line, ts_line = lines
    _check_origin(origin)
    tree_size = _parse_uint(size_line, "tree size")
    root = _b64_strict(root_line, "root hash")
    if len(root) != HASH_SIZE:
        raise NoteError(f"root hash must be 32 bytes, got {len(root)}")
    if not ts_line.startswith("timestamp "):
        raise NoteError("fourth line must be 'timestamp <microseconds>'")
    timestamp = _parse_uint(ts_line[len("timestamp ") :], "timestamp")
    return Checkpoint(origin, tree_size, root, timestamp)


def verify_checkpoint(
    note: str, key_name: str, public_key: bytes, *, origin: str | None = None
) -> Checkpoint:
    """Authenticate ``note`` with the log key and return the checkpoint.

    Signature lines from other key names (witness cosignatures) are parsed
    strictly but otherwise ignored; a line naming our key with a different key
    hash, a second signature from our key, or none at all is an error. Pass
    ``origin`` to also pin which log the checkpoint is about.
    """
    if not isinstance(note, str):
        raise NoteError("note must be text")
    _check_key_name(key_name)
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise NoteError("log public key must be 32 raw bytes")
    try:
        verifier = Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError as exc:
        raise NoteError(f"unusable log public key: {exc}") from exc
    try:
        encoded = note.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("note is not valid UTF-8 text") from exc
    if len(encoded) > MAX_NOTE_BYTES:
        raise NoteError("note is too large")
    if _CONTROL.search(note):
        raise NoteError("note contains a control character other than newline")
    split = note.find("\n\n")
    if split < 0:
        raise NoteError("note has no blank line between text and signatures")
    body = note[: split + 1]
    signatures = note[split + 2 :]
    if not signatures.endswith("\n"):
        raise NoteError("note must end with a newline after the last signature")
    sig_lines = signatures[:-1].split("\n")
    if len(sig_lines) > MAX_SIGNATURES:
        raise NoteError("too many signature lines")

    expected_hash = key_hash(key_name, public_key)[:4]
    ours: list[bytes] = []
    for line in sig_lines:
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError(f"malformed signature line {line!r}")
        name, sep, blob_text = line[len(SIGNATURE_PREFIX) :].partition(" ")
        if not sep:
            raise NoteError(f"malformed signature line {line!r}")
        _check_key_name(name)
        blob = _b64_strict(blob_text, "signature")
        if len(blob) < 5:
            raise NoteError("signature too short")
        if name != key_name:
            continue
        if blob[:4] != expected_hash:
            raise NoteError(f"signature for {key_name!r} has a key hash that is not the log key's")
        if len(blob) != 4 + 64:
            raise NoteError("Ed25519 signature must be 64 bytes")
        ours.append(blob[4:])
    if not ours:
        raise NoteError(f"note is not signed by key {key_name!r}")
    if len(ours) > 1:
        raise NoteError(f"note carries more than one signature by {key_name!r}")
    try:
        verifier.verify(ours[0], body.encode("utf-8"))
    except InvalidSignature as exc:
        raise NoteError("checkpoint signature does not verify with the log key") from exc
    checkpoint = parse_checkpoint_body(body)
    if origin is not None and checkpoint.origin != origin:
        raise NoteError(f"checkpoint origin {checkpoint.origin!r} is not {origin!r}")
    return checkpoint


# --------------------------------------------------------------------------
# Witness cosignatures (C2SP tlog-cosignature, Ed25519 "cosignature/v1")
#
# A cosignature is one more signed-note signature line on the checkpoint:
# ``— <witness name> base64(key_id[4] || timestamp u64 big-endian || sig[64])``
# with ``key_id = SHA-256(name || "\n" || 0x04 || public key)[:4]`` and the
# signature over ``"cosignature/v1\ntime <timestamp>\n" || checkpoint body``.
# The timestamp is POSIX seconds (not the checkpoint's microseconds).

COSIGNATURE_ALGORITHM = 0x04  # signed-note signature type byte of cosignature/v1
COSIGNATURE_HEADER = "cosignature/v1\n"
COSIGNATURE_BLOB_SIZE = 4 + 8 + 64


@dataclass(frozen=True)
class Cosignature:
    """One witness's cosignature on a checkpoint body."""

    name: str
    timestamp: int  # POSIX seconds
    signature: bytes  # 64 bytes

    def line(self, public_key: bytes) -> str:
        """The signed-note signature line, newline included."""
        blob = (
            cosignature_key_id(self.name, public_key)
            + self.timestamp.to_bytes(8, "big")
            + self.signature
        )
        return f"{SIGNATURE_PREFIX}{self.name} {base64.b64encode(blob).decode('ascii')}\n"


def cosignature_key_id(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 cosigner key."""
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_ALGORITHM]) + public_key
    ).digest()[:4]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """What a cosigner signs: header line, time line, then the checkpoint body."""
    _check_uint("cosignature timestamp", timestamp)
    return f"{COSIGNATURE_HEADER}time {timestamp}\n{body}".encode()


def witness_vkey(name: str, public_key: bytes) -> str:
    """The verifier key ``name+keyid hex+base64(0x04 || key)`` an auditor hands out."""
    _check_key_name(name)
    if not isinstance(public_key, bytes) or len(public_key) != 32:
        raise NoteError("a witness public key is 32 raw bytes")
    return "{}+{}+{}".format(
        name,
        cosignature_key_id(name, public_key).hex(),
        base64.b64encode(bytes([COSIGNATURE_ALGORITHM]) + public_key).decode("ascii"),
    )


def parse_witness_vkey(vkey: str) -> tuple[str, bytes]:
    """``name+keyid+base64(0x04||key)`` -> (name, raw public key); the key ID must match."""
    name, sep1, rest = vkey.partition("+")
    hex_id, sep2, b64 = rest.partition("+")
    if not (sep1 and sep2):
        raise NoteError("a witness key is '<name>+<key id hex>+<base64 key>'")
    _check_key_name(name)
    raw = _b64_strict(b64, "witness key")
    if len(raw) != 33 or raw[0] != COSIGNATURE_ALGORITHM:
        raise NoteError("witness key must be 0x04 followed by a 32-byte Ed25519 key")
    if cosignature_key_id(name, raw[1:]).hex() != hex_id:
        raise NoteError("witness key ID does not match its name and key")
    return name, raw[1:]


def checkpoint_body(note: str) -> str:
    """The signed text of a note (up to and including the newline before the blank line)."""
    split = note.find("\n\n")
    if split < 0:
        raise NoteError("note has no blank line between text and signatures")
    return note[: split + 1]


def signature_lines(note: str) -> list[str]:
    """The note's signature lines, without their newlines."""
    signatures = note[len(checkpoint_body(note)) + 1 :]
    if not signatures.endswith("\n"):
        raise NoteError("note must end with a newline after the last signature")
    return signatures[:-1].split("\n")


def cosign_checkpoint(
    body: str, name: str, private_key: Ed25519PrivateKey, timestamp: int
) -> tuple[Cosignature, str]:
    """Cosign a checkpoint body; returns the cosignature and its signature line."""
    _check_key_name(name)
    parse_checkpoint_body(body)
    cosig = Cosignature(name, timestamp, private_key.sign(cosigned_message(body, timestamp)))
    return cosig, cosig.line(private_key.public_key().public_bytes_raw())


def parse_cosignature_line(line: str) -> tuple[str, bytes]:
    """A signature line (with or without its newline) -> (key name, raw blob)."""
    line = line.removesuffix("\n")
    if not line.startswith(SIGNATURE_PREFIX):
        raise NoteError("a cosignature line starts with an em dash and a space")
    name, sep, blob_text = line[len(SIGNATURE_PREFIX) :].partition(" ")
    if not sep:
        raise NoteError("malformed cosignature line")
    _check_key_name(name)
    return name, _b64_strict(blob_text, "cosignature")


def verify_cosignature_line(body: str, line: str, name: str, public_key: bytes) -> Cosignature:
    """Check one cosignature line on ``body`` by the witness (name, public_key).

    A line for another name or key ID is not this witness's: NoteError. A
    line that claims this witness and does not verify is a forgery: NoteError.
    """
    line_name, blob = parse_cosignature_line(line)
    if line_name != name:
        raise NoteError(f"cosignature is by {line_name!r}, not {name!r}")
    if len(blob) != COSIGNATURE_BLOB_SIZE:
        raise NoteError("an Ed25519 cosignature is 76 bytes (key ID, timestamp, signature)")
    if blob[:4] != cosignature_key_id(name, public_key):
        raise NoteError(f"cosignature key ID is not that of witness {name!r}")
    timestamp = int.from_bytes(blob[4:12], "big")
    if timestamp >= 1 << 63:
        raise NoteError("cosignature timestamp out of range")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            blob[12:], cosigned_message(body, timestamp)
        )
    except (InvalidSignature, ValueError) as exc:
        raise NoteError(f"cosignature by {name!r} does not verify") from exc
    return Cosignature(name, timestamp, blob[12:])


def witness_cosignatures(note: str, witnesses: dict[str, bytes]) -> dict[str, Cosignature]:
    """The valid cosignatures in ``note`` by the given witnesses (name -> key).

    Lines from keys not given are ignored (C2SP: unknown keys MUST be
    ignored); a line that names a given witness with its key ID but does not
    verify makes the note malformed, so it raises NoteError. Each witness
    counts once.
    """
    body = checkpoint_body(note)
    found: dict[str, Cosignature] = {}
    for line in signature_lines(note):
        name, blob = parse_cosignature_line(line)
        key = witnesses.get(name)
        if key is None or blob[:4] != cosignature_key_id(name, key):
            continue
        cosig = verify_cosignature_line(body, line, name, key)
        if name in found:
            raise NoteError(f"note carries more than one cosignature by {name!r}")
        found[name] = cosig
    return found
