"""Evidence bundle: the audit log exported as one self-verifying zip.

An auditor who holds the bundle (and, ideally, a checkpoint obtained earlier
through another channel) can check everything offline with
``python -m compliance_client.verify bundle.zip``: no Django, no database, no
network. This module is the single definition of the format; the server
writes it with ``BundleWriter`` and the verifier reads it with the parsers
below, so the two cannot drift.

Members (all UTF-8):

``records.jsonl``
    One JSON object per line, in seq order, seq 0 first, contiguous. Each line
    is the RFC 8785 (JCS) canonical form of the object, so the file has exactly
    one spelling (no duplicate keys, no whitespace choices). Three kinds:

    * full record: exactly ``seq, recorded_at_us, event_type, actor, source,
      data, leaf_hash, chain_hash``.
      ``leaf_hash = hex SHA-256(0x00 || JCS({seq, recorded_at_us, event_type,
      actor, source, data}))``;
    * purged record (retention cleared its payload): exactly ``seq,
      event_type, recorded_at_us, purged: true, leaf_hash, chain_hash``; its
      leaf hash is kept, so it can no longer be recomputed but still chains
      and still sits in the Merkle tree;
    * omitted stub (a partial export that starts at ``from_seq``): exactly
      ``seq, leaf_hash, chain_hash, omitted: true``; only as a prefix, before
      the first exported record.

    ``chain_hash = hex SHA-256(previous chain_hash || leaf_hash)`` (raw bytes),
    with 32 zero bytes before seq 0. The Merkle tree (RFC 9162) is over the
    leaf hashes in seq order.

``checkpoints.json``
    JSON list of checkpoint notes (C2SP signed notes, see
    ``compliance_client.note``), tree_size non-decreasing, timestamp strictly
    increasing, every tree_size <= the number of lines of records.jsonl, at
    least one. Records after the last checkpoint are covered by the chain only.

``consistency.json``
    JSON list, one entry per consecutive pair of checkpoints:
    ``{"first": size_i, "second": size_i+1, "hashes": [hex, ...]}``, the RFC 9162
    consistency proof between them.

``keys.json``
    ``{"log": {"key_name", "algorithm": "ed25519", "public_key": base64},
    "agents": [{"agent_id", "key_id", "public_key": base64, "created_at_us",
    "revoked_at_us": int | null}, ...]}``: the log's checkpoint key and every
    bot key with its validity window. A record with a non-null ``source`` must
    verify with the key ``source.key_id`` of agent ``actor.id`` and lie in
    ``[created_at_us, revoked_at_us)``.

``README.txt``
    ``README_TEXT``: this description for a human.

``MANIFEST.sha256``
    ``sha256sum``-format lines ``<hex>  <name>`` for every other member, so
    ``sha256sum -c MANIFEST.sha256`` works on the unzipped folder.

No other member is allowed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from compliance_client.jcs import canonicalize
from compliance_client.merkle import chain_next, hash_leaf

__all__ = [
    "CHECKPOINTS",
    "CONSISTENCY",
    "FULL_KEYS",
    "HASHED_KEYS",
    "KEYS",
    "MANIFEST",
    "MEMBERS",
    "OMITTED_KEYS",
    "PURGED_KEYS",
    "README",
    "README_TEXT",
    "RECORDS",
    "ZERO_HASH",
    "AgentKey",
    "BundleError",
    "BundleWriter",
    "ConsistencyEntry",
    "LogKey",
    "chain_next",
    "consistency_entry",
    "format_manifest",
    "parse_consistency",
    "parse_keys",
    "parse_manifest",
    "record_leaf_hash",
]

RECORDS = "records.jsonl"
CHECKPOINTS = "checkpoints.json"
CONSISTENCY = "consistency.json"
KEYS = "keys.json"
README = "README.txt"
MANIFEST = "MANIFEST.sha256"
#: Every member, in the order the writer stores them.
MEMBERS = (RECORDS, CHECKPOINTS, CONSISTENCY, KEYS, README, MANIFEST)

HASHED_KEYS = frozenset({"seq", "recorded_at_us", "event_type", "actor", "source", "data"})
FULL_KEYS = HASHED_KEYS | {"leaf_hash", "chain_hash"}
PURGED_KEYS = frozenset(
    {"seq", "event_type", "recorded_at_us", "purged", "leaf_hash", "chain_hash"}
)
OMITTED_KEYS = frozenset({"seq", "leaf_hash", "chain_hash", "omitted"})
ZERO_HASH = bytes(32)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  ([A-Za-z0-9._-]+)")

README_TEXT = """\
EVIDENCE BUNDLE - compliance back-office audit log
====================================================

