"""A VCP v1.1-compatible archive of the log (VeritasChain Protocol), so audit
trail tools that read VCP can take our records and checkpoints.

The archive (zip) holds:

``vcp_export.json``
    ``vcp_version``, ``log_id`` (our origin), ``period`` (times and seq range),
    ``tree_heads`` (every signed checkpoint covering the exported range: size,
    root, time, the signed note with its witness cosignatures), ``prefix``
    (the Merkle compact range of the records before the range, so every tree
    head can be recomputed from the archive alone), the log's public key, and
    ``hashing`` (how to recompute everything).
``events.jsonl``
    one VCP event per line: ``header`` (event id, VCP event type, timestamps,
    version), ``payload`` (our record verbatim, and its type) and ``security``
    (``event_hash`` = our leaf hash, ``prev_hash`` = the chain hash before it,
    ``merkle_index`` = seq, and the bot's signature where the record has one).
``HASHING.md``
    where our hashing differs from VCP's sample code.
``MANIFEST.sha256``
    SHA-256 of every other member.

Nothing here is a second source of truth: every hash is the log's own, so
the archive verifies against the same checkpoints as the evidence bundle.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from django.conf import settings

from compliance_client import merkle
from compliance_client.bundle import format_manifest
from compliance_client.jcs import canonicalize

from .. import log_key
from ..models import Checkpoint, Log, Record
from .export import CHUNK, ExportError, ExportInfo, export_size
from .log import DEFAULT_LOG
from .tree import fetcher
from .witnesses import note_with_cosignatures

VCP_VERSION = "1.1"
FORMAT = "compliance-backoffice/vcp-export/1"
EXPORT = "vcp_export.json"
EVENTS = "events.jsonl"
HASHING = "HASHING.md"
MANIFEST = "MANIFEST.sha256"

# Our event types onto VCP's event type codes; the original stays in the payload.
VCP_EVENT_TYPES = {
    "ORDER_SUBMITTED": "ORD",
    "ORDER_AMENDED": "MOD",
    "ORDER_FILLED": "EXE",
    "ORDER_CANCELED": "CXL",
    "ORDER_REJECTED": "REJ",
    "VENUE_REJECTED": "REJ",
    "CANCEL_REQUESTED": "CXL",
    "POSITION_CHANGED": "CLS",
    "LIMIT_BREACH": "RSK",
    "KILL_SWITCH_ACTIVATED": "RSK",
    "KILL_SWITCH_DEACTIVATED": "RSK",
    "RISK_LIMITS_CHANGED": "RSK",
    "SYSTEM_ERROR": "ERR",
    "CONFIG_CHANGED": "ALG",
    "AUDIT_VERIFIED": "AUD",
    "REPORT_GENERATED": "AUD",
    "DATA_PURGED": "AUD",
}
DEFAULT_VCP_TYPE = "AUD"

HASHING_TEXT = """\
# How this archive's hashes differ from VCP's sample code

Every hash here is the compliance log's own, so the archive verifies against
the same signed checkpoints (C2SP tlog-checkpoint, Ed25519) as our evidence
bundles. VCP v1.1's integrity layer is the same idea (SHA-256, RFC 8785,
RFC 6962/9162 Merkle trees); the sample code in VCP's implementation guide
differs in four places:

1. Event hash. VCP's sample hashes SHA-256(JSON(header + payload)) with
   Python's json.dumps(sort_keys=True), which is not RFC 8785 for all
   inputs, and then makes the Merkle leaf SHA-256(0x00 || event_hash).
   Here `security.event_hash` IS the Merkle leaf: SHA-256(0x00 || JCS(record)),
   JCS = RFC 8785, record = `payload.record` without `leaf_hash` and
   `chain_hash` (exactly the six keys seq, recorded_at_us, event_type, actor,
   source, data). No second hashing step.

2. Odd nodes. VCP's sample Merkle root duplicates the last node of a level
   with an odd count (the Bitcoin construction, CVE-2012-2459: two different
   lists get the same root). We use RFC 9162 section 2.1.1 exactly: split at
   the largest power of two below n, never duplicate. For a tree whose size
   is not a power of two the two roots differ; the tree heads here are RFC 9162.

3. Empty tree. VCP's sample gives "0" * 64 for no events; RFC 9162 gives
   SHA-256 of the empty string (e3b0c442...b855).

4. Hash chain. VCP v1.1 makes prev_hash optional and links event hashes.
   Here `security.prev_hash` is the chain hash of the record before:
   chain_hash = SHA-256(previous chain_hash || leaf_hash), 32 zero bytes
   before seq 0 (raw bytes, hex here).

