"""The VCP v1.1-compatible archive (issue 16): built from our records and
checkpoints; every event hash, chain link and tree head checks out from the
archive alone; a changed event does not."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from typing import Any

import pytest

from audit.models import LogExport, Record
from audit.services.checkpoints import checkpoint_create
from audit.services.vcp import write_vcp_archive
from compliance_client import merkle
from compliance_client.jcs import canonicalize
from compliance_client.note import verify_checkpoint
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1 Merkle Tree Hash, written from the RFC (recursive)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()


def vcp_sample_root(leaves: list[bytes]) -> bytes:
    """The duplicate-the-odd-node root of VCP's sample code, for comparison."""
    nodes = list(leaves)
    while len(nodes) > 1:
        if len(nodes) % 2:
            nodes.append(nodes[-1])
        nodes = [
            hashlib.sha256(b"\x01" + nodes[i] + nodes[i + 1]).digest()
            for i in range(0, len(nodes), 2)
        ]
    return nodes[0]


def read(archive: bytes) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    doc = json.loads(members["vcp_export.json"])
    events = [json.loads(line) for line in members["events.jsonl"].splitlines()]
    return doc, events, members


def check(archive: bytes) -> list[str]:
    """Everything an outside tool can check from the archive; returns the problems."""
    doc, events, members = read(archive)
    problems = []
    manifest = dict(
        reversed(line.split("  ")) for line in members["MANIFEST.sha256"].decode().splitlines()
    )
    for name, digest in manifest.items():
        if hashlib.sha256(members[name]).hexdigest() != digest:
            problems.append(f"manifest: {name}")
    prev = events[0]["security"]["prev_hash"] if events else None
    leaves = []
    for event in events:
        record, security = event["payload"]["record"], event["security"]
        leaf = hashlib.sha256(b"\x00" + canonicalize(record)).digest()
        if leaf.hex() != security["event_hash"]:
            problems.append(f"event_hash at seq {record['seq']}")
        chain = hashlib.sha256(bytes.fromhex(prev) + leaf).hexdigest()
        if security["prev_hash"] != prev or security["chain_hash"] != chain:
            problems.append(f"chain at seq {record['seq']}")
        prev = security["chain_hash"]
        leaves.append(bytes.fromhex(security["event_hash"]))
    key = doc["log_public_key"]
    start = doc["prefix"]["tree_size"]
    frontier = [bytes.fromhex(h) for h in doc["prefix"]["compact_range"]]
    for head in doc["tree_heads"]:
        n = head["tree_size"]
        if start == 0:
            root = mth(leaves[:n])
        else:
            grown, _ = merkle.frontier_extend(frontier, start, leaves[: n - start])
            root = merkle.frontier_root(grown)
        if root.hex() != head["root_hash"]:
            problems.append(f"tree head {n}")
        signed = verify_checkpoint(
            head["note"], key["key_name"], base64.b64decode(key["public_key"])
        )
        if signed.root_hash.hex() != head["root_hash"] or signed.tree_size != n:
            problems.append(f"tree head {n} is not what the note signs")
    return problems


@pytest.fixture
def log_with_heads(bot):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(4)])
    first = checkpoint_create(force=True)
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload(n)) for n in range(4, 6)])
    return first


def test_the_archive_has_the_vcp_layout_and_checks_out_from_itself(log_with_heads):
    buf = io.BytesIO()
    info = write_vcp_archive(buf)
    doc, events, members = read(buf.getvalue())

    assert set(members) == {"vcp_export.json", "events.jsonl", "HASHING.md", "MANIFEST.sha256"}
    assert doc["vcp_version"] == "1.1"
    assert doc["log_id"]
    assert doc["period"]["from_seq"] == 0
    assert doc["period"]["to_seq"] == info.tree_size - 1
    assert len(events) == doc["event_count"] == Record.objects.count()
    assert [h["tree_size"] for h in doc["tree_heads"]] == [log_with_heads.tree_size, info.tree_size]
    fill = next(e for e in events if e["payload"]["event_type"] == "ORDER_FILLED")
    assert fill["header"]["event_type"] == "EXE"
    assert fill["header"]["vcp_version"] == "1.1"
    assert fill["security"]["signature"]["algo"] == "ED25519"
    stored = Record.objects.get(seq=fill["payload"]["record"]["seq"])
    assert fill["security"]["event_hash"] == bytes(stored.leaf_hash).hex()
    assert check(buf.getvalue()) == []

    # the note on hashing, and the difference it names is real for odd sizes
    note = members["HASHING.md"].decode()
    assert "RFC 9162" in note
    assert "duplicates the last node" in note
    leaves = [bytes.fromhex(e["security"]["event_hash"]) for e in events]
    odd = next(h["tree_size"] for h in doc["tree_heads"] if h["tree_size"] & (h["tree_size"] - 1))
    assert vcp_sample_root(leaves[:odd]).hex() != next(
        h["root_hash"] for h in doc["tree_heads"] if h["tree_size"] == odd
    )