This zip is a self-contained, offline-verifiable copy of the audit log.

Verify it (needs Python 3.11+ with the `cryptography` and `rfc8785` packages,
and the `compliance_client` package; no database, no network):

    python -m compliance_client.verify bundle.zip
    python -m compliance_client.verify bundle.zip --trusted-checkpoint cp.txt \\
        --log-public-key <base64 key you obtained independently>

Exit status 0 means every check passed; 1 names the first failure.

If independent witnesses cosign the log's checkpoints (C2SP
tlog-cosignature), their signature lines follow the log's in each note of
checkpoints.json. Check them with the witness keys you obtained from the
witnesses themselves:

    python -m compliance_client.verify bundle.zip \\
        --witness-key <name+keyid+base64> --min-witnesses 1

Pass --trusted-checkpoint with a checkpoint you saved earlier (from the API,
a webhook, or a previous bundle): the verifier then proves that this bundle
extends that checkpoint, i.e. nothing you have seen before was rewritten,
removed or rolled back. Pin the log key with --log-public-key so a bundle
carrying a substitute key cannot pass.

Files
-----
records.jsonl     One record per line in seq order from seq 0, each in RFC 8785
                  canonical JSON. Full record keys: seq, recorded_at_us,
                  event_type, actor, source, data, leaf_hash, chain_hash.
                    leaf_hash  = SHA-256(0x00 || JCS(the six keys seq,
                                 recorded_at_us, event_type, actor, source, data))
                    chain_hash = SHA-256(previous chain_hash || leaf_hash),
                                 32 zero bytes before seq 0 (raw bytes; hex here)
                  Purged records (payload removed by retention) keep seq,
                  event_type, recorded_at_us, leaf_hash, chain_hash and carry
                  "purged": true. Records before an export's start are stubs
                  with seq, leaf_hash, chain_hash and "omitted": true.
checkpoints.json  Signed checkpoints of the log (C2SP tlog-checkpoint in a C2SP
                  signed note, Ed25519): each commits to the RFC 9162 Merkle
                  root of the first tree_size leaf hashes.
consistency.json  RFC 9162 consistency proofs between consecutive checkpoints.
keys.json         The log's checkpoint public key and every bot public key with
                  the time window in which it was valid. A record with a
                  "source" carries the bot's signed envelope: base64 Ed25519
                  signature over JCS(source.envelope) with key source.key_id of
                  agent actor.id.
MANIFEST.sha256   SHA-256 of every other file (`sha256sum -c MANIFEST.sha256`).

What the verifier checks
------------------------
every leaf hash recomputed from its record; every chain link; seqs contiguous
from 0; every checkpoint signature; every checkpoint root recomputed from the
leaves; every consistency proof; checkpoint timestamps strictly increasing;
every bot signature, key ownership and key validity window; the manifest.
"""


class BundleError(ValueError):
    """The bundle (or what a writer was asked to put in it) breaks the format."""


@dataclass(frozen=True)
class LogKey:
    """The log's checkpoint-signing key."""

    key_name: str
    public_key: bytes


@dataclass(frozen=True)
class AgentKey:
    """A bot key and the half-open window [created_at_us, revoked_at_us) it signs in."""

    agent_id: str
    key_id: str
    public_key: bytes
    created_at_us: int
    revoked_at_us: int | None


@dataclass(frozen=True)
class ConsistencyEntry:
    first: int
    second: int
    hashes: tuple[bytes, ...]


def record_leaf_hash(record: Mapping[str, Any]) -> bytes:
    """Leaf hash of a full record (extra keys such as leaf_hash are ignored)."""
    return hash_leaf(canonicalize({k: record[k] for k in HASHED_KEYS}))