Timestamps: `header.timestamp_int` is nanoseconds since the epoch as a
string; our clock has microsecond precision (`timestamp_precision`).
To check a tree head of size N: start from `prefix.compact_range` (the
perfect-subtree roots of the records before the first event, largest first),
append the events' `event_hash` in order (RFC 9162 nodes SHA-256(0x01 || l || r)),
and fold at N; the root must equal the tree head's `root_hash`, and the
tree head's `note` must verify with `log_public_key`.
"""


def _iso_us(us: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def vcp_event(record: dict[str, Any], prev_chain: str) -> dict[str, Any]:
    """One of our records as a VCP event (the record itself is the payload)."""
    source = record.get("source") or {}
    envelope = source.get("envelope") or {}
    at_us = record["recorded_at_us"]
    hashed = {k: v for k, v in record.items() if k not in ("leaf_hash", "chain_hash")}
    security: dict[str, Any] = {
        "event_hash": record["leaf_hash"],
        "prev_hash": prev_chain,
        "chain_hash": record["chain_hash"],
        "merkle_index": record["seq"],
        "hash_algo": "SHA256",
    }
    if source:
        security["signature"] = {
            "algo": "ED25519",
            "key_id": source.get("key_id"),
            "signer": envelope.get("agent_id"),
            "value": source.get("signature"),
        }
    return {
        "header": {
            "event_id": envelope.get("event_id") or f"seq-{record['seq']}",
            "event_type": VCP_EVENT_TYPES.get(record["event_type"], DEFAULT_VCP_TYPE),
            "timestamp_iso": _iso_us(at_us),
            "timestamp_int": str(at_us * 1000),
            "timestamp_precision": "MICROSECOND",
            "vcp_version": VCP_VERSION,
            "hash_algo": "SHA256",
        },
        "payload": {
            "event_type": record["event_type"],
            "purged": bool(record.get("purged")),
            "record": hashed,
        },
        "security": security,
    }


def write_vcp_archive(
    out: IO[bytes],
    *,
    from_seq: int | None = None,
    to_seq: int | None = None,
    log_name: str = DEFAULT_LOG,
) -> ExportInfo:
    """Write the archive of seq from_seq..to_seq (default: everything, after
    signing a fresh checkpoint so every event is under a tree head)."""
    size = export_size(from_seq=from_seq, to_seq=to_seq, log_name=log_name)
    start = from_seq or 0
    if start >= size:
        raise ExportError("nothing to export in that range")
    log = Log.objects.get(name=log_name)
    heads = list(
        Checkpoint.objects.filter(log=log, tree_size__lte=size, tree_size__gte=start)
        .order_by("timestamp_us")
        .prefetch_related("cosignatures__witness")
    )
    nodes = merkle.range_nodes(0, start) if start else []
    fetched = fetcher(log_name)(nodes) if nodes else {}
    prefix = [fetched[n].hex() for n in nodes]  # largest subtree first
    prev = (
        bytes(Record.objects.get(log=log, seq=start - 1).chain_hash).hex()
        if start
        else bytes(32).hex()
    )
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        events_sha = hashlib.sha256()
        first_us = last_us = 0
        with zf.open(EVENTS, "w", force_zip64=True) as events:  # streamed: flat memory
            seq = start
            while seq < size:
                rows = Record.objects.filter(
                    log=log, seq__gte=seq, seq__lt=min(size, seq + CHUNK)
                ).order_by("seq")
                for row in rows:
                    record = row.as_dict()
                    line = canonicalize(vcp_event(record, prev)) + b"\n"
                    events.write(line)
                    events_sha.update(line)
                    prev = record["chain_hash"]
                    first_us = first_us or record["recorded_at_us"]
                    last_us = record["recorded_at_us"]
                    seq += 1
                if seq < size and not rows.exists():
                    raise ExportError(f"record {seq} is missing from the log")
        doc = _export_doc(heads, prefix, start, size, first_us, last_us)
        members = {
            EXPORT: (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode(),
            HASHING: HASHING_TEXT.encode(),
        }
        digests = {EVENTS: events_sha.hexdigest()}
        for name, data in members.items():
            zf.writestr(name, data)
            digests[name] = hashlib.sha256(data).hexdigest()
        zf.writestr(MANIFEST, format_manifest(digests).encode())
    return ExportInfo(records=size - start, checkpoints=len(heads), tree_size=size)


def _export_doc(
    heads: list[Checkpoint], prefix: list[str], start: int, size: int, first_us: int, last_us: int
) -> dict[str, Any]:
    return {
        "vcp_version": VCP_VERSION,
        "format": FORMAT,
        "log_id": str(settings.COMPLIANCE_LOG_ORIGIN),
        "log_public_key": {
            "key_name": log_key.key_name(),
            "algorithm": "ed25519",
            "public_key": base64.b64encode(log_key.public_key_raw()).decode(),
        },
        "period": {
            "start": _iso_us(first_us),
            "end": _iso_us(last_us),
            "from_seq": start,
            "to_seq": size - 1,
        },
        "event_count": size - start,
        "prefix": {"tree_size": start, "compact_range": prefix},
        "tree_heads": [
            {
                "tree_size": cp.tree_size,
                "root_hash": bytes(cp.root_hash).hex(),
                "timestamp_iso": _iso_us(cp.timestamp_us),
                "timestamp_us": cp.timestamp_us,
                "note": note_with_cosignatures(cp),
                "witnesses": sorted(c.witness.name for c in cp.cosignatures.all()),
            }
            for cp in heads
        ],
        "hashing": {
            "event_hash": "SHA-256(0x00 || RFC 8785 JCS(payload.record))",
            "merkle": "RFC 9162 (no duplicated odd node)",
            "chain": "SHA-256(prev_hash || event_hash), 32 zero bytes first",
            "notes": HASHING,
        },
    }
