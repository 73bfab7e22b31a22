"""The offline verifier: good bundles pass with the right counts; every kind of
tampering an operator or an attacker could try is caught and located."""

from __future__ import annotations

import json
import random
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from compliance_client import merkle
from compliance_client import verify as verify_module
from compliance_client.bundle import CHECKPOINTS, CONSISTENCY, KEYS, MANIFEST, README, RECORDS
from compliance_client.jcs import CanonicalizationError, canonicalize
from compliance_client.note import Checkpoint, sign_checkpoint
from compliance_client.verify import VerifyResult, verify_bundle

from .conftest import FakeLog, map_records, rehash, rewrite_members, standard_log


def bot_records(log: FakeLog) -> int:
    return sum(1 for r in log.records if r.get("source"))


def assert_fails(result: VerifyResult, *fragments: str, seq: int | None = None) -> None:
    assert not result.ok, "tampered bundle was accepted"
    for fragment in fragments:
        assert fragment in (result.failure or ""), result.failure
    if seq is not None:
        assert result.first_bad_seq == seq, result.failure


def tamper_records(src: Path, tmp_path: Path, fn, name: str = "t.zip") -> VerifyResult:
    return verify_bundle(rewrite_members(src, tmp_path / name, {RECORDS: map_records(fn)}))


# --------------------------------------------------------------------------
# good bundles


def test_intact_bundle_verifies_with_every_count(fake_log: FakeLog, tmp_path: Path) -> None:
    result = verify_bundle(fake_log.write(tmp_path / "b.zip"))
    assert result.ok, result.failure
    assert result.records == 60
    assert result.checkpoints == 3
    assert result.signatures == bot_records(fake_log)
    assert result.tree_size == 60
    assert result.warnings == ()