def test_a_changed_event_or_tree_head_does_not_check_out(log_with_heads):
    buf = io.BytesIO()
    write_vcp_archive(buf)
    original = buf.getvalue()

    def rewrite(fn) -> bytes:  # type: ignore[no-untyped-def]
        with zipfile.ZipFile(io.BytesIO(original)) as zin:
            members = {n: zin.read(n) for n in zin.namelist()}
        members = fn(members)
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zout:
            for name, data in members.items():
                zout.writestr(name, data)
        return out.getvalue()

    def change_quantity(members: dict[str, bytes]) -> dict[str, bytes]:
        lines = members["events.jsonl"].splitlines()
        event = json.loads(lines[3])
        event["payload"]["record"]["source"]["envelope"]["payload"]["quantity"] = "999"
        lines[3] = canonicalize(event)
        members["events.jsonl"] = b"\n".join(lines) + b"\n"
        return members

    problems = check(rewrite(change_quantity))
    assert "manifest: events.jsonl" in problems
    assert "event_hash at seq 3" in problems

    def change_root(members: dict[str, bytes]) -> dict[str, bytes]:
        doc = json.loads(members["vcp_export.json"])
        doc["tree_heads"][0]["root_hash"] = "00" * 32
        members["vcp_export.json"] = json.dumps(doc).encode()
        return members

    problems = check(rewrite(change_root))
    assert any(p.startswith("tree head") for p in problems)


def test_a_partial_range_carries_the_compact_range_before_it(log_with_heads):
    size = Record.objects.count()
    buf = io.BytesIO()
    info = write_vcp_archive(buf, from_seq=3)
    doc, events, _ = read(buf.getvalue())
    assert doc["prefix"]["tree_size"] == 3
    assert len(doc["prefix"]["compact_range"]) == 2
    assert [e["payload"]["record"]["seq"] for e in events] == list(range(3, info.tree_size))
    assert events[0]["security"]["prev_hash"] == bytes(Record.objects.get(seq=2).chain_hash).hex()
    assert info.tree_size >= size
    assert check(buf.getvalue()) == []


def test_an_officer_asks_for_the_vcp_archive_through_the_export_api(
    log_with_heads, bot, client_for, django_capture_on_commit_callbacks
):
    alice = client_for("alice")
    with django_capture_on_commit_callbacks(execute=True):
        response = alice.post("/api/v1/log/exports/", {"format": "vcp"}, format="json")
    assert response.status_code == 202, response.content
    export = LogExport.objects.get(pk=response.json()["id"])
    assert export.format == "vcp"
    assert export.status == "done", export.error
    detail = alice.get(f"/api/v1/log/exports/{export.pk}/").json()
    assert detail["format"] == "vcp"
    download = alice.get(f"/api/v1/log/exports/{export.pk}/download/")
    archive = b"".join(download.streaming_content)
    assert hashlib.sha256(archive).hexdigest() == detail["sha256"]
    assert check(archive) == []

    before = LogExport.objects.count()
    bad = alice.post("/api/v1/log/exports/", {"format": "xml"}, format="json")
    assert bad.status_code == 400
    # people from viewers up may ask for exports (auditors download bundles); a bot may not
    denied = bot.client.post("/api/v1/log/exports/", {"format": "vcp"}, format="json")
    assert denied.status_code == 403
    assert LogExport.objects.count() == before
