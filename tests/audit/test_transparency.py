"""Checkpoints, proofs and the verifier's use of them (CONTRACT section 9)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from django.db import connection

from audit import store
from audit.models import Checkpoint, Log, MerkleNode, Record
from audit.services.checkpoints import CheckpointError, checkpoint_create
from audit.services.tree import root_at
from audit.services.verify import verify_log
from compliance_client import merkle
from compliance_client.note import verify_checkpoint
from tests.conftest import fill_payload

pytestmark = pytest.mark.django_db


def leaves() -> list[bytes]:
    return [bytes(h) for h in Record.objects.order_by("seq").values_list("leaf_hash", flat=True)]


@pytest.fixture
def log_of(bot):
    def grow(n: int) -> list[bytes]:
        for start in range(0, n, 500):
            count = min(500, n - start)
            response = bot.post_events(
                [bot.signer.item("ORDER_FILLED", fill_payload(start + k)) for k in range(count)]
            )
            assert response.status_code == 201
        return leaves()

    return grow


def test_public_key_endpoint_gives_the_key_that_signs_checkpoints(bot, client_for):
    key = client_for("carol").get("/api/v1/log/public-key/").json()
    assert key["algorithm"] == "ed25519"
    cp = client_for("alice").post("/api/v1/log/checkpoints/").json()
    parsed = verify_checkpoint(cp["note"], key["key_name"], base64.b64decode(key["public_key"]))
    assert parsed.tree_size == cp["tree_size"] == Log.objects.get().size
    assert parsed.root_hash.hex() == cp["root_hash"] == merkle.root_from_leaf_hashes(leaves()).hex()


def test_checkpoint_note_has_the_contract_layout(bot):
    cp = checkpoint_create(force=True)
    lines = cp.note.split("\n")
    assert lines[1] == str(cp.tree_size)
    assert base64.b64decode(lines[2]) == bytes(cp.root_hash)
    assert lines[3] == f"timestamp {cp.timestamp_us}"
    assert lines[4] == ""
    assert lines[5].startswith("— ")
    assert lines[6] == ""


def test_beat_checkpoint_only_when_tree_grew(bot):
    first = checkpoint_create()
    assert first is not None
    assert checkpoint_create() is None  # nothing new, heartbeat not due
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload())])
    second = checkpoint_create()
    assert second is not None
    assert second.tree_size == first.tree_size + 1


def test_heartbeat_checkpoint_when_quiet_for_long(bot, settings):
    checkpoint_create()
    settings.COMPLIANCE_CHECKPOINT_HEARTBEAT_SECS = 0
    assert checkpoint_create() is not None
    assert Checkpoint.objects.count() == 2


def test_refuses_to_sign_when_clock_goes_back(bot, monkeypatch):
    cp = checkpoint_create(force=True)
    monkeypatch.setattr("audit.services.checkpoints.now_us", lambda: cp.timestamp_us)
    with pytest.raises(CheckpointError):
        checkpoint_create(force=True)
    assert Checkpoint.objects.count() == 1


def test_roots_from_stored_nodes_match_recomputation(log_of):
    hashes = log_of(700)
    assert MerkleNode.objects.filter(level=8).count() == len(hashes) // 256
    for size in [1, 2, 3, 255, 256, 257, 511, 512, 513, len(hashes)]:
        assert root_at(tree_size=size) == merkle.root_from_leaf_hashes(hashes[:size])


def test_inclusion_proofs_verify_and_tampered_ones_do_not(log_of, client_for):
    hashes = log_of(600)
    carol = client_for("carol")
    for seq, size in [(0, 1), (0, 600), (255, 256), (256, 600), (599, 600), (300, 513)]:
        proof = carol.get("/api/v1/log/proofs/inclusion/", {"seq": seq, "tree_size": size}).json()
        root = merkle.root_from_leaf_hashes(hashes[:size])
        path = [bytes.fromhex(h) for h in proof["hashes"]]
        assert proof["leaf_hash"] == hashes[seq].hex()
        assert merkle.verify_inclusion(hashes[seq], seq, size, path, root)
        if path:
            flipped = [bytes([path[0][0] ^ 1]) + path[0][1:], *path[1:]]
            assert not merkle.verify_inclusion(hashes[seq], seq, size, flipped, root)


def test_consistency_proofs_verify(log_of, client_for):
    hashes = log_of(600)
    carol = client_for("carol")
    for first, second in [(1, 600), (256, 512), (255, 600), (300, 513), (600, 600), (0, 10)]:
        proof = carol.get(
            "/api/v1/log/proofs/consistency/", {"first": first, "second": second}
        ).json()
        path = [bytes.fromhex(h) for h in proof["hashes"]]
        r1 = merkle.root_from_leaf_hashes(hashes[:first])
        r2 = merkle.root_from_leaf_hashes(hashes[:second])
        assert merkle.verify_consistency(first, second, r1, r2, path)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("inclusion", {"seq": 5, "tree_size": 5}),
        ("inclusion", {"seq": 0, "tree_size": 10_000}),
        ("inclusion", {"seq": -1, "tree_size": 2}),
        ("inclusion", {"seq": "x", "tree_size": 2}),
        ("consistency", {"first": 3, "second": 2}),
        ("consistency", {"first": 1, "second": 10_000}),
    ],
)
def test_impossible_proof_requests_are_400(bot, client_for, path, params):
    response = client_for("carol").get(f"/api/v1/log/proofs/{path}/", params)
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_proof_request", "invalid"}


def test_checkpoint_endpoints(bot, client_for):
    assert client_for("carol").get("/api/v1/log/checkpoints/latest/").status_code == 404
    assert client_for("rita").post("/api/v1/log/checkpoints/").status_code == 403
    made = client_for("alice").post("/api/v1/log/checkpoints/")
    assert made.status_code == 201
    latest = client_for("carol").get("/api/v1/log/checkpoints/latest/").json()
    assert latest == made.json()
    assert set(latest) == {"origin", "tree_size", "root_hash", "timestamp_us", "note"}
    assert client_for("carol").get("/api/v1/log/checkpoints/").json() == [latest]


def test_event_signed_before_revocation_still_verifies(bot, client_for):
    bot.post_events([bot.signer.item("ORDER_FILLED", fill_payload())])
    client_for("rita").post(f"/api/v1/agents/bot-1/keys/{bot.signer.key_id}/revoke/")
    assert verify_log().ok


def test_verify_checks_roots_against_checkpoints_after_a_rewrite(log_of):
    """An attacker rewrites a record and recomputes every leaf, chain and node
    after it, and the head: only the signed checkpoint catches it."""
    log_of(20)
    checkpoint_create(force=True)
    assert verify_log().ok
    rewrite_from(5)
    result = verify_log(check_signatures=False)
    assert not result.ok
    assert "checkpoint" in result.detail


def test_verify_catches_forged_bot_signature_with_recomputed_hashes(log_of):
    log_of(10)
    record = Record.objects.get(seq=4)
    body = json.loads(record.body)
    body["source"]["envelope"]["payload"]["quantity"] = "999"
    rewrite_from(4, {4: json.dumps(body, sort_keys=True, separators=(",", ":"))})
    result = verify_log()
    assert not result.ok
    assert result.first_bad_seq == 4
    assert "signature" in result.detail


def rewrite_from(start: int, bodies: dict[int, str] | None = None) -> None:
    """Recompute leaves, chain, tile nodes and head from `start`, as an attacker would."""
    from compliance_client.jcs import canonicalize

    store.triggers_drop(connection)
    try:
        rows = list(Record.objects.order_by("seq"))
        prev = bytes(rows[start - 1].chain_hash) if start else bytes(32)
        frontier: list[bytes] = []
        for r in rows:
            if r.seq >= start:
                body = (bodies or {}).get(r.seq)
                if body is None:
                    parsed = json.loads(r.body)
                    if r.seq == start and not bodies:
                        parsed["data"]["forged"] = True
                    body = canonicalize(parsed).decode()
                leaf = hashlib.sha256(b"\x00" + body.encode()).digest()
                prev = hashlib.sha256(prev + leaf).digest()
                Record.objects.filter(pk=r.pk).update(body=body, leaf_hash=leaf, chain_hash=prev)
            else:
                leaf = bytes(r.leaf_hash)
            frontier, done = merkle.frontier_append(frontier, r.seq, leaf)
            for level, index, h in done:
                MerkleNode.objects.filter(level=level, index=index).update(hash=h)
        Log.objects.update(chain_hash=prev, frontier=[h.hex() for h in frontier])
    finally:
        store.triggers_install(connection)


@pytest.mark.django_db(transaction=True)
def test_proofs_cache_only_committed_nodes_and_stay_correct_when_served_from_it(log_of):
    from django.db import transaction

    from audit.services.tree import consistency_proof, inclusion_proof, node_cache

    hashes = log_of(600)
    root = merkle.root_from_leaf_hashes(hashes[:600])
    with transaction.atomic():  # rows read here could still roll back
        inclusion_proof(seq=5, tree_size=600)
    assert len(node_cache) == 0

    first = inclusion_proof(seq=5, tree_size=600)
    assert len(node_cache) > 0
    reads: list[str] = []

    def read(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        reads.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(read):
        again = inclusion_proof(seq=5, tree_size=600)
    assert again == first
    assert merkle.verify_inclusion(hashes[5], 5, 600, first[1], root)
    assert len(reads) == 1
    assert "audit_merklenode" not in reads[0]
    assert "audit_record" not in reads[0]  # only the log's size was read

    for old in (1, 255, 256, 300, 512, 599):
        for _ in range(2):  # computed, then partly from the cache
            path = consistency_proof(first=old, second=600)
            old_root = merkle.root_from_leaf_hashes(hashes[:old])
            assert merkle.verify_consistency(old, 600, old_root, root, path)