def test_without_signature_checks_nothing_is_counted_but_hashes_still_are(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    result = verify_bundle(path, check_signatures=False)
    assert result.ok
    assert result.signatures == 0
    bad = tamper_records(path, tmp_path, lambda rs: [r | {"seq": r["seq"]} for r in rs[:-1]])
    assert_fails(bad, "records missing")


def test_purged_records_and_omitted_prefix_still_verify(tmp_path: Path) -> None:
    log = standard_log()
    for seq in (3, 11, 40):
        log.purge(seq)
    result = verify_bundle(log.write(tmp_path / "b.zip", from_seq=8))
    assert result.ok, result.failure
    assert (result.purged, result.omitted) == (2, 8)


def test_records_after_the_last_checkpoint_pass_with_a_warning(tmp_path: Path) -> None:
    log = standard_log(checkpoints=(10, 33))
    result = verify_bundle(log.write(tmp_path / "b.zip"))
    assert result.ok, result.failure
    assert "27 records after the latest checkpoint" in result.warnings[0]


def test_heartbeat_checkpoints_with_the_same_size_and_an_empty_first_checkpoint(
    tmp_path: Path,
) -> None:
    log = FakeLog()
    log.checkpoint()  # empty log
    key = log.add_agent_key("bot-1")
    for _ in range(5):
        log.bot_event(key)
    log.checkpoint()
    log.checkpoint()  # heartbeat, nothing new
    result = verify_bundle(log.write(tmp_path / "b.zip"))
    assert result.ok, result.failure
    assert result.checkpoints == 3


@pytest.mark.parametrize("workers", [1, 2])
def test_many_chunks_with_checkpoints_on_and_off_chunk_boundaries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """CHUNK shrunk to 8 so that a small log spans many chunks; checkpoints at
    chunk starts, ends, middles, twice in one chunk, and at the very end."""
    monkeypatch.setattr(verify_module, "CHUNK", 8)
    sizes = (1, 7, 8, 9, 16, 21, 23, 40, 64, 65, 99, 100)
    log = standard_log(100, checkpoints=sizes)
    path = log.write(tmp_path / "b.zip")
    result = verify_bundle(path, workers=workers, trusted_checkpoint=log.notes[4])
    assert result.ok, result.failure
    assert result.checkpoints == len(sizes)
    assert result.workers == workers
    assert result.signatures == bot_records(log)
    # and a tampered record deep inside is still located
    bad = rewrite_members(
        path, tmp_path / "bad.zip", {RECORDS: map_records(lambda rs: edit_data(rs, 77))}
    )
    assert_fails(verify_bundle(bad, workers=workers), "seq 77", "leaf_hash", seq=77)


def test_pool_path_on_a_bundle_of_several_real_chunks(tmp_path: Path) -> None:
    log = FakeLog()
    key = log.add_agent_key("bot-1")
    for i in range(verify_module.CHUNK * 2 + 5):
        if i % 3:
            log.server_event(data={"i": i})
        else:
            log.bot_event(key)
        if i + 1 in (100, verify_module.CHUNK, verify_module.CHUNK + 1):
            log.checkpoint()
    log.checkpoint()
    path = log.write(tmp_path / "b.zip")
    assert verify_bundle(path, workers=2).ok
    assert verify_bundle(path, workers=1).ok


# --------------------------------------------------------------------------
# tampering with records


def edit_data(records: list[dict[str, Any]], seq: int) -> list[dict[str, Any]]:
    if records[seq].get("data") is None:
        records[seq]["data"] = {"x": 1}
    else:
        records[seq]["data"] = {"tampered": True}
    return records


def test_edited_record_is_named_by_seq(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    assert_fails(
        tamper_records(path, tmp_path, lambda rs: edit_data(rs, 17)),
        "records.jsonl",
        "seq 17",
        "leaf_hash does not match",
        seq=17,
    )


def test_edited_record_with_recomputed_hashes_breaks_the_signed_root(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    result = tamper_records(path, tmp_path, lambda rs: rehash(edit_data(rs, 17), 17))
    assert_fails(result, "checkpoint 1", "tree_size 33", "seq 10..32")
    assert result.where == CHECKPOINTS


def test_removed_record_is_named(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    assert_fails(
        tamper_records(path, tmp_path, lambda rs: rs[:20] + rs[21:]), "seq 21", "seq 20", seq=20
    )


def test_removed_record_with_renumbering_and_rehashing_breaks_the_root(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    def remove(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs = rs[:20] + rs[21:]
        for i, r in enumerate(rs):
            r["seq"] = i
        return rehash(rs, 20)

    path = fake_log.write(tmp_path / "b.zip")
    assert_fails(tamper_records(path, tmp_path, remove), "checkpoint 1")


def test_swapped_records_are_caught(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")

    def swap(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[30], rs[31] = rs[31], rs[30]
        return rs

    assert_fails(tamper_records(path, tmp_path, swap), "seq 31", seq=30)

    def swap_renumbered(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[30], rs[31] = rs[31], rs[30]
        rs[30]["seq"], rs[31]["seq"] = 30, 31
        return rehash(rs, 30)

    assert_fails(tamper_records(path, tmp_path, swap_renumbered), "checkpoint 1")


def test_purged_record_with_a_changed_leaf_hash_is_caught(tmp_path: Path) -> None:
    log = standard_log()
    log.purge(12)
    path = log.write(tmp_path / "b.zip")
    assert verify_bundle(path).ok

    def change_leaf(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[12]["leaf_hash"] = "00" * 32
        return rs

    assert_fails(tamper_records(path, tmp_path, change_leaf), "seq 12", "chain_hash", seq=12)
    assert_fails(
        tamper_records(path, tmp_path, lambda rs: rehash(change_leaf(rs), 12)), "checkpoint 1"
    )


def test_tampered_bot_payload_with_recomputed_hashes_fails_the_bot_signature(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    seq = next(r["seq"] for r in fake_log.records if r["source"] and r["seq"] > 40)

    def change_quantity(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[seq]["source"]["envelope"]["payload"]["quantity"] = "1000"
        return rehash(rs, seq)

    assert_fails(
        tamper_records(path, tmp_path, change_quantity),
        f"seq {seq}",
        "invalid Ed25519 signature",
        seq=seq,
    )


def test_bot_record_attributed_to_another_agent_is_caught(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    seq = next(r["seq"] for r in fake_log.records if r["source"])

    def reattribute(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        other = "bot-2" if rs[seq]["actor"]["id"] == "bot-1" else "bot-1"
        rs[seq]["actor"]["id"] = other
        return rehash(rs, seq)

    assert_fails(tamper_records(path, tmp_path, reattribute), "is not the record's actor.id")


def test_signatures_outside_the_key_validity_window_are_caught(tmp_path: Path) -> None:
    log = FakeLog()
    key = log.add_agent_key("bot-1")
    log.bot_event(key)
    log.revoke("bot-1", key.key_id)
    log.bot_event(key)  # accepted by a buggy server after revocation
    log.checkpoint()
    assert_fails(verify_bundle(log.write(tmp_path / "a.zip")), "revoked", seq=1)

    log = FakeLog()
    key = log.add_agent_key("bot-1")
    log.bot_event(key)
    log.agent_keys[("bot-1", key.key_id)].created_at_us = log.now + 1
    log.checkpoint()
    assert_fails(verify_bundle(log.write(tmp_path / "b.zip")), "created after", seq=0)


def test_unknown_agent_key_is_caught(fake_log: FakeLog, tmp_path: Path) -> None:
    keys = fake_log.keys_doc()
    keys["agents"] = keys["agents"][1:]
    result = verify_bundle(fake_log.write(tmp_path / "b.zip", keys=keys))
    assert_fails(result, "has no key")


def test_non_canonical_or_ambiguous_lines_are_refused(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    line = json.dumps(fake_log.records[5]).encode()  # spaces after separators

    def replace_line(data: bytes, new: bytes, at: int = 5) -> bytes:
        lines = data.split(b"\n")
        lines[at] = new
        return b"\n".join(lines)

    for bad_line in [
        line,
        canonicalize(fake_log.records[5])[:-1] + b',"seq":5}',  # duplicate key
        canonicalize(fake_log.records[5]) + b" ",
        b"",
        b"[]",
        b"\xff",
    ]:
        out = rewrite_members(
            path, tmp_path / "x.zip", {RECORDS: lambda d, b=bad_line: replace_line(d, b)}
        )
        assert_fails(verify_bundle(out), "seq 5", seq=5)


def test_missing_final_newline_is_refused(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    out = rewrite_members(path, tmp_path / "x.zip", {RECORDS: lambda d: d[:-1]})
    assert_fails(verify_bundle(out), "final newline")


def test_omitted_stub_after_exported_records_is_refused(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")

    def stub(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        rs[9] = {k: rs[9][k] for k in ("seq", "leaf_hash", "chain_hash")} | {"omitted": True}
        return rs

    assert_fails(tamper_records(path, tmp_path, stub), "omitted stub after exported", seq=9)


def test_a_thousand_random_corruptions_of_records_are_all_caught(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    """Byte flips anywhere in records.jsonl, and field edits of every record
    with and without recomputed hashes; manifest fixed as an attacker would."""
    path = fake_log.write(tmp_path / "b.zip")
    with zipfile.ZipFile(path) as zf:
        original = zf.read(RECORDS)
    rng = random.Random(7)
    cases: list[Any] = []
    for _ in range(250):
        pos = rng.randrange(len(original))
        flipped = bytearray(original)
        flipped[pos] ^= 1 << rng.randrange(8)
        cases.append(bytes(flipped))
    edits = [
        lambda r: r.update(recorded_at_us=r["recorded_at_us"] + 1),
        lambda r: r.update(event_type="ORDER_CANCELED"),
        lambda r: r.update(actor={"type": "system", "id": "x"}),
        lambda r: r.update(leaf_hash=r["chain_hash"]),
        lambda r: r.update(chain_hash=r["leaf_hash"]),
        lambda r: r.update(data={"note": "edited"}),
        lambda r: r.update(seq=r["seq"] + 1),
        lambda r: r.update(source=None),
    ]
    for seq in range(len(fake_log.records)):
        for edit in edits:
            for recompute in (False, True):

                def fn(rs, seq=seq, edit=edit, recompute=recompute):
                    original_records = json.loads(json.dumps(rs))
                    edit(rs[seq])
                    if recompute and rs[seq]["seq"] == seq:
                        rs = rehash(rs, seq)
                    # an edit of a hash field that rehashing undoes is no corruption
                    return None if rs == original_records else rs

                cases.append(fn)
    checked = 0
    for case in cases:
        if callable(case):
            records = [json.loads(line) for line in original.splitlines()]
            changed = case(records)
            if changed is None:
                continue
            data = b"".join(canonicalize(r) + b"\n" for r in changed)
        else:
            data = case
        out = rewrite_members(path, tmp_path / "c.zip", {RECORDS: lambda _d, data=data: data})
        # bot signatures have their own tests; skipping them keeps this one fast
        result = verify_bundle(out, check_signatures=False)
        assert not result.ok, f"accepted corruption #{checked}"
        checked += 1
    assert checked >= 1000


# --------------------------------------------------------------------------
# checkpoints, keys, consistency, forks and rollbacks


def attacker_log(log: FakeLog) -> FakeLog:
    """Same records and key registry, attacker's own log key."""
    forged = FakeLog(log_key=Ed25519PrivateKey.generate(), now=log.now)
    forged.records = [dict(r) for r in log.records]
    forged.agent_keys = log.agent_keys
    return forged


def forged_suffix(log: FakeLog, forger: FakeLog) -> None:
    """Append fabricated server records with correct hashes and a new checkpoint."""
    forger._chain = bytes.fromhex(log.records[-1]["chain_hash"])
    for i in range(5):
        forger.server_event("CONFIG_CHANGED", {"forged": i})
    forger.notes = []
    forger.checkpoint()


def test_forged_suffix_signed_by_an_attacker_key_is_refused(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    forger = attacker_log(fake_log)
    forged_suffix(fake_log, forger)
    # keys.json still names the real log key: the signature does not verify
    path = forger.write(tmp_path / "f.zip", keys=fake_log.keys_doc())
    assert_fails(verify_bundle(path), "checkpoints.json", "checkpoint 0", "key hash")


def test_wholesale_forgery_with_a_substituted_log_key_needs_a_trust_anchor(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    """A bundle whose keys.json carries the attacker's key is internally
    consistent; only a pinned key or a trusted checkpoint exposes it, which is
    why README.txt tells auditors to use them."""
    forger = attacker_log(fake_log)
    forged_suffix(fake_log, forger)
    path = forger.write(tmp_path / "f.zip")
    assert verify_bundle(path).ok  # no anchor: nothing to compare against
    real_key = fake_log.log_key.public_key().public_bytes_raw()
    assert_fails(verify_bundle(path, log_public_key=real_key), "pinned")
    assert_fails(
        verify_bundle(path, trusted_checkpoint=fake_log.notes[-1]),
        "trusted checkpoint does not verify",
    )


def test_rolled_back_bundle_is_refused_against_a_trusted_checkpoint(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    trusted = fake_log.notes[-1]  # tree_size 60, kept by the auditor
    # the operator exports only the first 40 records and the old checkpoints
    path = fake_log.write(
        tmp_path / "r.zip", records=fake_log.records[:40], notes=fake_log.notes[:2]
    )
    assert verify_bundle(path).ok  # fine on its own
    assert_fails(
        verify_bundle(path, trusted_checkpoint=trusted),
        "not an append-only extension of the trusted checkpoint (tree_size 60)",
        "bundle has only 40 records: log truncated/rolled back",
    )


def test_rollback_re_signed_with_the_real_key_is_refused(fake_log: FakeLog, tmp_path: Path) -> None:
    trusted = fake_log.notes[-1]
    rolled = FakeLog(log_key=fake_log.log_key, now=fake_log.now)
    rolled.records = fake_log.records[:40]
    rolled.agent_keys = fake_log.agent_keys
    rolled.notes = fake_log.notes[:2]
    rolled.checkpoint()  # newer timestamp, smaller tree: signed by the operator
    path = rolled.write(tmp_path / "r.zip")
    assert verify_bundle(path).ok
    assert_fails(
        verify_bundle(path, trusted_checkpoint=trusted),
        "(tree_size 60)",
        "log truncated/rolled back",
    )


def test_rewritten_history_re_signed_with_the_real_key_is_refused(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    """The operator holds the log key: it rewrites seq 5, recomputes every
    hash and re-signs fresh checkpoints. Only the auditor's trusted checkpoint
    can tell, and it does."""
    trusted = fake_log.notes[1]  # tree_size 33
    rewritten = FakeLog(log_key=fake_log.log_key, now=fake_log.now)
    rewritten.agent_keys = fake_log.agent_keys
    rewritten.records = rehash(edit_data([dict(r) for r in fake_log.records], 5), 5)
    rewritten.checkpoint(60)
    path = rewritten.write(tmp_path / "w.zip")
    assert verify_bundle(path).ok
    expected = (
        "bundle is not an append-only extension of the trusted checkpoint (tree_size 33)",
        "root differs \u2014 history rewritten",
    )
    assert_fails(verify_bundle(path, trusted_checkpoint=trusted), *expected)
    # re-signing the old sizes too (with fresh timestamps) changes nothing
    rewritten.notes = []
    for size in (10, 33, 60):
        rewritten.checkpoint(size)
    path = rewritten.write(tmp_path / "w2.zip")
    assert verify_bundle(path).ok
    assert_fails(verify_bundle(path, trusted_checkpoint=trusted), *expected)


def test_trusted_checkpoint_that_the_bundle_extends_passes(
    fake_log: FakeLog, tmp_path: Path
) -> None:
    trusted = fake_log.notes[0]
    for _ in range(7):
        fake_log.server_event()
    fake_log.checkpoint()
    result = verify_bundle(
        fake_log.write(tmp_path / "b.zip"),
        trusted_checkpoint=trusted,
        log_public_key=fake_log.log_key.public_key().public_bytes_raw(),
    )
    assert result.ok, result.failure
    assert result.trusted_tree_size == 10


def test_trusted_checkpoint_newer_than_every_bundle_checkpoint(tmp_path: Path) -> None:
    log = standard_log(checkpoints=(10, 33))
    bundle_notes = list(log.notes)
    trusted = log.checkpoint()  # size 60, signed after the bundle's checkpoints
    path = log.write(tmp_path / "b.zip", notes=bundle_notes)
    assert verify_bundle(path, trusted_checkpoint=trusted).ok


def test_split_view_at_the_trusted_timestamp_is_refused(fake_log: FakeLog, tmp_path: Path) -> None:
    # The log signed two different (each internally valid) trees with one timestamp.
    cp = fake_log.notes[1].split("\n")
    root_34 = merkle.root_from_leaf_hashes(fake_log.leaves()[:34])
    other = sign_checkpoint(
        Checkpoint(fake_log.origin, 34, root_34, int(cp[3].split()[1])),
        fake_log.key_name,
        fake_log.log_key,
    )
    path = fake_log.write(tmp_path / "b.zip")
    assert_fails(verify_bundle(path, trusted_checkpoint=other), "split view")


def test_checkpoint_problems_are_named(fake_log: FakeLog, tmp_path: Path) -> None:
    notes = list(fake_log.notes)
    cases = {
        "no checkpoint": [],
        "is not after": [notes[0], notes[0]],
        "checkpoint 1": [notes[0], notes[1].replace("\n33\n", "\n34\n")],
    }
    for fragment, bundle_notes in cases.items():
        path = fake_log.write(tmp_path / "c.zip", notes=bundle_notes)
        assert_fails(verify_bundle(path), fragment)
    # a checkpoint beyond the records (signed by the real key)
    fake_log.server_event()
    beyond = fake_log.checkpoint()
    path = fake_log.write(tmp_path / "d.zip", records=fake_log.records[:60], notes=[*notes, beyond])
    assert_fails(verify_bundle(path), "tree_size 61", "only 60 records")
    # checkpoints out of size order, correctly signed
    older = fake_log.checkpoint(20)
    path = fake_log.write(tmp_path / "e.zip", notes=[notes[1], older])
    assert_fails(verify_bundle(path), "rolled back")


def test_consistency_file_problems_are_named(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")

    def flip_proof(data: bytes) -> bytes:
        doc = json.loads(data)
        h = doc[1]["hashes"][0]
        doc[1]["hashes"][0] = ("0" if h[0] != "0" else "1") + h[1:]
        return json.dumps(doc).encode()

    for fn, fragment in [
        (flip_proof, "entry 1"),
        (lambda d: json.dumps(json.loads(d)[:1]).encode(), "1 proofs for 3"),
        (lambda d: json.dumps(json.loads(d)[::-1]).encode(), "entry 0 is for"),
        (lambda d: b"{", "not valid JSON"),
    ]:
        out = rewrite_members(path, tmp_path / "x.zip", {CONSISTENCY: fn})
        result = verify_bundle(out)
        assert_fails(result, fragment)
        assert result.where == CONSISTENCY


def test_manifest_and_member_problems_are_named(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    readme = rewrite_members(
        path, tmp_path / "m1.zip", {README: lambda d: d + b"x"}, fix_manifest=False
    )
    assert_fails(verify_bundle(readme), "MANIFEST.sha256", "README.txt")
    records = rewrite_members(
        path,
        tmp_path / "m2.zip",
        {RECORDS: lambda d: d},
        fix_manifest=False,
    )
    assert verify_bundle(records).ok
    manifest = rewrite_members(
        path, tmp_path / "m3.zip", {MANIFEST: lambda d: d.replace(b"a", b"b", 1)}
    )
    assert_fails(verify_bundle(manifest), "MANIFEST.sha256")
    records_sum = rewrite_members(
        path,
        tmp_path / "m4.zip",
        {
            MANIFEST: lambda d: b"\n".join(
                (b"0" * 64 + line[64:]) if line.endswith(b"records.jsonl") else line
                for line in d.split(b"\n")
            )
        },
    )
    assert_fails(verify_bundle(records_sum), "checksum of records.jsonl")
    # extra, missing and duplicate members
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    for name, content in [
        ("extra", [*members.items(), ("notes.txt", b"hi")]),
        ("missing", [(n, d) for n, d in members.items() if n != KEYS]),
        ("duplicate", [*members.items(), (KEYS, members[KEYS])]),
    ]:
        out = tmp_path / f"{name}.zip"
        with zipfile.ZipFile(out, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            for n, d in content:
                zf.writestr(n, d)
        expected = {"extra": "unexpected member", "missing": "missing member"}
        assert_fails(verify_bundle(out), expected.get(name, "duplicate member"))


def test_pinned_log_key_must_match_keys_json(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    assert_fails(verify_bundle(path, log_public_key=other), "pinned")


def test_not_a_zip_is_a_failure_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "junk.zip"
    path.write_bytes(b"PK\x03\x04 this is not a zip")
    assert_fails(verify_bundle(path), "cannot read")
    assert_fails(verify_bundle(tmp_path / "absent.zip"), "cannot read")


def test_malformed_keys_json_is_named(fake_log: FakeLog, tmp_path: Path) -> None:
    path = fake_log.write(tmp_path / "b.zip")
    for fn in [
        lambda d: b"[]",
        lambda d: d.replace(b'"ed25519"', b'"rsa"'),
        lambda d: d.replace(b'"key_name"', b'"key_name":"x","key_name"', 1),
    ]:
        result = verify_bundle(rewrite_members(path, tmp_path / "k.zip", {KEYS: fn}))
        assert_fails(result, "keys.json")


# --------------------------------------------------------------------------
# the verifier's fast canonical JSON is exactly compliance_client.jcs

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_verifier_canonical_form_equals_jcs_canonicalize(value: Any) -> None:
    decoder = verify_module._ChunkDecoder()
    decoded = decoder.decode(json.dumps(value, ensure_ascii=False).encode())
    try:
        expected = canonicalize(value)
    except CanonicalizationError:
        with pytest.raises(CanonicalizationError):
            verify_module._jcs(decoded, decoder.needs_reference)
        return
    assert verify_module._jcs(decoded, decoder.needs_reference) == expected