def consistency_entry(first: int, second: int, hashes: Sequence[bytes]) -> dict[str, Any]:
    """One consistency.json entry from a merkle.consistency_proof result."""
    return {"first": first, "second": second, "hashes": [h.hex() for h in hashes]}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64_key(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise BundleError(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise BundleError(f"{what} is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != text or len(raw) != 32:
        raise BundleError(f"{what} must be canonical base64 of 32 raw bytes")
    return raw


def parse_keys(doc: Any) -> tuple[LogKey, dict[tuple[str, str], AgentKey]]:
    """Validate keys.json; return the log key and agent keys by (agent_id, key_id)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("log"), dict):
        raise BundleError(f"{KEYS}: expected an object with a 'log' object")
    log = doc["log"]
    if log.get("algorithm") != "ed25519":
        raise BundleError(f"{KEYS}: log key algorithm must be 'ed25519'")
    if not isinstance(log.get("key_name"), str) or not log["key_name"]:
        raise BundleError(f"{KEYS}: log key_name must be a non-empty string")
    log_key = LogKey(log["key_name"], _b64_key(log.get("public_key"), f"{KEYS}: log public_key"))
    agents = doc.get("agents")
    if not isinstance(agents, list):
        raise BundleError(f"{KEYS}: 'agents' must be a list")
    out: dict[tuple[str, str], AgentKey] = {}
    for i, entry in enumerate(agents):
        where = f"{KEYS}: agents[{i}]"
        if not isinstance(entry, dict):
            raise BundleError(f"{where} must be an object")
        agent_id, key_id = entry.get("agent_id"), entry.get("key_id")
        if not isinstance(agent_id, str) or not isinstance(key_id, str):
            raise BundleError(f"{where}: agent_id and key_id must be strings")
        created: Any = entry.get("created_at_us")
        revoked: Any = entry.get("revoked_at_us", ...)
        if not _is_int(created) or revoked is ... or not (revoked is None or _is_int(revoked)):
            raise BundleError(
                f"{where}: created_at_us must be an int and revoked_at_us an int or null"
            )
        if (agent_id, key_id) in out:
            raise BundleError(f"{where}: duplicate key {key_id!r} for agent {agent_id!r}")
        out[(agent_id, key_id)] = AgentKey(
            agent_id,
            key_id,
            _b64_key(entry.get("public_key"), f"{where} public_key"),
            created,
            revoked,
        )
    return log_key, out


def parse_consistency(doc: Any) -> list[ConsistencyEntry]:
    """Validate consistency.json."""
    if not isinstance(doc, list):
        raise BundleError(f"{CONSISTENCY}: expected a list")
    out = []
    for i, entry in enumerate(doc):
        where = f"{CONSISTENCY}: entry {i}"
        if not isinstance(entry, dict) or set(entry) != {"first", "second", "hashes"}:
            raise BundleError(f"{where} must have exactly first, second, hashes")
        first, second, hashes = entry["first"], entry["second"], entry["hashes"]
        if not (_is_int(first) and _is_int(second)) or not isinstance(hashes, list):
            raise BundleError(f"{where}: first/second must be ints and hashes a list")
        if not all(isinstance(h, str) and _HEX64.fullmatch(h) for h in hashes):
            raise BundleError(f"{where}: hashes must be 64 lowercase hex characters")
        out.append(ConsistencyEntry(first, second, tuple(bytes.fromhex(h) for h in hashes)))
    return out


def parse_checkpoint_list(doc: Any) -> list[str]:
    """Validate the shape of checkpoints.json (signatures are the verifier's job)."""
    if not isinstance(doc, list) or not all(isinstance(n, str) for n in doc):
        raise BundleError(f"{CHECKPOINTS}: expected a list of note strings")
    return doc


def format_manifest(digests: Mapping[str, str]) -> str:
    return "".join(f"{digest}  {name}\n" for name, digest in digests.items())


def parse_manifest(text: str) -> dict[str, str]:
    """MANIFEST.sha256 -> {name: hex}; strict: one line per member, no extras."""
    if not text.endswith("\n"):
        raise BundleError(f"{MANIFEST}: must end with a newline")
    out: dict[str, str] = {}
    for n, line in enumerate(text[:-1].split("\n"), start=1):
        match = _MANIFEST_LINE.fullmatch(line)
        if not match:
            raise BundleError(f"{MANIFEST}: line {n} is not '<sha256 hex>  <name>'")
        digest, name = match.groups()
        if name in out:
            raise BundleError(f"{MANIFEST}: {name} listed twice")
        out[name] = digest
    return out


def _json_member(value: Any) -> bytes:
    return (json.dumps(value, ensure_ascii=False, indent=1, allow_nan=False) + "\n").encode()


class BundleWriter:
    """Streams a bundle into ``fileobj`` (seekable or not) with flat memory.

    Records go straight into the compressed ``records.jsonl`` member as they
    are added (the whole log never sits in memory); the small members are
    kept until ``close()``, which writes them and the manifest. Records must
    be added in seq order from 0; ``add_record_line`` checks that, and the
    record's shape, so an export bug fails at export time rather than in the
    auditor's hands. Use as a context manager or call ``close()``.

    Deflate level 1 by default: a few percent larger than level 6 on JSON and
    several times faster, which matters for million-record exports.
    """

    def __init__(self, fileobj: IO[bytes], *, compresslevel: int = 1) -> None:
        self._zip = zipfile.ZipFile(
            fileobj, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel
        )
        self._records: IO[bytes] | None = self._zip.open(RECORDS, "w", force_zip64=True)
        self._records_sha = hashlib.sha256()
        self._next_seq = 0
        self._seen_exported = False
        self._members: dict[str, bytes] = {}
        self._closed = False

    @property
    def record_count(self) -> int:
        return self._next_seq

    def add_record_line(self, record: Mapping[str, Any]) -> None:
        """Append one record (full, purged or omitted stub) as a canonical line."""
        self._check_record(record)
        self._write_line(canonicalize(dict(record)))

    def add_record_json(self, line: bytes) -> None:
        """Append one record already serialized as JCS bytes (no newline).

        For a server that keeps each record's canonical text: skips one
        canonicalization per record. The seq/shape checks still run.
        """
        if b"\n" in line:
            raise BundleError("a record line must not contain a newline")
        self._check_record(json.loads(line))
        self._write_line(line)

    def _check_record(self, record: Mapping[str, Any]) -> None:
        if self._closed:
            raise BundleError("bundle already closed")
        keys = set(record)
        if keys == FULL_KEYS or (keys == PURGED_KEYS and record["purged"] is True):
            self._seen_exported = True
        elif keys == OMITTED_KEYS and record["omitted"] is True:
            if self._seen_exported:
                raise BundleError(f"omitted stub at seq {record['seq']} after exported records")
        else:
            raise BundleError(f"record {record.get('seq')!r} has keys {sorted(keys)}")
        if record["seq"] != self._next_seq:
            raise BundleError(f"expected seq {self._next_seq}, got {record['seq']!r}")
        for name in ("leaf_hash", "chain_hash"):
            if not isinstance(record[name], str) or not _HEX64.fullmatch(record[name]):
                raise BundleError(f"seq {self._next_seq}: {name} must be 64 lowercase hex")

    def _write_line(self, line: bytes) -> None:
        assert self._records is not None
        data = line + b"\n"
        self._records.write(data)
        self._records_sha.update(data)
        self._next_seq += 1

    def add_records(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self.add_record_line(record)

    def set_checkpoints(self, notes: Sequence[str]) -> None:
        """The checkpoint notes, oldest first."""
        self._members[CHECKPOINTS] = _json_member(parse_checkpoint_list(list(notes)))

    def set_consistency(self, proofs: Sequence[Mapping[str, Any]]) -> None:
        """Entries as made by ``consistency_entry``, one per consecutive pair."""
        doc = [dict(p) for p in proofs]
        parse_consistency(doc)
        self._members[CONSISTENCY] = _json_member(doc)

    def set_keys(self, keys: Mapping[str, Any]) -> None:
        doc = dict(keys)
        parse_keys(doc)
        self._members[KEYS] = _json_member(doc)

    def close(self) -> None:
        """Write the small members, README and MANIFEST; close the zip.

        The caller's file object is left open (zipfile never closes it).
        """
        if self._closed:
            return
        missing = {CHECKPOINTS, CONSISTENCY, KEYS} - set(self._members)
        if missing:
            raise BundleError(f"bundle incomplete, not set: {sorted(missing)}")
        assert self._records is not None
        self._records.close()
        self._records = None
        digests = {RECORDS: self._records_sha.hexdigest()}
        self._members[README] = README_TEXT.encode()
        for name in (CHECKPOINTS, CONSISTENCY, KEYS, README):
            data = self._members[name]
            self._zip.writestr(name, data)
            digests[name] = hashlib.sha256(data).hexdigest()
        self._zip.writestr(MANIFEST, format_manifest(digests).encode())
        self._zip.close()
        self._closed = True

    def __enter__(self) -> BundleWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            if self._records is not None:
                self._records.close()
            self._zip.close()
